#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the end-to-end demo on built-in simulated sample data:
# simulate -> preprocess -> train -> predict -> evaluate. Extra arguments go to `deepetpicker demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${DEEPETPICKER_VENV:-.venv}"
exec "$VENV/bin/deepetpicker" demo "$@"
