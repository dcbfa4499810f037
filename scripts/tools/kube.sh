#!/usr/bin/env bash
# Builds a local Kubernetes control plane for the tests from published Go modules, once per machine:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   etcd                                                     (go.etcd.io/etcd/server/v3)
#   kwok                                                     (sigs.k8s.io/kwok/cmd/kwok)
# into ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/kube-<versions>/bin, with symlinks in
# ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/bin. Idempotent: a second run checks five files and exits.
# Why these versions: kwok v0.8.0 is built against k8s.io/* v0.36.1, so the control plane is 1.36
# (newest 1.36 patch served); etcd v3.6.8 is the etcd that k8s.io/kubernetes v1.36.3 itself requires.
# Cold builds on 2 cores take tens of minutes (kube-apiserver is the long one): run it in the
# background with a log, e.g. `nohup bash scripts/tools/kube.sh >/tmp/kube.log 2>&1 &`.
set -euo pipefail

K8S_VERSION=1.36.3
ETCD_VERSION=3.6.8
KWOK_VERSION=0.8.0

CACHE="${THINLAYER_CACHE:-$HOME/.cache/thinlayer}"
DIR="$CACHE/kube-$K8S_VERSION-etcd$ETCD_VERSION-kwok$KWOK_VERSION"
BIN="$CACHE/bin"
TOOLS=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

fail() {
    echo "kube.sh: $*" >&2
    exit 1
}

# Fast path: every binary built (the .ok marker is written only after a binary passed its
# --version check) and every symlink pointing at it.
done_already() {
    local t
    for t in "${TOOLS[@]}"; do
        [[ -x "$DIR/bin/$t" && -e "$DIR/bin/.$t.ok" && "$(readlink "$BIN/$t" 2>/dev/null)" == "$DIR/bin/$t" ]] || return 1
    done
}
if done_already; then
    exit 0
fi

# Go's own install location, for shells (CI's among them) whose PATH lacks it.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
    [[ "${CI:-}" == "true" ]] && fail "go is not on PATH; it builds the Kubernetes binaries (install Go >= 1.26 as /usr/local/go and put /usr/local/go/bin on PATH); CI=true, so this is a failure"
    echo "kube.sh: go is not on PATH, so the Kubernetes binaries are not built; cluster tests will skip (install Go >= 1.26 to build them)" >&2
    exit 0
fi
GOVER="$(go env GOVERSION)"
case "$GOVER" in
    go1.2[6-9]* | go1.[3-9][0-9]*) ;;
    *) fail "go is $GOVER; k8s.io/kubernetes v$K8S_VERSION needs go >= 1.26 (its go.mod says go 1.26.0); install a newer Go" ;;
esac
# Never fetch a different toolchain behind our back: the one on PATH builds, or we say why not.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod"

mkdir -p "$DIR/bin" "$BIN"
# One builder at a time per cache (two test runs or two shells racing would double a 20-minute build).
exec 9>"$DIR/.lock"
flock 9
if done_already; then
    exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/thinlayer-kube-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log() { echo "kube.sh: $*" >&2; }
timed() { # timed NAME CMD... : runs CMD, records its wall time in $DIR/build-times.txt
    local name=$1 start end
    shift
    start=$(date +%s)
    "$@" || fail "building $name failed (command: $*); the go output above says why. Versions: kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION, kwok v$KWOK_VERSION, $GOVER"
    end=$(date +%s)
    echo "$(date -u +%FT%TZ) $name $((end - start))s $GOVER" >>"$DIR/build-times.txt"
    log "$name built in $((end - start))s"
}
check() { # check NAME VERSION-ARGS...: the binary runs and reports the version we built
    local t=$1 out
    shift
    out="$("$DIR/bin/$t" "$@" 2>&1)" || fail "$DIR/bin/$t $* failed: $out"
    echo "$out" | grep -q "$EXPECT" || fail "$DIR/bin/$t $* printed '$out', expected it to contain '$EXPECT' (a build without version ldflags?)"
    touch "$DIR/bin/.$t.ok"
}
need() { [[ ! -e "$DIR/bin/.$1.ok" ]]; }

# --- kube-apiserver, kube-controller-manager, kube-scheduler -------------------------------------
if need kube-apiserver || need kube-controller-manager || need kube-scheduler; then
    # k8s.io/kubernetes replaces its staging modules with ./staging/src/..., which `go install pkg@v`
    # refuses and a dependent module ignores. A throwaway wrapper module replaces each staging module
    # that k8s.io/kubernetes requires (at v0.0.0) with its published twin v0.<minor>.<patch>.
    KMOD="$WORK/k8s"
    mkdir -p "$KMOD"
    gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION")" || fail "cannot download k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy: $gomod"
    modfile="$(echo "$gomod" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    buildDate="$(echo "$gomod" | sed -n 's/^[[:space:]]*"Time": "\(.*\)",$/\1/p')"
    [[ -f "$modfile" ]] || fail "go mod download printed no GoMod path for k8s.io/kubernetes@v$K8S_VERSION"
    staging_version="v0.${K8S_VERSION#1.}"
    {
        echo "module thinlayer.invalid/kube-build"
        echo "go 1.26.0"
        echo "require k8s.io/kubernetes v$K8S_VERSION"
        awk -v v="$staging_version" '
            $2 == "=>" && $3 ~ /^\.\/staging\// { staged[$1] = 1 }
            $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { required[$1] = 1 }
            END { for (m in staged) if (m in required) print "replace " m " => " m " " v }
        ' "$modfile" | sort
    } >"$KMOD/go.mod"
    log "wrapper module: $(grep -c '^replace' "$KMOD/go.mod") staging modules replaced with $staging_version"
    pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
    (cd "$KMOD" && go get "${pkgs[@]/%/@v$K8S_VERSION}") || fail "resolving the k8s.io/kubernetes v$K8S_VERSION wrapper module failed (see above; a staging module not served at $staging_version?)"
    # The same variables hack/lib/version.sh sets, in both packages it sets them in; without them the
    # apiserver reports v0.0.0 and clients warn about version skew. The build date is the module's
    # publication time, so two machines build the same binary.
    minor="${K8S_VERSION#1.}"
    minor="${minor%%.*}"
    ldflags="-s -w"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.buildDate=$buildDate -X $pkg.gitTreeState=clean -X $pkg.gitCommit=v$K8S_VERSION-module"
    done
    # One go build for the three: shared packages compile once.
    mkdir -p "$WORK/out"
    timed "kube-apiserver+kube-controller-manager+kube-scheduler" \
        bash -c 'cd "$1" && out=$2 && shift 2 && go build -ldflags "$0" -o "$out/" "$@"' "$ldflags" "$KMOD" "$WORK/out" "${pkgs[@]}"
    EXPECT="v$K8S_VERSION"
    for t in kube-apiserver kube-controller-manager kube-scheduler; do
        mv -f "$WORK/out/$t" "$DIR/bin/$t"
        check "$t" --version
    done
fi

# --- etcd ------------------------------------------------------------------------------------------
if need etcd; then
    # go.etcd.io/etcd/server/v3 has replace directives (../api, ../pkg ...), so `go install @v` refuses
    # it; a wrapper that only requires it uses the published versions its go.mod already names.
    EMOD="$WORK/etcd"
    mkdir -p "$EMOD"
    printf 'module thinlayer.invalid/etcd-build\ngo 1.26.0\n' >"$EMOD/go.mod"
    (cd "$EMOD" && go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION") || fail "resolving go.etcd.io/etcd/server/v3@v$ETCD_VERSION failed (see above)"
    timed etcd bash -c 'cd "$0" && go build -ldflags "-s -w" -o "$1" go.etcd.io/etcd/server/v3' "$EMOD" "$WORK/etcd.bin"
    mv -f "$WORK/etcd.bin" "$DIR/bin/etcd"
    EXPECT="etcd Version: $ETCD_VERSION"
    check etcd --version
fi

# --- kwok ------------------------------------------------------------------------------------------
if need kwok; then
    # sigs.k8s.io/kwok has no replace directives, and its source already carries its version.
    timed kwok env GOBIN="$WORK/gobin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
    mv -f "$WORK/gobin/kwok" "$DIR/bin/kwok"
    EXPECT="$KWOK_VERSION"
    check kwok --version
fi

for t in "${TOOLS[@]}"; do
    ln -sfn "$DIR/bin/$t" "$BIN/$t"
done
done_already || fail "internal: binaries built but the fast-path check still fails in $DIR"
log "ready: ${TOOLS[*]} in $BIN (build times: $DIR/build-times.txt)"
