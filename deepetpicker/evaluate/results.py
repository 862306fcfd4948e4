"""The result of a folder evaluation: per tomogram (:class:`TomogramResult`) and for the
folder (:class:`FolderResult`, with its readable report :func:`format_folder_summary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from deepetpicker.evaluate.curves import PRCurve
from deepetpicker.evaluate.occupancy import OccupancyResult
from deepetpicker.evaluate.report import format_report
from deepetpicker.matching import DistanceResult


@dataclass
class TomogramResult:
    """One tomogram's files and its scores under each rule that was applied."""

    pred: Path
    truth: Path
    occupancy: Optional[OccupancyResult] = None
    distance: Optional[DistanceResult] = None

    def to_dict(self) -> dict:
        """The JSON form written in ``evaluation.json`` (a rule not applied is left out)."""
        out = {"pred": str(self.pred), "truth": str(self.truth)}
        if self.occupancy is not None:
            out["occupancy"] = self.occupancy.to_dict()
        if self.distance is not None:
            out["distance"] = self.distance.to_dict()
        return out


@dataclass
class FolderResult:
    """What :func:`evaluate_folder` found: per-tomogram and pooled results, written files.

    ``occupancy``/``distance``: the results pooled over the tomograms (None for a rule not
    applied); ``curve``: the precision-recall curve (None when some picks have no scores);
    ``unmatched``: prediction files without a truth file.
    """

    tomograms: list[str]
    occupancy: Optional[OccupancyResult] = None
    distance: Optional[DistanceResult] = None
    per_tomogram: dict[str, TomogramResult] = field(default_factory=dict)
    curve: Optional[PRCurve] = None
    unmatched: list[str] = field(default_factory=list)
    json_path: Optional[Path] = None
    table_path: Optional[Path] = None

    def to_dict(self) -> dict:
        """What ``evaluation.json`` holds."""
        return {"tomograms": list(self.tomograms),
                "occupancy": self.occupancy.to_dict() if self.occupancy is not None else None,
                "distance": self.distance.to_dict() if self.distance is not None else None,
                "per_tomogram": {stem: t.to_dict() for stem, t in self.per_tomogram.items()},
                "pr_curve": self.curve.to_dict() if self.curve is not None else None,
                "unmatched": list(self.unmatched)}

    def summary(self) -> str:
        """The readable report: pooled tables, then where the files are."""
        return format_folder_summary(self)


def format_folder_summary(result: FolderResult) -> str:
    """The readable report of a folder evaluation: pooled tables, then where the files are."""
    parts = [f"Evaluated {len(result.tomograms)} tomogram(s): {', '.join(result.tomograms)}"]
    if result.unmatched:
        parts.append(f"Skipped (no matching truth file): {', '.join(result.unmatched)}")
    for pooled in (result.occupancy, result.distance):
        if pooled is not None:
            parts.append(format_report(pooled))
    curve = result.curve
    if curve is not None and curve.best is not None:
        parts.append(f"PR curve: AP {curve.ap:.3f}; best F1 {curve.best.f1:.3f} at "
                     f"score >= {curve.best.threshold:.3g}")
    written = [p for p in (result.json_path, result.table_path,
                           curve.csv if curve is not None else None,
                           curve.png if curve is not None else None) if p]
    if written:
        parts.append("Written: " + ", ".join(str(p) for p in written))
    return "\n\n".join(parts)
