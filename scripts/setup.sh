#!/usr/bin/env bash
# Create a virtual environment (.venv, or $DEEPETPICKER_VENV) and install DeepETPicker into it
# with everything it needs. Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DEEPETPICKER_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

stamp="$VENV/.deepetpicker-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/setup.sh ]; then
    exit 0
fi

python -m pip install -q --upgrade pip
# torch first: with none installed, a plain requirement would pull the newest build with
# several GB of CUDA packages. 2.13.0 is the tested version; an existing torch is kept.
if ! python -c "import torch" 2>/dev/null; then
    echo "Installing torch 2.13.0"
    python -m pip install -q "torch==2.13.0"
fi
# elasticdeform's binary wheel is built against NumPy 1 and fails to import with NumPy 2;
# building it from source works with both.
if ! python -c "import elasticdeform" 2>/dev/null; then
    echo "Building elasticdeform from source"
    python -m pip install -q --no-binary elasticdeform elasticdeform
fi
echo "Installing DeepETPicker and its dependencies"
python -m pip install -q -e ".[test]"
touch "$stamp"
