"""The file names and suffixes of a dataset: one place for them.

- :data:`VOLUME_SUFFIXES`: the MRC suffixes a dataset's volumes may have (a config's
  ``tomo_format``, also the suffix of the volumes preprocessing writes); :data:`ZARR_SUFFIXES`:
  Zarr tomograms (``NAME.zarr`` folders, OME-Zarr as copick writes them);
  :data:`RAW_TOMOGRAM_SUFFIXES`: what preprocessing reads from ``tomo_path`` (both);
  :data:`TOMOGRAM_SUFFIXES`: every suffix read as a tomogram (also MRC stacks named
  ``.st``/``.mrcs``); :data:`PICK_SUFFIXES`: plain pick tables (a config's ``coord_format``).
- The folders under a dataset's ``base_path``, named as the original program names them:
  :data:`COORDS_DIR`, :data:`STANDARDIZED_DIR` / :data:`NORMALIZED_DIR` (z-score / min-max
  tomograms), :data:`OCCUPANCY_DIR`, :data:`CONFIGS_DIR`, :data:`RUNS_DIR`; the weak labels go
  to ``<label_type><label_diameter>``.
- ``coords/num_name.csv`` (:data:`NUM_NAME`), the list of a preprocessed dataset's tomograms:
  one tab-separated line ``count, stem, id`` per tomogram with picks, in the original program's
layout; training configs select tomograms by these ids. Preprocessing writes it; training, the
GUI and ``train-config`` read it through :func:`read_num_name`.
"""

from __future__ import annotations

from pathlib import Path

from deepetpicker.errors import DeepETPickerError

VOLUME_SUFFIXES = (".mrc", ".rec", ".map")
ZARR_SUFFIXES = (".zarr",)
RAW_TOMOGRAM_SUFFIXES = VOLUME_SUFFIXES + ZARR_SUFFIXES
TOMOGRAM_SUFFIXES = VOLUME_SUFFIXES + (".st", ".mrcs") + ZARR_SUFFIXES
PICK_SUFFIXES = (".coords", ".txt", ".csv")
NUM_NAME = "num_name.csv"
COORDS_DIR = "coords"
STANDARDIZED_DIR = "data_std"
NORMALIZED_DIR = "data_norm"
OCCUPANCY_DIR = "data_ocp"
CONFIGS_DIR = "configs"
RUNS_DIR = "runs"


def read_num_name(path) -> list[tuple[int, str, int]]:
    """``(count, stem, id)`` rows of a ``num_name.csv`` (ours or the original's).

    The original writes the count as a float (``12.0``); both forms are read.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepETPickerError(
            f"{path} not found. It is written by preprocessing; run `deepetpicker preprocess` "
            f"on the dataset's preprocessing config first.")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            count, stem, idx = int(float(parts[0])), parts[1], int(float(parts[2]))
        except (IndexError, ValueError):
            raise DeepETPickerError(
                f"{path}, line {lineno}: {line!r} is not 'count<TAB>name<TAB>id'. Run "
                f"preprocessing again to rewrite this file.") from None
        rows.append((count, stem, idx))
    return rows
