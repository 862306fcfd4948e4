"""Folder evaluation, a job: every prediction file against the truth file with the same stem,
counts pooled over tomograms, a precision-recall curve, and the reports written to a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from deepetpicker.errors import DeepETPickerError
from deepetpicker.evaluate.curves import curve_from_flags, first_hit_flags
from deepetpicker.evaluate.occupancy import (
    lookup_map,
    pool_occupancy,
    score_occupancy,
    skipped_class_ids,
)
from deepetpicker.evaluate.report import write_json
from deepetpicker.evaluate.results import FolderResult, TomogramResult
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.io.picks import PICK_SUFFIXES, read_picks
from deepetpicker.matching import check_beta, evaluate_distance, num_classes_of, pool_distance
from deepetpicker.progress import CancelToken, ProgressCallback, Reporter
from deepetpicker.types import PathLike


def _pick_files(path: Path, what: str) -> dict[str, Path]:
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise DeepETPickerError(f"{what} not found: {path}")
    files = {}
    for p in sorted(path.iterdir()):
        if p.is_file() and p.suffix.lower() in PICK_SUFFIXES and not p.name.startswith("."):
            if p.stem in files:
                raise DeepETPickerError(
                    f"{path}: two pick files for {p.stem!r} ({files[p.stem].name}, {p.name}); "
                    f"keep one per tomogram.")
            files[p.stem] = p
    if not files:
        raise DeepETPickerError(
            f"No pick files (.coords, .txt, .csv) in {what.lower()} {path}.")
    return files


#: What :func:`evaluate_folder` writes in its ``out`` folder.
OUTPUT_FILES = ("evaluation.json", "evaluation.txt", "pr_curve.csv", "pr_curve.png")



def evaluate_folder(pred_dir: PathLike, truth_dir: PathLike,
                    occupancy_dir: Optional[PathLike] = None,
                    diameters: Optional[Sequence[float]] = None,
                    out: Optional[PathLike] = None, beta: float = 4.0, fraction: float = 0.5,
                    dilate: bool = True, num_cls: Optional[int] = None,
                    skip_classes: Sequence[int] = (), overwrite: bool = False,
                    progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelToken] = None) -> FolderResult:
    """Evaluate every prediction file against the truth file with the same stem.

    ``pred_dir``/``truth_dir``: folders of ``.coords``/``.txt``/``.csv`` files (or one file
    each). With ``occupancy_dir`` (MRC maps of particle ids named by the same stem, as
    preprocessing writes ``data_ocp/``) the occupancy rule is applied, by default exactly as the
    SHREC 2021 script does (``dilate``; ``skip_classes`` leaves classes out of its truth); with
    ``diameters`` (per class, voxels) the distance rule too. Counts are pooled over tomograms.
    A precision-recall curve is computed when the predictions have scores. With ``out`` (a
    folder) writes ``evaluation.json``, ``evaluation.txt`` and ``pr_curve.csv``/``.png``;
    they never replace an input or a file DeepETPicker did not write, and replace those of
    an evaluation of other inputs only with ``overwrite`` (checked before any work).

    A job: reports stage ``evaluate`` before and after each tomogram (with its F1 under each
    rule applied) and stops with :class:`~deepetpicker.progress.Cancelled` when ``cancel`` is set,
    before anything is written.
    """
    report = Reporter(progress, cancel)
    skip = _checked_settings(occupancy_dir, diameters, beta, fraction, num_cls, skip_classes)
    preds, truths, names, unmatched = _paired_files(pred_dir, truth_dir)
    occ_files = _occupancy_files(occupancy_dir, names)
    radii = [d / 2 for d in diameters] if diameters else None
    guard = tag = None
    if out is not None:
        guard, tag = _guard_outputs(out, overwrite, preds, truths, occ_files, names, diameters,
                                    beta, fraction, dilate, num_cls, skip)

    per_tomo: dict[str, TomogramResult] = {}
    curve_flags = []             # per tomogram; the maps themselves are not kept
    for i, stem in enumerate(names):
        report("evaluate", i, len(names), message=f"evaluating {stem}", item=stem)
        entry, flags, scores = _evaluate_tomogram(
            stem, preds[stem], truths[stem], occ_files.get(stem), radii, num_cls, dilate, skip,
            beta, fraction)
        per_tomo[stem] = entry
        if flags is not None:
            curve_flags.append(flags)
        shown = ", ".join(f"{key} {value:.3f}" for key, value in scores.items())
        report("evaluate", i + 1, len(names), message=f"{stem}: {shown}", item=stem,
               **scores)

    result = _pooled_result(names, unmatched, per_tomo)
    out_dir = Path(out) if out is not None else None
    if len(curve_flags) == len(names):
        result.curve = curve_from_flags(
            curve_flags, "occupancy" if occupancy_dir is not None else "distance",
            out=out_dir / "pr_curve" if out_dir else None,
            dilated=dilate if occupancy_dir is not None else None)
    if out_dir is not None:
        _write_reports(result, out_dir, guard, tag)
    return result


def _checked_settings(occupancy_dir: Optional[PathLike], diameters: Optional[Sequence[float]],
                      beta: float, fraction: float, num_cls: Optional[int],
                      skip_classes: Sequence[int]) -> tuple[int, ...]:
    """Check the rule settings before any file is read; the class ids left out of the truth."""
    check_beta(beta)
    if not fraction > 0:
        raise DeepETPickerError(f"fraction = {fraction} must be positive (0.5 in the CZII "
                                f"benchmark: within half a radius).")
    skip = skipped_class_ids(skip_classes, num_cls)
    if occupancy_dir is None and not diameters:
        raise DeepETPickerError(
            "Nothing to evaluate with: give an occupancy folder (--occupancy, SHREC rule) "
            "and/or particle diameters per class (--diameters, distance rule).")
    if occupancy_dir is not None and not Path(occupancy_dir).exists():
        raise DeepETPickerError(
            f"Occupancy folder not found: {occupancy_dir}. Give the folder of occupancy maps "
            f"(particle ids) that preprocessing writes under the dataset's base path, "
            f"<base>/data_ocp/ (--occupancy).")
    return skip


def _paired_files(pred_dir: PathLike, truth_dir: PathLike
                  ) -> tuple[dict[str, Path], dict[str, Path], list[str], list[str]]:
    """The prediction and truth files by stem, the stems that have both (in prediction order)
    and the prediction stems without a truth file."""
    preds = _pick_files(Path(pred_dir), "Prediction folder")
    truths = _pick_files(Path(truth_dir), "Truth folder")
    if Path(pred_dir).is_file() and Path(truth_dir).is_file():
        preds = {next(iter(truths)): Path(pred_dir)}          # two files: a pair, any names
    names = [s for s in preds if s in truths]
    unmatched = [s for s in preds if s not in truths]
    if not names:
        raise DeepETPickerError(
            f"No prediction file in {pred_dir} has a truth file with the same name in "
            f"{truth_dir} (predictions: {', '.join(sorted(preds)[:5])}; truth: "
            f"{', '.join(sorted(truths)[:5])}). Name them after the same tomogram.")
    return preds, truths, names, unmatched


def _occupancy_files(occupancy_dir: Optional[PathLike], names: list[str]) -> dict[str, Path]:
    """The occupancy map of each tomogram by stem (none without ``occupancy_dir``)."""
    from deepetpicker.io.tomogram import find_tomograms

    occ_files = {}
    if occupancy_dir is not None:
        occ_files = {p.stem: p for p in find_tomograms(occupancy_dir)}
        missing = [s for s in names if s not in occ_files]
        if missing:
            raise DeepETPickerError(
                f"No occupancy map for {', '.join(missing)} in {occupancy_dir}; expected "
                f"{missing[0]}.mrc (run preprocessing, which writes data_ocp/).")
    return occ_files


def _guard_outputs(out: PathLike, overwrite: bool, preds: dict[str, Path],
                   truths: dict[str, Path], occ_files: dict[str, Path], names: list[str],
                   diameters: Optional[Sequence[float]], beta: float, fraction: float,
                   dilate: bool, num_cls: Optional[int], skip: tuple[int, ...]
                   ) -> tuple[Any, str]:
    """The output guard of ``out``, checked for :data:`OUTPUT_FILES`, and the tag recording
    the inputs and settings of this evaluation."""
    from deepetpicker.io.outputs import OutputGuard, file_stamp

    inputs = [*(preds[s] for s in names), *(truths[s] for s in names),
              *(occ_files[s] for s in names if s in occ_files)]
    guard = OutputGuard(out, overwrite=overwrite, inputs=inputs)
    tag = json.dumps(["evaluate", [file_stamp(p) for p in inputs], diameters, beta,
                      fraction, dilate, num_cls, sorted(skip)], default=str)
    guard.check(OUTPUT_FILES, tag=tag)
    return guard, tag


def _evaluate_tomogram(stem: str, pred_path: Path, truth_path: Path, occ_path: Optional[Path],
                       radii: Optional[list], num_cls: Optional[int], dilate: bool,
                       skip: tuple[int, ...], beta: float, fraction: float
                       ) -> tuple[TomogramResult, Optional[list], dict[str, float]]:
    """One tomogram's scores under each rule applied (the occupancy rule with ``occ_path``,
    the distance rule with ``radii``), its curve flags (None without scores) and the F1
    values reported."""
    from deepetpicker.io.tomogram import load_tomogram

    truth = read_picks(truth_path, num_cls=num_cls, tomo_name=stem)
    pred = read_picks(pred_path, num_cls=num_cls, tomo_name=stem)
    entry = TomogramResult(pred=pred_path, truth=truth_path)
    lookup = None
    scores = {}
    flags = None
    if occ_path is not None:
        k = num_classes_of(pred, truth, num_cls, str(pred_path))
        lookup = lookup_map(load_tomogram(occ_path, mmap=False).data, truth, dilate,
                            str(occ_path))
        entry.occupancy = score_occupancy(pred, truth, lookup, k, dilate, skip)
        scores["F1"] = entry.occupancy.f1
    if radii is not None:
        entry.distance = evaluate_distance(pred, truth, radii, fraction=fraction,
                                           beta=beta, num_cls=num_cls)
        scores["distance_F1"] = entry.distance.f1
    if pred.scores is not None:
        flags = first_hit_flags(pred, truth, lookup, radii, fraction, None, skip)
    del lookup
    return entry, flags, scores


def _pooled_result(names: list[str], unmatched: list[str],
                   per_tomo: dict[str, TomogramResult]) -> FolderResult:
    """The folder's result: the tomograms' results and their counts pooled per rule."""
    result = FolderResult(tomograms=names, unmatched=unmatched, per_tomogram=per_tomo)
    occ_results = [t.occupancy for t in per_tomo.values() if t.occupancy is not None]
    dist_results = [t.distance for t in per_tomo.values() if t.distance is not None]
    if occ_results:
        result.occupancy = pool_occupancy(occ_results)
    if dist_results:
        result.distance = pool_distance(dist_results)
    return result


def _write_reports(result: FolderResult, out_dir: Path, guard: Any, tag: str) -> None:
    """Write ``evaluation.json`` and ``evaluation.txt`` and record them with the curve's files."""
    result.json_path = write_json(out_dir / "evaluation.json", result.to_dict())
    result.table_path = out_dir / "evaluation.txt"
    write_text_atomic(result.table_path, result.summary() + "\n")
    curve_files = [result.curve.csv, result.curve.png] if result.curve else []
    guard.record([result.json_path, result.table_path, *filter(None, curve_files)],
                 tag=tag)
