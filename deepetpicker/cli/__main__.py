"""``python -m deepetpicker.cli`` runs the command line, as ``python -m deepetpicker`` does."""

import sys

from deepetpicker.cli import main

if __name__ == "__main__":
    sys.exit(main())
