#!/usr/bin/env bash
# Set up .venv and run the main job on its small default. Extra arguments go to `physprior demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/physprior demo --out runs/demo "$@"
