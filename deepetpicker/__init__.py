"""DeepETPicker: weakly supervised 3D particle picking in cryo-electron tomograms.

The core library never imports Qt; the desktop application lives in the top-level
``gui`` package and drives the same job functions as the ``deepetpicker`` command.
"""

__version__ = "0.1.0"

from deepetpicker.errors import DeepETPickerError  # noqa: E402,F401
