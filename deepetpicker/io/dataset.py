"""The file names and suffixes of a dataset: one place for them.

- :data:`VOLUME_SUFFIXES`: the MRC suffixes a dataset's volumes may have (a config's
  ``tomo_format``, also the suffix of the volumes preprocessing writes); :data:`ZARR_SUFFIXES`:
  Zarr tomograms (``NAME.zarr`` folders, OME-Zarr as copick writes them);
  :data:`RAW_TOMOGRAM_SUFFIXES`: what preprocessing reads from ``tomo_path`` (both);
  :data:`TOMOGRAM_SUFFIXES`: every suffix read as a tomogram (also MRC stacks named
  ``.st``/``.mrcs``); :data:`PICK_SUFFIXES`: plain pick tables (a config's ``coord_format``),
  the suffixes of the ``coords`` format of :mod:`deepetpicker.io.format_specs`.
- The folders under a dataset's ``base_path``, named as the original program names them:
  :data:`COORDS_DIR`, :data:`STANDARDIZED_DIR` / :data:`NORMALIZED_DIR` (z-score / min-max
  tomograms), :data:`OCCUPANCY_DIR`, :data:`CONFIGS_DIR`, :data:`RUNS_DIR`; the weak labels go
  to ``<label_type><label_diameter>``. A training run folder (``runs/<name>``) holds
  :data:`BEST_CHECKPOINT` and :data:`LAST_CHECKPOINT`; :data:`CHECKPOINT_SUFFIXES` are the
  suffixes of weight files (a run's checkpoints, the original program's ``.ckpt``).
- ``coords/num_name.csv`` (:data:`NUM_NAME`), the list of a preprocessed dataset's tomograms:
  one tab-separated line ``count, stem, id`` per tomogram with picks, in the original program's
layout; training configs select tomograms by these ids. Preprocessing writes it; training, the
GUI and ``train-config`` read it through :func:`read_num_name`; :func:`list_dataset` adds the
picks per class from the coordinate copies beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import PICK_SUFFIXES as PICK_SUFFIXES

VOLUME_SUFFIXES = (".mrc", ".rec", ".map")
ZARR_SUFFIXES = (".zarr",)
RAW_TOMOGRAM_SUFFIXES = VOLUME_SUFFIXES + ZARR_SUFFIXES
TOMOGRAM_SUFFIXES = VOLUME_SUFFIXES + (".st", ".mrcs") + ZARR_SUFFIXES
NUM_NAME = "num_name.csv"
COORDS_DIR = "coords"
STANDARDIZED_DIR = "data_std"
NORMALIZED_DIR = "data_norm"
OCCUPANCY_DIR = "data_ocp"
CONFIGS_DIR = "configs"
RUNS_DIR = "runs"
BEST_CHECKPOINT = "best.pth"
LAST_CHECKPOINT = "last.pth"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".tar", ".bin")


def read_num_name(path: Union[str, Path]) -> list[tuple[int, str, int]]:
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


@dataclass(frozen=True)
class DatasetTomogram:
    """One tomogram of a preprocessed dataset: its ``id`` (what training configs select),
    its ``stem`` and its picks per class (``counts``, class id -> number)."""

    id: int
    stem: str
    counts: dict[int, int] = field(default_factory=dict)


def list_dataset(coords_dir: Union[str, Path], coord_format: str = ".coords",
                 num_cls: int = 1) -> list[DatasetTomogram]:
    """The tomograms of a preprocessed dataset, in ``num_name.csv`` order.

    ``coords_dir``: the dataset's ``coords`` folder. Picks per class come from the coordinate
    copy ``<stem><coord_format>`` beside the list; without it a one-class dataset takes the
    count of the list and others know none. Raises :class:`DeepETPickerError` when the list
    is missing or unreadable.
    """
    from deepetpicker.io.picks import read_picks

    coords_dir = Path(coords_dir)
    tomograms = []
    for count, stem, index in read_num_name(coords_dir / NUM_NAME):
        table = coords_dir / f"{stem}{coord_format}"
        if table.is_file():
            counts = read_picks(table).counts(num_cls)
        else:
            counts = {1: count} if num_cls == 1 else {}
        tomograms.append(DatasetTomogram(index, stem, counts))
    return tomograms
