# Shared helpers for the scripts/tools/*.sh builders. Source it; it defines functions only.
#
#   . "$(dirname "$0")/lib.sh"
#   TL_NAME=pulumi.sh          # the prefix of every message
#
# Conventions the builders share: everything slow is cached under $THINLAYER_CACHE (default
# ~/.cache/thinlayer) in a directory named by the versions it holds, with symlinks in
# $THINLAYER_CACHE/bin; go output goes to $THINLAYER_CACHE/logs/<piece>.log; under CI=true any
# missing prerequisite is a failure, locally it is a warning and the dependent tests skip.

TL_NAME="${TL_NAME:-tools}"
TL_CACHE="${THINLAYER_CACHE:-$HOME/.cache/thinlayer}"
TL_BIN="$TL_CACHE/bin"
TL_LOGS="$TL_CACHE/logs"

tl_log() { echo "$TL_NAME: $*" >&2; }

tl_fail() {
    echo "$TL_NAME: error: $*" >&2
    exit 1
}

# A missing prerequisite: fatal under CI=true, otherwise a warning and a clean exit (the tests
# that need the tool skip locally and fail under CI, see tests/helpers/tools.ts).
tl_missing() {
    if [[ "${CI:-}" == "true" ]]; then
        tl_fail "$* (CI=true, so this is a failure)"
    fi
    tl_log "warning: $*; skipping (tests that need it will skip)"
    exit 0
}

# tl_require_go MINOR: go is on PATH and is at least go1.MINOR; the builds never download a
# different toolchain behind our back (GOTOOLCHAIN=local).
tl_require_go() {
    local min=$1 ver minor
    command -v go >/dev/null 2>&1 ||
        tl_missing "go is not on PATH; install Go >= 1.$min (e.g. /usr/local/go) and put its bin on PATH"
    ver="$(go env GOVERSION)"
    minor="${ver#go1.}"
    minor="${minor%%.*}"
    [[ "$minor" =~ ^[0-9]+$ && "$minor" -ge "$min" ]] ||
        tl_fail "go is $ver; these builds need go >= 1.$min; install a newer Go"
    export GOTOOLCHAIN=local
}

# tl_lock FILE: hold an exclusive lock on FILE (fd 9) until the script exits, so two runs racing
# on one cache build once.
tl_lock() {
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock 9
}

# tl_timed LABEL LOG CMD...: run CMD with its output in LOG; on failure show the end of LOG and
# fail; on success record the wall time in $TL_CACHE/logs/build-times.txt.
tl_timed() {
    local label=$1 log=$2 start secs
    shift 2
    mkdir -p "$TL_LOGS"
    start=$(date +%s)
    tl_log "$label (log: $log)"
    if ! "$@" >>"$log" 2>&1; then
        tail -40 "$log" | sed 's/^/    /' >&2
        tl_fail "$label failed; the command was: $*; full output in $log"
    fi
    secs=$(($(date +%s) - start))
    echo "$(date -u +%FT%TZ) $label ${secs}s $(go env GOVERSION 2>/dev/null)" >>"$TL_LOGS/build-times.txt"
    tl_log "$label: done in ${secs}s"
}

# tl_link TARGET: $TL_BIN/<basename> -> TARGET (replaced atomically when it points elsewhere).
tl_link() {
    local target=$1 link
    link="$TL_BIN/$(basename "$target")"
    mkdir -p "$TL_BIN"
    if [[ "$(readlink "$link" 2>/dev/null)" != "$target" ]]; then
        ln -sfn "$target" "$link.tmp.$$" && mv -Tf "$link.tmp.$$" "$link"
    fi
}

# tl_npm_locked_version LOCKFILE PACKAGE: the version package-lock.json resolved for a direct
# dependency (packages["node_modules/PACKAGE"].version), or a failure naming the lock file and the
# package. awk, not node: npm writes each entry's "version" first, and a no-op run stays fast.
tl_npm_locked_version() {
    local lock=$1 pkg=$2 v
    [[ -f "$lock" ]] || tl_fail "$lock not found; it is where the npm versions come from"
    v="$(awk -v key="\"node_modules/$pkg\": {" '
        !f && $0 ~ /^ *"/ && index($0, key) == index($0, "\"") && substr($0, index($0, key)) == key { f = 1; next }
        f && /^ *}/ { exit }
        f && /^ *"version": "[^"]+",?$/ { sub(/^ *"version": "/, ""); sub(/",?$/, ""); print; exit }' "$lock")"
    [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] ||
        tl_fail "$lock has no packages[\"node_modules/$pkg\"].version (read '$v'); run npm install so the lock resolves $pkg"
    echo "$v"
}

# The PULUMI_HOME the tools register plugins into: owned by the cache, so builds, tests and CI
# never read or write ~/.pulumi (override with THINLAYER_PULUMI_HOME).
tl_pulumi_home() { echo "${THINLAYER_PULUMI_HOME:-$TL_CACHE/pulumi-home}"; }
