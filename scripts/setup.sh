#!/usr/bin/env bash
# Create .venv (once) and install physprior into it with the extras given as $1 (e.g. "dev").
# torch is installed first and pinned: 2.13.0 is the CPU build these machines carry, and once it
# is there the package's `torch>=2.2` is satisfied without pulling a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install "torch==2.13.0"
# Editable in setuptools' "strict" mode: a tree of links under build/ on the path, which type
# checkers read (the default mode maps physprior.envs and physprior.agents through an import
# hook that mypy cannot follow). Edits show at once; a new module needs this script again
# (scripts/test.sh runs it every time).
editable=(--config-settings editable_mode=strict -e)
if [ -n "$extras" ]; then
    pip_install "${editable[@]}" ".[$extras]"
else
    pip_install "${editable[@]}" .
fi
