"""Readable text tables and the JSON file of an evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from deepetpicker.evaluate.occupancy import OccupancyResult
from deepetpicker.io.atomic import atomic_path
from deepetpicker.matching import DistanceResult


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_report(result: Union[OccupancyResult, DistanceResult],
                  class_names: Optional[Sequence[str]] = None) -> str:
    """A readable text table of one occupancy-rule or distance-rule result (one tomogram's or
    a pooled one from :func:`~deepetpicker.evaluate.folder.evaluate_folder`)."""
    def name(c: int) -> str:
        return class_names[c - 1] if class_names and c <= len(class_names) else f"class {c}"

    lines = []
    label = f" ({result.tomo_name})" if result.tomo_name else ""
    if isinstance(result, OccupancyResult):
        if result.dilated:
            how = "SHREC 2021, maps dilated by one voxel (6-connected) before the lookup"
        else:
            how = "plain lookup without dilation (--no-dilate; SHREC 2021 dilates first)"
        lines.append(f"Occupancy rule, {how}{label}")
        if result.skipped_classes:
            lines.append(f"  left out of the truth: "
                         f"{', '.join(name(c) for c in result.skipped_classes)}; "
                         f"{result.skipped_hits} pick(s) on those particles count only in "
                         f"RR")
        lines.append("  RR     TP     FP     FN     MH    RO    AD     precision recall  F1")
        lines.append(f"  {result.rr:<6} {result.tp:<6} {result.fp:<6} "
                     f"{result.fn:<6} {result.mh:<5} {result.ro:<5} "
                     f"{_fmt(result.ad, 2):<6} {_fmt(result.precision):<9} "
                     f"{_fmt(result.recall):<7} {_fmt(result.f1)}")
        lines.append("")
        lines.append(f"  {'class':<14}{'truth':>6}{'picks':>7}{'F1':>8}{'pick P':>9}"
                     f"{'pick R':>8}{'pick F1':>9}")
        for pc in result.per_class:
            if pc.skipped:
                lines.append(f"  {name(pc.class_id):<14}{'-':>6}{pc.n_pred:>7}  skipped")
                continue
            lines.append(f"  {name(pc.class_id):<14}{pc.n_truth:>6}{pc.n_pred:>7}"
                         f"{_fmt(pc.f1):>8}{_fmt(pc.pick_precision):>9}"
                         f"{_fmt(pc.pick_recall):>8}{_fmt(pc.pick_f1):>9}")
        k = result.num_cls
        if k > 1:
            lines.append("")
            lines.append("  confusion (rows: true class; columns: class of the first pick, "
                         "0 = not found)")
            lines.append("        " + "".join(f"{c:>6}" for c in range(k + 1)))
            for c, row in enumerate(result.confusion, start=1):
                lines.append(f"  {c:>4}  " + "".join(f"{v:>6}" for v in row))
    else:
        lines.append(f"Distance rule (within {result.fraction:g} x radius, "
                     f"{result.matching} one-to-one matching){label}")
        beta = result.beta
        lines.append(f"  {'class':<14}{'truth':>6}{'picks':>7}{'TP':>6}{'FP':>6}{'FN':>6}"
                     f"{'precision':>11}{'recall':>8}{'F1':>7}{f'F{beta:g}':>7}")
        rows = [(name(pc.class_id), pc) for pc in result.per_class] + [("all", result)]
        for label_c, pc in rows:
            lines.append(f"  {label_c:<14}{pc.n_truth:>6}{pc.n_pred:>7}{pc.tp:>6}"
                         f"{pc.fp:>6}{pc.fn:>6}{_fmt(pc.precision):>11}"
                         f"{_fmt(pc.recall):>8}{_fmt(pc.f1):>7}"
                         f"{_fmt(pc.f_beta):>7}")
    return "\n".join(lines)


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON under ``path`` (atomically); paths and numpy numbers
    become text and plain numbers."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")
    return path


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
