#!/usr/bin/env bash
# Installs and builds everything the tests need, idempotently; what .ci/run runs before the tests.
#
#   bash scripts/setup.sh            # apt packages, npm ci, then the tool builds (cached)
#   THINLAYER_CACHE=/some/dir ...    # where built tools live (default ~/.cache/thinlayer)
#
# The slow parts are Go builds from the Go module proxy (the Pulumi CLI and plugins, the
# Kubernetes control plane, etcd, kwok), a debootstrap of the python stand-in and the example's
# virtualenv. Each is cached under $THINLAYER_CACHE by its versions or content hash, so a machine
# builds it once; a second run takes seconds. Independent builds run side by side, and each
# writes its log to $THINLAYER_CACHE/logs/. Under CI=true any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export THINLAYER_CACHE="${THINLAYER_CACHE:-$HOME/.cache/thinlayer}"
mkdir -p "$THINLAYER_CACHE/logs" "$THINLAYER_CACHE/bin"
started=$(date +%s)

# 1. Debian packages. docker-registry: the test registry; apache2-utils: htpasswd; buildah, skopeo,
# umoci, busybox-static: the builder and image tools; docker.io: dockerd with BuildKit; debootstrap:
# the python stand-in; postgresql: the example's database; redis-server: the worker's broker;
# openssl: the local cluster's certificates; jq: the preview workflow's comment step (tested); g++/make/python3: the native addon and the migration
# classifier; kubectl is used when present (the tests read the cluster through it).
apt_pkgs=(docker-registry apache2-utils buildah skopeo umoci busybox-static git g++ make python3 python3-venv
          docker.io debootstrap postgresql redis-server openssl procps jq)
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$THINLAYER_CACHE/logs/apt.log" 2>&1 ||
        { tail -50 "$THINLAYER_CACHE/logs/apt.log"; exit 1; }
fi
# Debian starts these services where an init system runs; the tests start their own instances on
# free loopback ports and need none of them.

# 2. npm packages (builds the native addon, and the compiled CLI where `prepare` does).
if [ "${SETUP_SKIP_NPM:-}" != "1" ]; then
    npm ci --no-audit --no-fund
fi

# 3. Tool builds, side by side: the Pulumi CLI then our own plugins (they register with it), the
# Kubernetes control plane, the example's virtualenv and its python stand-in.
pids=()
names=()
run_bg() {
    local name=$1
    shift
    ( "$@" >"$THINLAYER_CACHE/logs/$name.log" 2>&1 ) &
    pids+=($!)
    names+=("$name")
}
run_bg pulumi bash -c 'bash scripts/tools/pulumi.sh && bash scripts/tools/pulumi-hosts.sh'
run_bg kube bash scripts/tools/kube.sh
[ -f scripts/tools/example-venv.sh ] && run_bg example-venv bash scripts/tools/example-venv.sh
[ -f scripts/tools/example-base.sh ] && run_bg example-base bash scripts/tools/example-base.sh
failed=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "setup: ${names[$i]} ok"
    else
        echo "setup: ${names[$i]} FAILED; the end of its log ($THINLAYER_CACHE/logs/${names[$i]}.log):"
        tail -40 "$THINLAYER_CACHE/logs/${names[$i]}.log" | sed 's/^/    /'
        failed=1
    fi
done
echo "setup: done in $(( $(date +%s) - started )) s; tools in $THINLAYER_CACHE/bin"
exit "$failed"
