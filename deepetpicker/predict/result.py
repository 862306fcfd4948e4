"""What a prediction writes for each tomogram and reports: the sidecar record of its picks,
its class score maps and the :class:`PredictResult` of the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from deepetpicker.io.atomic import atomic_path
from deepetpicker.progress import counted

if TYPE_CHECKING:
    from deepetpicker.predict.picker import PickedTomogram

SCORE_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass
class PredictResult:
    """What :func:`~deepetpicker.predict.job.predict` wrote.

    ``outputs``: one ``.coords`` file per tomogram picked or found picked (input order);
    ``sources``: the tomogram each of them was picked in (``.coords`` file -> tomogram, as
    given); ``skipped``: those found picked before with the same weights and settings.
    ``counts``: picks per class for each tomogram stem. ``score_maps``: MRC files of class
    scores. ``exports``: files in other formats. ``failed``: tomogram path -> the reason it
    was skipped.
    """

    out_dir: Path
    outputs: list[Path] = field(default_factory=list)
    sources: dict[Path, Path] = field(default_factory=dict)
    sidecars: list[Path] = field(default_factory=list)
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    score_maps: list[Path] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def pairs(self) -> list[tuple[Path, Path]]:
        """``(tomogram, picks file)`` of every output, in the order of ``outputs``."""
        return [(self.sources[out], out) for out in self.outputs]

    def add(self, coords: Path, tomogram: Path, sidecar: Path, counts: dict,
            skipped: bool = False) -> None:
        """Record the picks file ``coords`` of ``tomogram``, written now or found written."""
        if skipped:
            self.skipped.append(coords)
        self.outputs.append(coords)
        self.sources[coords] = tomogram
        self.sidecars.append(sidecar)
        self.counts[tomogram.stem] = counts

    def summary(self) -> str:
        """A few lines for the command line."""
        lines = [f"Picked particles in {len(self.outputs)} tomogram(s) in "
                 f"{self.seconds:.1f} s; picks under {self.out_dir}"]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} tomogram(s) skipped, picked before with the "
                         f"same weights and settings (--force picks them again): "
                         + ", ".join(p.name for p in self.skipped))
        for path in self.outputs:
            counts = self.counts.get(path.stem, {})
            per_class = ", ".join(f"class {c}: {n}" for c, n in counts.items())
            lines.append(f"  {path.name}: {counted(sum(counts.values()), 'pick')} "
                         f"({per_class})")
        if self.score_maps:
            lines.append(f"  score maps: {len(self.score_maps)} MRC file(s)")
        for path in self.exports:
            lines.append(f"  exported: {path}")
        for name, reason in self.failed.items():
            lines.append(f"  FAILED {name}: {reason}")
        return "\n".join(lines)


def score_map_names(stem: str, k: int, class_names: Optional[Sequence[str]]) -> list[str]:
    """File names of the class score maps of tomogram ``stem``."""
    if k == 1:
        return [f"{stem}_scores.mrc"]
    return [f"{stem}_scores_{class_names[c] if class_names else f'class{c + 1}'}.mrc"
            for c in range(k)]


def write_score_maps(scores: np.ndarray, out_dir: Path, stem: str,
                     voxel_size: Optional[float], dtype: type,
                     class_names: Optional[Sequence[str]]) -> list[Path]:
    """One MRC per class, written slab by slab under a temporary name."""
    from deepetpicker.io.tomogram import create_tomogram

    paths = []
    for c, name in enumerate(score_map_names(stem, scores.shape[0], class_names)):
        path = out_dir / name
        with atomic_path(path) as tmp:
            mrc = create_tomogram(tmp, scores.shape[1:], voxel_size, dtype, final_name=path)
            try:
                for z0 in range(0, scores.shape[1], 16):
                    mrc.data[z0:z0 + 16] = scores[c, z0:z0 + 16]
                mrc.update_header_stats()
                mrc.flush()
            finally:
                mrc.close()
        paths.append(path)
    return paths


def sidecar_record(record_base: dict, tomogram: Path, coords: Path, done: PickedTomogram,
                   num_cls: int, fingerprint: dict, mask_path: Optional[Path] = None) -> dict:
    """The sidecar of one tomogram's picks: every setting that made them, the tomogram's
    shape, voxel size and normalisation, the counts and each pick's class confidence."""
    from deepetpicker.picking.tiling import count_tiles

    picks, stats = done.picks, done.stats
    record = dict(record_base, tomogram=str(tomogram), shape=list(done.shape),
                  voxel_size=done.voxel_size, picks=coords.name,
                  counts={str(c): n for c, n in picks.counts(num_cls).items()},
                  t_dist=picks.meta["t_dist"], diameters=picks.meta["diameters"],
                  score_radius=picks.meta["score_radius"],
                  cross_class=picks.meta["cross_class"], refine=picks.meta["refine"],
                  localize=picks.meta["localize"],
                  min_score=picks.meta.get("min_score"),
                  min_class_confidence=picks.meta.get("min_class_confidence"),
                  class_confidence=[round(float(v), 4) for v in
                                    picks.meta.get("class_confidence", [])],
                  normalisation={"offset": done.offset, "scale": done.spread,
                                 "mean": stats.mean, "std": stats.std, "min": stats.min,
                                 "max": stats.max},
                  tiles=count_tiles(done.shape, record_base["patch_size"],
                                    record_base["pad_size"]),
                  fingerprint=fingerprint)
    if done.keep_tile is not None:
        record.update(mask=str(mask_path), tiles_skipped=done.keep_tile.skipped)
    return record
