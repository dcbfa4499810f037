#!/usr/bin/env bash
# Warms the cache of the example's real base image: the python:3.12-slim stand-in (debootstrap
# from Debian's packages, packed with umoci) and examples/django-app/Dockerfile.base built FROM it
# with the docker builder on a dockerd of its own (apt-get + pip install from the network).
#
#   ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/example-python-<key>/   OCI layout
#   ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/example-base-<key>/     skopeo dir: copy
#
# Keys are content hashes (see tests/helpers/example-base.ts), so a machine builds each once;
# a second run takes seconds. Needs root (debootstrap, dockerd), debootstrap, umoci, skopeo,
# docker.io and docker-registry; under CI=true a missing one is a failure.
set -euo pipefail
TL_NAME=example-base.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for t in debootstrap umoci skopeo dockerd docker-registry; do
    command -v "$t" >/dev/null 2>&1 || tl_missing "$t is not installed (apt-get install -y debootstrap umoci skopeo docker.io docker-registry)"
done
[ "$(id -u)" = 0 ] || tl_missing "debootstrap and dockerd need root"
cd "$repo"
exec node --import tsx tests/helpers/example-base.ts
