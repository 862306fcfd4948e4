#!/usr/bin/env bash
# Set up (scripts/setup.sh), lint with ruff (settings in pyproject.toml), then run the whole
# test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${DEEPETPICKER_VENV:-.venv}"
"$VENV/bin/ruff" check .
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "$VENV/bin/python" -m pytest -q "$@" tests
