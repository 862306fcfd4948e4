"""copick projects as DeepETPicker's data: a project becomes a training dataset, and
predictions go back into the project as copick picks.

:func:`import_project` writes, under an output folder,

- ``raw/<run>.zarr``, a link to the run's tomogram where the project lies on this computer
  (preprocessing reads OME-Zarr in place), else ``raw/<run>.mrc``, the tomogram copied slab
  by slab; only runs with picks get one, so runs without picks stay out of training;
- ``raw/<run>.coords``: the run's picks of every particle object (class id = the object's
  ``label``, 0-based voxels at the chosen voxel spacing);
- ``configs/<name>.py``: a preprocess config with the classes' names and diameters (twice
  each object's radius, in voxels) and a weak-label diameter per class (about 60 % of each),
  ready for ``deepetpicker preprocess``;
- ``copick_import.json``: which runs were taken, which had no picks and which lacked the
  tomogram.

:func:`predict_into_project` runs :func:`deepetpicker.predict.job.predict` on each run's
tomogram (the ``.zarr`` folder in place, read chunk by chunk, or a temporary MRC copy for a
project stored elsewhere), keeping the usual ``.coords`` and sidecar per run under
``<out>/<run>/``, and stores the picks in the project: one copick picks file per object, with
the scores, under the given user and session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io import copick_project as cp
from deepetpicker.io.formats import COPICK_SESSION, COPICK_USER
from deepetpicker.progress import CancelToken, ProgressCallback, Reporter, counted
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig


IMPORT_RECORD = "copick_import.json"
RAW_DIR = "raw"
DEFAULT_PREDICT_DIR = "deepetpicker-predictions"


# --------------------------------------------------------------------------------------------
# copick project -> training dataset
# --------------------------------------------------------------------------------------------
@dataclass
class CopickImportResult:
    """What :func:`import_project` wrote: ``config`` (the preprocess config), per run taken
    the picks per class (``counts``), its ``tomograms`` entry (a link or an MRC copy),
    ``no_picks`` (runs skipped for training) and ``no_tomogram`` (runs without the tomogram
    type at the voxel spacing)."""

    out_dir: Path
    config: Path
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    tomograms: dict[str, Path] = field(default_factory=dict)
    no_picks: list[str] = field(default_factory=list)
    no_tomogram: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    diameters: list[int] = field(default_factory=list)

    def summary(self) -> str:
        classes = ", ".join(f"{k} {n} ({d} voxels)" for k, (n, d) in
                            enumerate(zip(self.class_names, self.diameters), start=1))
        lines = [f"Imported {len(self.counts)} run(s) with picks into {self.out_dir}; "
                 f"classes: {classes}"]
        for run, counts in self.counts.items():
            lines.append(f"  {run}: {counted(sum(counts.values()), 'pick')} "
                         f"({', '.join(f'class {c}: {n}' for c, n in counts.items())})")
        if self.no_picks:
            lines.append(f"  without picks, left out of training: {', '.join(self.no_picks)}")
        if self.no_tomogram:
            lines.append(f"  without the tomogram, skipped: {', '.join(self.no_tomogram)}")
        lines.append(f"Preprocess with:\n  deepetpicker preprocess {self.config}")
        return "\n".join(lines)


def _dataset_name(root, config: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(root.config.name or "")).strip("_.")
    return name or re.sub(r"[^A-Za-z0-9_.-]+", "_", config.stem) or "copick"


def _import_tag(config: Path, tomo_type: str, voxel_spacing: float, user_id: str,
                session_id: Optional[str], found: list) -> str:
    """What decides an import's files: the options and every run's picks."""
    import hashlib

    digest = hashlib.sha256()
    for run, _, picks in found:
        digest.update(run.name.encode())
        for array in (picks.classes, picks.xyz, picks.scores):
            digest.update(np.ascontiguousarray(array).tobytes())
    return json.dumps([str(config.resolve()), tomo_type, voxel_spacing, user_id, session_id,
                       digest.hexdigest()])


def _link_or_copy(tomogram, run_name: str, raw: Path, voxel_spacing: float, guard,
                  overwrite: bool, report, tag: str) -> Path:
    """``raw/<run>.zarr`` linked to the project's tomogram, or ``raw/<run>.mrc`` copied."""
    source = cp.local_zarr_path(tomogram)
    if source is not None:
        link = raw / f"{run_name}.zarr"
        if link.is_symlink() and link.resolve() == source.resolve():
            return link
        if link.is_symlink() and overwrite:
            link.unlink()
        elif link.exists() or link.is_symlink():
            raise DeepETPickerError(
                f"{link} exists and is not a link to {source}; it is never replaced. Choose "
                f"another --out folder or move it away.")
        try:
            raw.mkdir(parents=True, exist_ok=True)
            os.symlink(source, link, target_is_directory=True)
            return link
        except OSError:           # no symbolic links here (e.g. Windows without the right)
            pass
    path = raw / f"{run_name}.mrc"
    guard.check([path], tag=tag)
    raw.mkdir(parents=True, exist_ok=True)
    cp.copy_tomogram(tomogram, path, voxel_spacing, report)
    guard.record([path], tag=tag)
    return path


def import_project(config: PathLike, tomo_type: str, voxel_spacing: float, user_id: str,
                   out: PathLike, session_id: Optional[str] = None,
                   runs: Optional[Sequence[str]] = None,
                   progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelToken] = None,
                   overwrite: bool = False) -> CopickImportResult:
    """Turn the copick project of ``config`` into a dataset under ``out`` (see the module
    docstring): the ``tomo_type`` tomograms at ``voxel_spacing`` Angstrom and the particle
    picks of ``user_id`` (``session_id``, or all its sessions) of ``runs`` (default all).

    Raises before writing anything for a project that cannot be opened, particles whose labels
    are not 1..K or that have no radius, unknown runs, and no run with both the tomogram and
    picks. Files an earlier import wrote are replaced only with ``overwrite``.
    Progress: stage ``import`` per run (and ``copy`` per slab of a tomogram copied).
    """
    from deepetpicker.io.atomic import write_text_atomic
    from deepetpicker.io.dataset import CONFIGS_DIR
    from deepetpicker.io.outputs import OutputGuard
    from deepetpicker.io.picks import write_picks

    report = Reporter(progress, cancel)
    config = Path(config).expanduser()
    voxel_spacing = _positive(voxel_spacing, "--voxel-spacing")
    root = cp.open_project(config)
    source = str(config)
    objects = cp.objects_as_classes(cp.particle_objects(root, source), source)
    diameters = _class_diameters(objects, voxel_spacing, source)
    chosen = cp.project_runs(root, runs, source)
    out = Path(out).expanduser()
    raw = out / RAW_DIR
    guard = OutputGuard(out, overwrite=overwrite, inputs=[config])
    name = _dataset_name(root, config)
    config_path = out / CONFIGS_DIR / f"{name}.py"
    result = CopickImportResult(out_dir=out, config=config_path,
                                class_names=[o.name for o in objects], diameters=diameters)

    found = _runs_to_import(chosen, objects, tomo_type, voxel_spacing, user_id, session_id,
                            result, report)
    if not found:
        raise DeepETPickerError(
            f"No run of {source} has both a {tomo_type!r} tomogram at {voxel_spacing:g} A and "
            f"picks of user {user_id!r}{'' if session_id is None else f' session {session_id!r}'}"
            f" (runs without the tomogram: {len(result.no_tomogram)}, without picks: "
            f"{len(result.no_picks)}). Check --tomo-type, --voxel-spacing and --user.")
    # the same project data imported the same way may be written again without overwrite
    tag = _import_tag(config, tomo_type, voxel_spacing, user_id, session_id, found)
    guard.check([raw / f"{run.name}.coords" for run, _, _ in found]
                + [config_path, out / IMPORT_RECORD], tag=tag)
    for i, (run, tomogram, picks) in enumerate(found):
        report("import", i, len(found), item=run.name, message=f"writing run {run.name}")
        result.tomograms[run.name] = _link_or_copy(tomogram, run.name, raw, voxel_spacing,
                                                   guard, overwrite, report, tag)
        coords = write_picks(raw / f"{run.name}.coords", picks)
        guard.record([coords], tag=tag)
        result.counts[run.name] = picks.counts(len(objects))
    _save_dataset_config(name, out, raw, objects, diameters, config_path)
    record = {"copick_config": str(config.resolve()), "tomo_type": tomo_type,
              "voxel_spacing": voxel_spacing, "user_id": user_id, "session_id": session_id,
              "classes": [{"id": o.label, "name": o.name, "radius_angstrom": o.radius,
                           "diameter_voxels": d} for o, d in zip(objects, diameters)],
              "runs": {run: {str(c): n for c, n in counts.items()}
                       for run, counts in result.counts.items()},
              "runs_without_picks": result.no_picks,
              "runs_without_tomogram": result.no_tomogram}
    write_text_atomic(out / IMPORT_RECORD, json.dumps(record, indent=1) + "\n")
    guard.record([config_path, out / IMPORT_RECORD], tag=tag)
    report("import", len(found), len(found), message=f"imported {len(found)} run(s)")
    return result


def _class_diameters(objects: list, voxel_spacing: float, source: str) -> list[int]:
    """Each particle class's diameter in voxels (from its radius in Angstrom); a class
    without a radius, or one under a voxel, is an error."""
    diameters = []
    for obj in objects:
        d = obj.diameter(voxel_spacing)
        if d is None or round(d) < 1:
            raise DeepETPickerError(
                f"{source}: the particle {obj.name!r} has "
                f"{'no radius' if d is None else f'radius {obj.radius} A, under one voxel'} "
                f"at {voxel_spacing:g} A per voxel; set its radius (Angstrom) in the config.")
        diameters.append(int(round(d)))
    return diameters


def _runs_to_import(chosen: list, objects: list, tomo_type: str, voxel_spacing: float,
                    user_id: str, session_id: Optional[str], result: CopickImportResult,
                    report: Reporter) -> list[tuple]:
    """``(run, tomogram, picks)`` of the runs with both the tomogram and picks; the others are
    noted in ``result`` (``no_tomogram``, ``no_picks``)."""
    found = []
    for i, run in enumerate(chosen):
        report("import", i, len(chosen), item=run.name, message=f"reading run {run.name}")
        tomogram = cp.run_tomogram(run, tomo_type, voxel_spacing)
        if tomogram is None:
            result.no_tomogram.append(run.name)
            have = cp.available_tomograms(run)
            report.log(f"{run.name}: no {tomo_type!r} tomogram at {voxel_spacing:g} A "
                       f"(it has {', '.join(have) or 'none'}); skipped")
            continue
        picks = cp.read_run_picks(run, objects, voxel_spacing, user_id, session_id)
        if len(picks) == 0:
            result.no_picks.append(run.name)
            continue
        found.append((run, tomogram, picks))
    return found


def _save_dataset_config(name: str, out: Path, raw: Path, objects: list, diameters: list[int],
                         config_path: Path) -> None:
    """The preprocessing config of the imported dataset: one class per particle object, its
    diameter, and the weak-label diameters the label-size rule gives."""
    from deepetpicker.config import PreprocessConfig, label_diameters_if_needed, save_config

    single, labels = label_diameters_if_needed(diameters)
    pre = PreprocessConfig(
        dset_name=name, base_path=str(out), coord_path=str(raw), coord_format=".coords",
        tomo_path=str(raw), tomo_format=".mrc", num_cls=len(objects),
        label_diameter=single, label_diameters=labels, ocp_diameter=diameters,
        class_names=[o.name for o in objects])
    config_path.parent.mkdir(parents=True, exist_ok=True)
    save_config(pre, config_path)


def _positive(value, option: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0:
        raise DeepETPickerError(f"{option} {value!r}: give the voxel spacing in Angstrom, a "
                                f"positive number such as 10.012.")
    return number


# --------------------------------------------------------------------------------------------
# Predictions -> copick picks
# --------------------------------------------------------------------------------------------
@dataclass
class CopickPredictResult:
    """What :func:`predict_into_project` did: per run the points stored per object
    (``written``), the ``.coords`` files (``outputs``), runs without the tomogram
    (``no_tomogram``) and runs that failed (``failed``, run -> reason)."""

    out_dir: Path
    user_id: str
    session_id: str
    written: dict[str, dict[str, int]] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    no_tomogram: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"Stored picks of {len(self.written)} run(s) in the copick project as user "
                 f"{self.user_id!r}, session {self.session_id!r} (.coords under "
                 f"{self.out_dir})"]
        for run, counts in self.written.items():
            lines.append(f"  {run}: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
        if self.no_tomogram:
            lines.append(f"  without the tomogram, skipped: {', '.join(self.no_tomogram)}")
        for run, reason in self.failed.items():
            lines.append(f"  FAILED {run}: {reason}")
        return "\n".join(lines)


def _checkpoint_classes(config, weights) -> tuple[int, Optional[list]]:
    """The number of classes and the class names of the network in ``weights``."""
    from deepetpicker.model import load_checkpoint
    from deepetpicker.model.checkpoint import BEST, resolve_checkpoint

    model, meta = load_checkpoint(resolve_checkpoint(weights, prefer=BEST), "cpu")
    num_cls = int(config.num_cls) if config is not None else int(model.num_classes)
    names = meta.get("class_names") or None
    return num_cls, names


def predict_into_project(config: Optional[TrainConfig], weights: PathLike,
                         copick_config: PathLike, tomo_type: str, voxel_spacing: float,
                         runs: Optional[Sequence[str]] = None,
                         user_id: str = COPICK_USER, session_id: str = COPICK_SESSION,
                         out: Optional[PathLike] = None, overwrite: bool = False,
                         progress: Optional[ProgressCallback] = None,
                         cancel: Optional[CancelToken] = None,
                         **options: Any) -> CopickPredictResult:
    """Pick particles in the ``tomo_type`` tomograms at ``voxel_spacing`` of the copick project
    ``copick_config`` (``runs``, default all) and store them there as picks of ``user_id`` and
    ``session_id``.

    ``config``, ``weights`` and ``options`` (``device``, ``batch_size``, ``picking``, ``pad``,
    ``tta``, ``force``, ...) are those of :func:`deepetpicker.predict.job.predict`. Class k
    goes to the particle named like the checkpoint's class k, else to the particle with label
    k. ``out``: where the ``.coords`` and sidecars of each run go (``<out>/<run>/``; default
    ``deepetpicker-predictions`` beside the copick config). Picks of the same user and session
    already in the project are replaced only with ``overwrite`` (checked before any work).
    Progress: stage ``copick`` per run, and the prediction's own stages.
    """
    from deepetpicker.io.picks import read_picks
    from deepetpicker.predict.job import predict

    report = Reporter(progress, cancel)
    copick_config = Path(copick_config).expanduser()
    voxel_spacing = _positive(voxel_spacing, "--voxel-spacing")
    user_id, session_id = cp.copick_name(user_id), cp.copick_name(session_id)
    root = cp.open_project(copick_config)
    source = str(copick_config)
    objects = cp.particle_objects(root, source)
    num_cls, class_names = _checkpoint_classes(config, weights)
    mapping = cp.class_objects(num_cls, class_names, objects, source)
    chosen = cp.project_runs(root, runs, source)
    out_dir = (Path(out).expanduser() if out is not None
               else copick_config.parent / DEFAULT_PREDICT_DIR)
    if not overwrite:
        present = [name for run in chosen for name in
                   cp.existing_picks(run, mapping.values(), user_id, session_id)]
        if present:
            raise DeepETPickerError(
                f"The copick project {source} already holds picks of user {user_id!r}, "
                f"session {session_id!r}: {listed(present)}. Add --overwrite to replace them, "
                f"or give another --session.")
    result = CopickPredictResult(out_dir=out_dir, user_id=user_id, session_id=session_id)
    for i, run in enumerate(chosen):
        report("copick", i, len(chosen), item=run.name,
               message=f"run {i + 1}/{len(chosen)}: {run.name}")
        tomogram = cp.run_tomogram(run, tomo_type, voxel_spacing)
        if tomogram is None:
            result.no_tomogram.append(run.name)
            report.log(f"{run.name}: no {tomo_type!r} tomogram at {voxel_spacing:g} A; skipped")
            continue
        run_dir = out_dir / run.name
        path = cp.local_zarr_path(tomogram)
        staged = None
        try:
            if path is None:          # a project stored elsewhere: a temporary local copy
                staged = run_dir / ".copick-tomogram"
                staged.mkdir(parents=True, exist_ok=True)
                path = cp.copy_tomogram(tomogram, staged / f"{tomo_type}.mrc", voxel_spacing,
                                        report)
            done = predict(config, weights, tomograms=[path], out=run_dir, progress=progress,
                           cancel=cancel, overwrite=overwrite, **options)
        except DeepETPickerError as exc:
            result.failed[run.name] = str(exc)
            report.log(f"{run.name}: {exc}")
            continue
        finally:
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)
        coords = done.outputs[0]
        picks = read_picks(coords, num_cls=num_cls)
        result.outputs[run.name] = coords
        result.written[run.name] = cp.write_run_picks(run, picks, mapping, voxel_spacing,
                                                      user_id, session_id)
    report("copick", len(chosen), len(chosen))
    if not result.written and (result.failed or result.no_tomogram):
        details = "; ".join(f"{k}: {v}" for k, v in result.failed.items())
        raise DeepETPickerError(
            f"No run of {source} was picked: {len(result.no_tomogram)} without a {tomo_type!r} "
            f"tomogram at {voxel_spacing:g} A, {len(result.failed)} failed. {details}".strip())
    return result


__all__ = ["CopickImportResult", "CopickPredictResult", "import_project",
           "predict_into_project"]
