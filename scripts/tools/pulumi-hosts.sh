#!/usr/bin/env bash
# Builds our stand-ins for two Pulumi plugins whose Go modules this machine's module proxy does not
# serve (every version answers 403 "This module version is not available"):
#   pulumi-language-nodejs    for github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
#                             (the engine's Node.js language host, 3.248)
#   pulumi-resource-command   for github.com/pulumi/pulumi-command/provider (command:local:Command
#                             of pulumi-command 1.2.1, the plugin @pulumi/command 1.2.1 asks for)
# Source: tools/pulumi-hosts (a Go module on the served github.com/pulumi/pulumi/sdk/v3). Built into
# ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/pulumi-hosts-<hash of that source and the Go version>/
# and found by the engine where it looks for them. Neither goes on PATH (nor into
# $THINLAYER_CACHE/bin): for every plugin it finds on PATH the engine prints "warning: using
# pulumi-<plugin> from $PATH at ..." on every run (workspace.getPluginInfoAndPath).
#   pulumi-resource-command is registered in the PULUMI_HOME of scripts/tools/pulumi.sh (lib.sh's
#   tl_pulumi_home) with `pulumi plugin install resource command 1.2.1 --file` (the exact version
#   @pulumi/command 1.2.1 asks for).
# The language host is not a registrable plugin (`pulumi plugin install language nodejs` refuses:
# "the nodejs language plugin is bundled with Pulumi"). The engine looks for it on PATH and next to
# the real (symlink-resolved) pulumi binary, and warns on every run when the one on PATH is not the
# one next to pulumi; so it is linked next to the pulumi binary only (as Pulumi's own releases ship
# it), never onto PATH, and a pulumi that already has a host of its own beside it keeps it.
#
#   bash scripts/tools/pulumi-hosts.sh              # build what is missing (cold: a few minutes)
#   eval "$(bash scripts/tools/pulumi-hosts.sh)"    # ...and export PATH and PULUMI_HOME (stdout)
#
# Needs the pulumi CLI (scripts/tools/pulumi.sh) to register the plugins: run that first. Progress
# goes to stderr, go output to $THINLAYER_CACHE/logs/pulumi-hosts.log. Idempotent: a second run
# hashes the source, checks a few files and exits. Under CI=true any failure exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TL_NAME=pulumi-hosts.sh
# shellcheck source=lib.sh
. "$ROOT/scripts/tools/lib.sh"

SRC="$ROOT/tools/pulumi-hosts"
COMMAND_VERSION=1.2.1   # internal/command.Version
NODEJS_VERSION=3.248.0  # internal/nodehost.Version
PULUMI_HOME_DIR="$(tl_pulumi_home)"

[[ -f "$SRC/go.mod" ]] || tl_fail "$SRC/go.mod not found; the stand-ins' source is tools/pulumi-hosts in this repository"
tl_require_go 26 # go.mod says go 1.26

# The content hash: every file of the module (path and bytes) plus the Go version, so a change to
# the source or the toolchain builds anew.
src_hash() {
    (
        cd "$SRC"
        go env GOVERSION
        find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | LC_ALL=C sort -z |
            while IFS= read -r -d '' f; do printf '%s\0' "$f"; sha256sum <"$f"; done
    ) | sha256sum | cut -c1-16
}
HASH="$(src_hash)"
OUT="$TL_CACHE/pulumi-hosts-$HASH"
BINS=(pulumi-language-nodejs pulumi-resource-command)

# The pulumi that registers the plugins: scripts/tools/pulumi.sh's, or one on PATH.
find_pulumi() {
    if [[ -x "$TL_BIN/pulumi" ]]; then echo "$TL_BIN/pulumi"; return 0; fi
    command -v pulumi 2>/dev/null
}

# registered KIND NAME VERSION BIN: the plugin dir holds this very binary, fully installed.
registered() {
    local d="$PULUMI_HOME_DIR/plugins/$1-$2-v$3"
    [[ -x "$d/pulumi-$1-$2" && ! -e "$d.partial" ]] && cmp -s "$d/pulumi-$1-$2" "$4"
}

built() { [[ -e "$OUT/.ok" && -x "$OUT/pulumi-language-nodejs" && -x "$OUT/pulumi-resource-command" ]]; }
# Nothing of ours on PATH (an earlier version of this script linked them into $TL_BIN).
unlinked() { [[ ! -L "$TL_BIN/pulumi-resource-command" && ! -L "$TL_BIN/pulumi-language-nodejs" ]]; }
# The directory of the real pulumi binary (where the engine looks for its bundled language hosts).
pulumi_dir() {
    local p
    p="$(find_pulumi)" || return 1
    dirname "$(readlink -f "$p")"
}
# bundled: next to pulumi is our host, or a real one that came with that pulumi.
bundled() {
    local d l
    d="$(pulumi_dir)" || return 1
    l="$d/pulumi-language-nodejs"
    [[ -L "$l" && "$(readlink "$l")" == "$OUT/pulumi-language-nodejs" ]] || { [[ -x "$l" && ! -L "$l" ]]; }
}
all_done() {
    built && unlinked && bundled &&
        registered resource command "$COMMAND_VERSION" "$OUT/pulumi-resource-command"
}

print_env() {
    tl_log "pulumi-resource-command v$COMMAND_VERSION (registered in $PULUMI_HOME_DIR/plugins) and pulumi-language-nodejs v$NODEJS_VERSION (next to pulumi in $(pulumi_dir)): stand-ins built in $OUT"
    cat <<EOF
export PATH="$TL_BIN:\$PATH"
export PULUMI_HOME="$PULUMI_HOME_DIR"
EOF
}

if all_done; then
    print_env
    exit 0
fi

tl_lock "$TL_CACHE/.pulumi-hosts.lock"
mkdir -p "$TL_LOGS"
LOG="$TL_LOGS/pulumi-hosts.log"

if built; then
    tl_log "already built in $OUT"
else
    : >"$LOG"
    rm -rf "$OUT.tmp"
    mkdir -p "$OUT.tmp"
    # -mod=readonly: go.sum in the repository is the whole truth about dependencies.
    tl_timed "pulumi-hosts $HASH: go build" "$LOG" env -C "$SRC" CGO_ENABLED=0 GOFLAGS=-mod=readonly \
        go build -trimpath -ldflags "-s -w" -o "$OUT.tmp/" ./cmd/pulumi-language-nodejs ./cmd/pulumi-resource-command
    for b in "${BINS[@]}"; do
        [[ -x "$OUT.tmp/$b" ]] || tl_fail "go build did not produce $b; see $LOG"
    done
    v="$("$OUT.tmp/pulumi-resource-command" -version)"
    [[ "$v" == "$COMMAND_VERSION" ]] || tl_fail "pulumi-resource-command reports version '$v'; this script registers it as $COMMAND_VERSION (update COMMAND_VERSION here and internal/command.Version together)"
    v="$("$OUT.tmp/pulumi-language-nodejs" -version)"
    [[ "$v" == "$NODEJS_VERSION" ]] || tl_fail "pulumi-language-nodejs reports version '$v'; this script registers it as $NODEJS_VERSION (update NODEJS_VERSION here and internal/nodehost.Version together)"
    touch "$OUT.tmp/.ok"
    rm -rf "$OUT"
    mv "$OUT.tmp" "$OUT"
fi

for b in "${BINS[@]}"; do
    if [[ -L "$TL_BIN/$b" && "$(readlink "$TL_BIN/$b")" == "$TL_CACHE"/pulumi-hosts-*/"$b" ]]; then rm -f "$TL_BIN/$b"; fi
done

PULUMI_BIN="$(find_pulumi)" ||
    tl_missing "no pulumi CLI (run scripts/tools/pulumi.sh first); cannot register the plugins in $PULUMI_HOME_DIR"
mkdir -p "$PULUMI_HOME_DIR"
register() { # register KIND NAME VERSION BIN
    registered "$@" && return 0
    tl_log "registering $4 as $1 $2 $3 in $PULUMI_HOME_DIR"
    PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
        "$PULUMI_BIN" plugin install "$1" "$2" "$3" --file "$4" --reinstall >&2 ||
        tl_fail "'pulumi plugin install $1 $2 $3 --file $4' failed (PULUMI_HOME=$PULUMI_HOME_DIR)"
    registered "$@" || tl_fail "after 'pulumi plugin install $1 $2 $3', $PULUMI_HOME_DIR/plugins/$1-$2-v$3 does not hold $4"
}
register resource command "$COMMAND_VERSION" "$OUT/pulumi-resource-command"

PDIR="$(pulumi_dir)"
HOST_LINK="$PDIR/pulumi-language-nodejs"
if [[ -e "$HOST_LINK" && ! -L "$HOST_LINK" ]]; then
    tl_log "the pulumi in $PDIR has its own pulumi-language-nodejs; using it, not the stand-in"
elif [[ "$(readlink "$HOST_LINK" 2>/dev/null)" != "$OUT/pulumi-language-nodejs" ]]; then
    tl_log "linking the language host next to pulumi: $HOST_LINK -> $OUT/pulumi-language-nodejs"
    ln -sfn "$OUT/pulumi-language-nodejs" "$HOST_LINK.tmp.$$" && mv -Tf "$HOST_LINK.tmp.$$" "$HOST_LINK" ||
        tl_fail "could not link $HOST_LINK (the engine finds the Node.js language host next to the pulumi binary)"
fi

print_env
