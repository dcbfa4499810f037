#!/usr/bin/env bash
# Builds the example app's virtualenv (examples/django-app/requirements/production.txt, from PyPI)
# once per (requirement files, Python version) and prints its path on stdout.
#
#   ${THINLAYER_CACHE:-$HOME/.cache/thinlayer}/example-venv-<hash>/
#
# <hash> covers every requirements/*.txt (name and bytes), the interpreter's version and this
# recipe's version, so editing a requirement file or changing Python builds a new venv and leaves
# the old one alone. Idempotent and safe to run concurrently (flock): a finished venv carries a
# .complete marker; a half-built one (interrupted) is removed and built again. The venv is built in
# place, not renamed into place, because a venv's scripts (bin/gunicorn, bin/celery) carry its
# absolute path in their shebangs.
#
# Python: $THINLAYER_PYTHON, else python3.12 (the example's python:3.12-slim) when on PATH, else
# python3. Progress goes to stderr.
set -euo pipefail

RECIPE=1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
reqdir="$repo/examples/django-app/requirements"
cache="${THINLAYER_CACHE:-$HOME/.cache/thinlayer}"

python="${THINLAYER_PYTHON:-}"
if [ -z "$python" ]; then
    if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import venv' >/dev/null 2>&1; then python=python3.12; else python=python3; fi
fi
if ! pyver=$("$python" -c 'import sys, venv; print(sys.implementation.name + "-" + ".".join(map(str, sys.version_info[:3])))' 2>/dev/null); then
    echo "example-venv: THINLAYER_PYTHON/python3 ($python) cannot run or lacks the venv module; expected a Python 3.10+ with venv. Fix: apt-get install -y python3-venv, or set THINLAYER_PYTHON to such an interpreter." >&2
    exit 1
fi

shopt -s nullglob
reqs=("$reqdir"/*.txt)
if [ ${#reqs[@]} -eq 0 ]; then
    echo "example-venv: no requirement files in $reqdir; expected requirements/*.txt (production.txt at least)." >&2
    exit 1
fi
hash=$(
    {
        printf 'recipe %s\npython %s\n' "$RECIPE" "$pyver"
        for f in "${reqs[@]}"; do printf '%s %s\n' "$(basename "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"; done
    } | sha256sum | cut -c1-16
)
venv="$cache/example-venv-$hash"

mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi
rm -rf "$venv"
echo "example-venv: building $venv ($pyver, $(basename "$reqdir")/production.txt from PyPI)" >&2
start=$SECONDS
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --no-input --quiet --disable-pip-version-check -r "$reqdir/production.txt" >&2
"$venv/bin/python" -m pip freeze > "$venv/freeze.txt"
touch "$venv/.complete"
echo "example-venv: built in $((SECONDS - start)) s" >&2
echo "$venv"
