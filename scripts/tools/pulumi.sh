#!/usr/bin/env bash
# Provides the real Pulumi engine on this machine, built with `go build` from published Go modules:
#   pulumi                       github.com/pulumi/pulumi/pkg/v3/cmd/pulumi at the version of
#                                @pulumi/pulumi in package-lock.json
#   pulumi-resource-kubernetes   github.com/pulumi/pulumi-kubernetes/provider/v4 (see K8S_* below),
#                                registered in the cache's PULUMI_HOME under the version of
#                                @pulumi/kubernetes in package-lock.json and under its own version
# cached in ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/<name>-<version>/bin; `pulumi` is symlinked into
# ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/bin. A `pulumi` already on PATH is used as it is.
# The provider is deliberately NOT put on PATH: the engine prefers a pulumi-resource-* found on
# $PATH over the versioned plugin in PULUMI_HOME (and warns "using ... from $PATH" every run);
# PULUMI_IGNORE_AMBIENT_PLUGINS=true in the printed env keeps stray ones out too.
#
#   bash scripts/tools/pulumi.sh                 # build what is missing (cold: tens of minutes)
#   eval "$(bash scripts/tools/pulumi.sh)"       # ...and export the env a run needs (stdout)
#
# Progress goes to stderr, go output to $THINLAYER_CACHE/logs/pulumi-*.log, and stdout carries only
# the `export` lines. Idempotent: a second run checks a few files and exits. Under CI=true any
# failure exits non-zero. The Node language host and the command provider are not served by the
# module proxy; scripts/tools/pulumi-hosts.sh provides stand-ins.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TL_NAME=pulumi.sh
# shellcheck source=lib.sh
. "$ROOT/scripts/tools/lib.sh"

LOCK_FILE="$ROOT/package-lock.json"
PULUMI_VERSION="${THINLAYER_PULUMI_VERSION:-$(tl_npm_locked_version "$LOCK_FILE" @pulumi/pulumi)}"
PULUMI_VERSION_FROM="${THINLAYER_PULUMI_VERSION:+THINLAYER_PULUMI_VERSION}"
PULUMI_VERSION_FROM="${PULUMI_VERSION_FROM:-the version of @pulumi/pulumi in package-lock.json}"
K8S_NPM_VERSION="$(tl_npm_locked_version "$LOCK_FILE" @pulumi/kubernetes)"

PULUMI_PKG=github.com/pulumi/pulumi/pkg/v3
PULUMI_SDK=github.com/pulumi/pulumi/sdk/v3
PULUMI_MAIN=$PULUMI_PKG/cmd/pulumi

# The module proxy serves the Kubernetes provider module only at this pseudo-version (every tagged
# version answers 403): commit f47bc2d6f199 of pulumi/pulumi-kubernetes, which is the commit tagged
# v4.25.0. Its go.mod replaces sdk/v4 with ../sdk (not in the module zip); the served sdk/v4 v4.25.0
# is that directory at the release commit (only version strings differ), so it stands in.
K8S_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
K8S_VERSION=4.25.0
K8S_SDK_MODULE=github.com/pulumi/pulumi-kubernetes/sdk/v4
K8S_SDK_VERSION=v4.25.0

CLI_DIR="$TL_CACHE/pulumi-v$PULUMI_VERSION"
K8S_DIR="$TL_CACHE/pulumi-resource-kubernetes-v$K8S_VERSION"
K8S_BIN="$K8S_DIR/bin/pulumi-resource-kubernetes"
PULUMI_HOME_DIR="$(tl_pulumi_home)"

# The plugin versions the kubernetes build is registered under: the npm SDK's (what the engine
# asks for: it loads only an exact version match) and its own. A newer SDK of the same major works
# with it (checked: core/v1 Namespace, ConfigMap, Secret, Service, apps/v1 Deployment, batch/v1 Job,
# policy/v1 PodDisruptionBudget, Provider kubeconfig/context/namespace/renderYamlToDirectory), but
# the engine warns on every run that the plugin is older than the SDK; pinning @pulumi/kubernetes to
# K8S_VERSION makes them one. A different major is a different schema, never papered over.
[[ "${K8S_NPM_VERSION%%.*}" == "${K8S_VERSION%%.*}" ]] ||
    tl_fail "package-lock.json resolves @pulumi/kubernetes $K8S_NPM_VERSION, but the kubernetes provider built here is $K8S_VERSION (major ${K8S_VERSION%%.*}); pin @pulumi/kubernetes to $K8S_VERSION in package.json"
K8S_REGISTER=("$K8S_NPM_VERSION")
[[ "$K8S_NPM_VERSION" == "$K8S_VERSION" ]] || K8S_REGISTER+=("$K8S_VERSION")

# The env every pulumi run here needs, on stdout.
print_env() {
    local pulumi_bin=$1
    tl_log "pulumi: $pulumi_bin"
    tl_log "pulumi-resource-kubernetes: $K8S_BIN (v$K8S_VERSION, registered as ${K8S_REGISTER[*]} in $PULUMI_HOME_DIR/plugins)"
    tl_log "a run also needs a backend and a passphrase: PULUMI_BACKEND_URL=file://<a temp dir> (instead of 'pulumi login', which writes credentials into PULUMI_HOME) and PULUMI_CONFIG_PASSPHRASE (tests: a throwaway value; never logged)"
    cat <<EOF
export PATH="$TL_BIN:\$PATH"
export PULUMI_HOME="$PULUMI_HOME_DIR"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
export PULUMI_SKIP_UPDATE_CHECK=true
EOF
}

# The first pulumi on PATH that is not our own symlink.
external_pulumi() {
    local IFS=: d
    for d in $PATH; do
        [[ -n "$d" && "$d" != "$TL_BIN" && -x "$d/pulumi" && ! -d "$d/pulumi" ]] && { echo "$d/pulumi"; return 0; }
    done
    return 1
}

cli_done() { [[ -x "$CLI_DIR/bin/pulumi" && -e "$CLI_DIR/bin/.ok" && "$(readlink "$TL_BIN/pulumi" 2>/dev/null)" == "$CLI_DIR/bin/pulumi" ]]; }
k8s_done() { [[ -x "$K8S_BIN" && -e "$K8S_DIR/bin/.ok" && ! -L "$TL_BIN/pulumi-resource-kubernetes" ]]; }
registered() { # registered VERSION: the plugin dir holds this very binary and pulumi finished installing it
    local d="$PULUMI_HOME_DIR/plugins/resource-kubernetes-v$1"
    [[ -x "$d/pulumi-resource-kubernetes" && ! -e "$d.partial" ]] && cmp -s "$d/pulumi-resource-kubernetes" "$K8S_BIN"
}
all_done() {
    local v
    if EXT="$(external_pulumi)"; then
        [[ ! -L "$TL_BIN/pulumi" ]] || return 1 # ours would shadow it; the full run removes it
        PULUMI_BIN="$EXT"
    else
        cli_done || return 1
        PULUMI_BIN="$TL_BIN/pulumi"
    fi
    k8s_done || return 1
    for v in "${K8S_REGISTER[@]}"; do registered "$v" || return 1; done
}

if all_done; then
    print_env "$PULUMI_BIN"
    exit 0
fi

tl_require_go 25 # pkg/v3's go.mod says go 1.25
export CGO_ENABLED=0
# -mod=mod only inside the throwaway build modules: they have no go.sum until the build writes one.
WRAPPER_GOFLAGS="$(go env GOFLAGS) -mod=mod"
mkdir -p "$TL_BIN" "$TL_LOGS"
tl_lock "$TL_CACHE/.pulumi.lock"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/thinlayer-pulumi-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# gomod_field MODULE@VERSION FIELD: a field of `go mod download -json` (downloads the module).
gomod_field() {
    go mod download -json "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}process.stdout.write(String(j[process.argv[1]]||""))})' "$2"
}

# The CLI. pkg/v3's go.mod replaces sdk/v3 with ../sdk, so `go install pkg@version` refuses; a
# throwaway module requires pkg/v3 and sdk/v3 at one version, copies upstream's non-local
# replaces, and builds the main package with upstream's release flags (.goreleaser.yml: -trimpath,
# tags osusergo,grpcnotrace, -w -s, version.Version=v<version>).
build_cli() {
    local w="$WORK/cli" gomod log="$TL_LOGS/pulumi-cli.log"
    mkdir -p "$w"
    : >"$log"
    gomod="$(cd "$w" && gomod_field "$PULUMI_PKG@v$PULUMI_VERSION" GoMod)" ||
        tl_fail "the module proxy does not serve $PULUMI_PKG@v$PULUMI_VERSION ($PULUMI_VERSION_FROM); list what it serves with 'go list -m -versions $PULUMI_PKG', and set THINLAYER_PULUMI_VERSION to one of them"
    mkdir -p "$CLI_DIR/bin"
    (
        cd "$w"
        go mod init thinlayer.invalid/pulumi-cli-build >>"$log" 2>&1
        go mod edit -go="$(go mod edit -json "$gomod" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).Go))')" \
            -require="$PULUMI_PKG@v$PULUMI_VERSION" -require="$PULUMI_SDK@v$PULUMI_VERSION" -tool="$PULUMI_MAIN"
        # Upstream's replaces that point at other modules (not at ../sdk-style directories).
        go mod edit -json "$gomod" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const r of JSON.parse(s).Replace||[]){if(r.New.Version)console.log((r.Old.Version?r.Old.Path+"@"+r.Old.Version:r.Old.Path)+"="+r.New.Path+"@"+r.New.Version)}})' |
            while read -r rep; do go mod edit -replace="$rep"; done
    ) || tl_fail "could not write the build module for pulumi v$PULUMI_VERSION in $w"
    cp "$w/go.mod" "$CLI_DIR/build-go.mod"
    tl_timed "pulumi v$PULUMI_VERSION: go mod tidy" "$log" env -C "$w" GOFLAGS="$WRAPPER_GOFLAGS" go mod tidy
    tl_timed "pulumi v$PULUMI_VERSION: go build" "$log" env -C "$w" GOFLAGS="$WRAPPER_GOFLAGS" \
        go build -trimpath -tags osusergo,grpcnotrace -o "$CLI_DIR/bin/pulumi.new" \
        -ldflags "-w -s -X $PULUMI_SDK/go/common/version.Version=v$PULUMI_VERSION" "$PULUMI_MAIN"
    local out
    out="$("$CLI_DIR/bin/pulumi.new" version 2>&1)" || tl_fail "the built pulumi does not run: $out"
    [[ "$out" == "v$PULUMI_VERSION" ]] || tl_fail "the built pulumi reports version '$out', expected v$PULUMI_VERSION (the version ldflag did not apply)"
    mv -f "$CLI_DIR/bin/pulumi.new" "$CLI_DIR/bin/pulumi"
    go version -m "$CLI_DIR/bin/pulumi" >"$CLI_DIR/build-info.txt"
    touch "$CLI_DIR/bin/.ok"
}

# The kubernetes provider. Its main package embeds schema-embed.json, which upstream generates
# (`VERSION=<version> go generate`, i.e. generate.go) before building and which is not in the
# module zip; so the build works in a copy of the module, runs upstream's generate.go there, and
# builds with the release ldflags (.goreleaser.yml: -s -w, version.Version=v<version>).
build_k8s() {
    local src w="$WORK/kubernetes" log="$TL_LOGS/pulumi-resource-kubernetes.log" rep
    : >"$log"
    src="$(cd "$WORK" && gomod_field "$K8S_MODULE@$K8S_MODULE_VERSION" Dir)" ||
        tl_fail "the module proxy does not serve $K8S_MODULE@$K8S_MODULE_VERSION; 'go list -m -json $K8S_MODULE@latest' shows what it serves (update K8S_MODULE_VERSION and K8S_VERSION in $0)"
    mkdir -p "$K8S_DIR/bin"
    cp -r "$src" "$w"
    chmod -R u+w "$w"
    # Replace upstream's directory replace of the sdk by the served release of that directory.
    for rep in $(go mod edit -json "$w/go.mod" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const r of JSON.parse(s).Replace||[]){if(!r.New.Version)console.log(r.Old.Path)}})'); do
        [[ "$rep" == "$K8S_SDK_MODULE" ]] || tl_fail "$K8S_MODULE@$K8S_MODULE_VERSION replaces $rep with a directory; only $K8S_SDK_MODULE has a stand-in here"
        go mod edit -dropreplace="$rep" "$w/go.mod"
    done
    go mod edit -require="$K8S_SDK_MODULE@$K8S_SDK_VERSION" "$w/go.mod"
    cp "$w/go.mod" "$K8S_DIR/build-go.mod"
    tl_timed "pulumi-resource-kubernetes v$K8S_VERSION: go generate (schema-embed.json)" "$log" \
        env -C "$w/cmd/pulumi-resource-kubernetes" GOFLAGS="$WRAPPER_GOFLAGS" VERSION="$K8S_VERSION" go run generate.go
    tl_timed "pulumi-resource-kubernetes v$K8S_VERSION: go build" "$log" env -C "$w" GOFLAGS="$WRAPPER_GOFLAGS" \
        go build -trimpath -o "$K8S_BIN.new" \
        -ldflags "-s -w -X $K8S_MODULE/pkg/version.Version=v$K8S_VERSION" ./cmd/pulumi-resource-kubernetes
    check_provider_starts "$K8S_BIN.new"
    mv -f "$K8S_BIN.new" "$K8S_BIN"
    go version -m "$K8S_BIN" >"$K8S_DIR/build-info.txt"
    touch "$K8S_DIR/bin/.ok"
}

# A provider started with no arguments serves gRPC and prints its port on the first line.
check_provider_starts() {
    local bin=$1 out="$WORK/provider-start.out" pid i port=""
    "$bin" >"$out" 2>&1 &
    pid=$!
    for i in $(seq 1 100); do
        port="$(head -n1 "$out" 2>/dev/null || true)"
        [[ "$port" =~ ^[0-9]+$ ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ "$port" =~ ^[0-9]+$ ]] || tl_fail "$bin did not start (expected a port on its first line of output); it printed: $(head -c 2000 "$out")"
    tl_log "$(basename "$bin" .new) starts (served on port $port)"
}

if EXT="$(external_pulumi)"; then
    tl_log "using the pulumi on PATH: $EXT ($("$EXT" version 2>&1 || true)); not building one"
    # Our own symlink would shadow it once $TL_BIN leads PATH.
    [[ -L "$TL_BIN/pulumi" && "$(readlink "$TL_BIN/pulumi")" == "$TL_CACHE"/pulumi-v*/bin/pulumi ]] && rm -f "$TL_BIN/pulumi"
    PULUMI_BIN="$EXT"
else
    if [[ -x "$CLI_DIR/bin/pulumi" && -e "$CLI_DIR/bin/.ok" ]]; then
        tl_log "pulumi v$PULUMI_VERSION already built in $CLI_DIR"
    else
        build_cli
    fi
    tl_link "$CLI_DIR/bin/pulumi"
    PULUMI_BIN="$TL_BIN/pulumi"
fi

if [[ -x "$K8S_BIN" && -e "$K8S_DIR/bin/.ok" ]]; then
    tl_log "pulumi-resource-kubernetes v$K8S_VERSION already built in $K8S_DIR"
else
    build_k8s
fi
# An earlier version of this script linked it there; on PATH it would shadow the registered plugin.
[[ -L "$TL_BIN/pulumi-resource-kubernetes" && "$(readlink "$TL_BIN/pulumi-resource-kubernetes")" == "$TL_CACHE"/pulumi-resource-kubernetes-v*/bin/pulumi-resource-kubernetes ]] &&
    rm -f "$TL_BIN/pulumi-resource-kubernetes"

mkdir -p "$PULUMI_HOME_DIR"
for v in "${K8S_REGISTER[@]}"; do
    registered "$v" && continue
    tl_log "registering pulumi-resource-kubernetes v$K8S_VERSION as resource kubernetes $v in $PULUMI_HOME_DIR"
    PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_IGNORE_AMBIENT_PLUGINS=true \
        "$PULUMI_BIN" plugin install resource kubernetes "$v" --file "$K8S_BIN" --reinstall >&2 ||
        tl_fail "'pulumi plugin install resource kubernetes $v --file $K8S_BIN' failed (PULUMI_HOME=$PULUMI_HOME_DIR)"
    registered "$v" || tl_fail "after 'pulumi plugin install resource kubernetes $v', $PULUMI_HOME_DIR/plugins/resource-kubernetes-v$v does not hold $K8S_BIN"
done
[[ "$K8S_NPM_VERSION" == "$K8S_VERSION" ]] ||
    tl_log "note: @pulumi/kubernetes is $K8S_NPM_VERSION in package-lock.json; the provider is v$K8S_VERSION, registered under both versions; the engine will warn 'resource plugin kubernetes is expected to have version >=$K8S_NPM_VERSION, but has $K8S_VERSION' on every run until @pulumi/kubernetes is pinned to $K8S_VERSION"

print_env "$PULUMI_BIN"
