"""Before any tomogram is scanned: which tomograms, which files a prediction will write,
which tomograms were picked before with the same weights and settings (and are skipped), and
whether the output folder lets every planned file be written."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.outputs import OutputGuard, file_stamp
from deepetpicker.io.picks import Picks, read_sidecar, sidecar_path
from deepetpicker.predict.result import score_map_names
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig
    from deepetpicker.picking.settings import PickSettings


def tomogram_paths(config: TrainConfig,
                   tomograms: Union[None, PathLike, Sequence[PathLike]]) -> list[Path]:
    """The tomogram files to pick: ``tomograms`` (files and/or folders) or, when None, those
    in the config's ``tomo_path``. Two tomograms with one name are refused."""
    from deepetpicker.io.tomogram import find_tomograms

    if tomograms is None:
        folder = Path(config.tomo_path)
        paths = find_tomograms(folder)
        if not paths:
            raise DeepETPickerError(
                f"No tomograms (.mrc, .rec, .map) in {folder}, the config's tomo_path. Give "
                f"the tomograms to pick with --tomograms.")
        return paths
    if isinstance(tomograms, (str, os.PathLike)):
        tomograms = [tomograms]
    paths: list[Path] = []
    for item in tomograms:
        item = Path(item)
        if item.is_dir():
            found = find_tomograms(item)
            if not found:
                raise DeepETPickerError(f"No tomograms (.mrc, .rec, .map) in folder {item}.")
            paths.extend(found)
        else:
            paths.append(item)   # a missing or bad file is reported when it is processed
    if not paths:
        raise DeepETPickerError("No tomograms given to pick particles in.")
    stems = {}
    for p in paths:
        if p.stem in stems and stems[p.stem] != p:
            raise DeepETPickerError(
                f"Two tomograms share the name {p.stem!r} ({stems[p.stem]} and {p}); their "
                f"picks would overwrite each other. Rename one or pick them separately.")
        stems[p.stem] = p
    return list(dict.fromkeys(paths))


def fingerprint(tomogram: Path, weights: Path, record_base: dict, settings: PickSettings,
                diameters: Sequence[float]) -> dict:
    """What decides a tomogram's picks: the files (path, size, time) and every setting."""
    keep = ("patch_size", "pad_size", "norm_type", "num_cls", "class_names")
    result = {"tomogram": file_stamp(tomogram), "weights": file_stamp(weights),
              **{k: record_base[k] for k in keep}, "picking": settings.to_dict(),
              "diameters": list(diameters)}
    if record_base.get("tta"):      # only when on: picks made before the option still match
        result["tta"] = list(record_base["tta"])
    if "zarr_level" in record_base:
        result["zarr_level"] = record_base["zarr_level"]
    if record_base.get("precision") == "bf16":   # only then: fp32 picks made before still match
        result["precision"] = "bf16"
    return result


def finished_picks(out_dir: Path, tomogram: Path, fingerprint: dict, guard: OutputGuard,
                   save_scores: bool, num_cls: int, class_names: Optional[Sequence[str]]
                   ) -> Optional[tuple[Picks, dict]]:
    """``(picks, sidecar record)`` when ``tomogram`` was picked before into ``out_dir`` with the
    same fingerprint and its files are unchanged; None when it must be picked."""
    from deepetpicker.io.picks import read_picks

    coords = out_dir / f"{tomogram.stem}.coords"
    wanted = [coords, sidecar_path(coords)]
    if save_scores:
        wanted += [out_dir / n for n in score_map_names(tomogram.stem, num_cls, class_names)]
    if not all(guard.written_by_us(p) for p in wanted):
        return None
    record = read_sidecar(coords)
    if record is None or record.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        return None
    try:
        picks = read_picks(coords, num_cls=num_cls)
    except (OSError, ValueError, DeepETPickerError):
        return None
    picks.tomo_name = tomogram.stem
    picks.voxel_size = record.get("voxel_size")
    return picks, record


@dataclass
class PredictPlan:
    """The tomograms of a prediction with their fingerprints and masks, those picked before
    (``finished``: path -> picks and sidecar record) and the tag the exports are recorded
    under (they hold every tomogram's picks, so they are written again freely only from the
    same picks)."""

    paths: list[Path]
    out_dir: Path
    guard: OutputGuard
    masks: dict = field(default_factory=dict)
    fingerprints: dict = field(default_factory=dict)
    finished: dict = field(default_factory=dict)
    export_tag: str = ""

    def check_outputs(self, save_scores: bool, num_cls: int,
                      class_names: Optional[Sequence[str]], formats: Sequence[str],
                      write_export: Callable) -> None:
        """Refuse, before any work, a planned file that may not be written: the picks,
        sidecars and score maps of the tomograms still to pick, and the files each export
        format would write (found by writing stand-in picks into a scratch folder)."""
        planned = []
        for path in self.paths:
            if str(path) not in self.finished:
                coords = Path(f"{path.stem}.coords")
                planned += [coords, sidecar_path(coords)]
                if save_scores:
                    planned += score_map_names(path.stem, num_cls, class_names)
        self.guard.check(planned)
        stand_in = [Picks(np.arange(1, num_cls + 1), np.zeros((num_cls, 3)),
                          np.full(num_cls, 0.5), tomo_name=p.stem) for p in self.paths]
        for fmt in formats:
            self.guard.check(self.guard.files_written_by(lambda folder, fmt=fmt: write_export(
                fmt, stand_in, folder, {p.stem: 1.0 for p in self.paths},
                {p.stem: (1, 1, 1) for p in self.paths})), tag=f"{fmt} {self.export_tag}")


def make_plan(paths: list[Path], out_dir: Path, guard: OutputGuard, masks: dict, weights: Path,
              record_base: dict, settings: PickSettings, diameters: Sequence[float],
              export: dict, force: bool, save_scores: bool, num_cls: int,
              class_names: Optional[Sequence[str]]) -> PredictPlan:
    """The :class:`PredictPlan` of these tomograms: each one's fingerprint (its mask's file
    included) and, unless ``force``, whether it was picked before."""
    fingerprints = {str(p): fingerprint(p, weights, record_base, settings, diameters)
                    for p in paths}
    for p, m in masks.items():
        fingerprints[str(p)]["mask"] = file_stamp(m)
    finished: dict = {}
    if not force:
        for p in paths:
            found = finished_picks(out_dir, p, fingerprints[str(p)], guard, save_scores,
                                   num_cls, class_names)
            if found is not None:
                finished[str(p)] = found
    export_tag = json.dumps([sorted(map(json.dumps, fingerprints.values())), export],
                            sort_keys=True, default=str)
    return PredictPlan(paths, out_dir, guard, masks, fingerprints, finished, export_tag)

