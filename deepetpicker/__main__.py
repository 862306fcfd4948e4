"""``python -m deepetpicker`` runs the command line (also under ``torchrun``)."""

import sys

from deepetpicker.cli import main

if __name__ == "__main__":
    sys.exit(main())
