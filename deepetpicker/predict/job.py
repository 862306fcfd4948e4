"""The prediction job: trained weights + tomograms -> picks (and optional score maps).

:func:`predict` plans, picks and exports: it checks every option and the weights against the
config, plans the output files (and finds the tomograms picked before with the same weights
and settings), then calls a :class:`~deepetpicker.predict.picker.TomogramPicker` built once for
every tomogram (statistics, overlap-tile scan, peaks) and writes ``<stem>.coords`` (``class x
y z score``, 0-based voxels), a sidecar ``<stem>.coords.json`` with every setting that made
the picks and optionally the class score maps as MRC; the exports in other formats come
last. A tomogram that cannot be read is reported in the result and the others are still
processed. Under ``torchrun`` each process takes every ``WORLD_SIZE``-th tomogram.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.outputs import OutputGuard, stale_note
from deepetpicker.io.picks import sidecar_path, write_sidecar
from deepetpicker.precision import resolve_precision
from deepetpicker.predict.options import PredictOptions
from deepetpicker.predict.picker import TomogramPicker, cpu_tiles_per_pass, scan_tomogram
from deepetpicker.predict.plan import PredictPlan, make_plan, tomogram_paths
from deepetpicker.predict.result import (
    SCORE_DTYPES,
    PredictResult,
    sidecar_record,
    write_score_maps,
)
from deepetpicker.predict.weights import (
    check_weights,
    checkpoint_config,
    config_from_checkpoint,
    tuned_settings,
)
from deepetpicker.progress import (
    Cancelled,
    CancelToken,
    ProgressCallback,
    Reporter,
    counted,
)
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig
    from deepetpicker.picking.settings import PickSettings
    from deepetpicker.picking.tiling import TTAChoice

#: How the log names each precision.
PRECISION_WORDS = {"fp32": "float32", "bf16": "bfloat16 (torch.autocast on the CPU)",
                   "fp16": "float16 mixed precision (torch.autocast on the GPU)"}

__all__ = ["PredictOptions", "PredictResult", "SCORE_DTYPES", "config_from_checkpoint",
           "cpu_tiles_per_pass", "predict", "scan_tomogram"]


def predict(config: Optional[TrainConfig], weights: PathLike,
            tomograms: Union[None, PathLike, Sequence[PathLike]] = None,
            out: Optional[PathLike] = None, progress: Optional[ProgressCallback] = None,
            cancel: Optional[CancelToken] = None, pad: Optional[int] = None,
            save_scores: bool = False, formats: Sequence[str] = (),
            device: Optional[str] = None,
            batch_size: Optional[int] = None, score_dtype: str = "float16",
            picking: Union[None, PickSettings, dict] = None,
            diameters: Optional[Sequence[float]] = None,
            export: Optional[dict] = None, overwrite: bool = False,
            force: bool = False, tta: TTAChoice = False,
            zarr_level: Union[int, str, None] = None,
            mask: Optional[PathLike] = None,
            precision: Optional[str] = None) -> PredictResult:
    """Pick particles in ``tomograms`` with the network in ``weights``.

    ``config``: the :class:`~deepetpicker.config.TrainConfig` the weights were trained with
    (patch size, pad, number of classes, particle diameters, normalisation), or None to take
    it from the checkpoint (:func:`config_from_checkpoint`; ``diameters`` then gives the
    particle diameters an original checkpoint lacks). ``tomograms``: files and/or folders
    (default: the config's ``tomo_path``). ``out``: the output folder (default
    ``base_path/runs/<dset_name>/predictions``, or ``predictions`` beside the weights when no
    config is given). ``pad`` overrides the config's ``padding_size``. ``picking``: a
    :class:`~deepetpicker.picking.settings.PickSettings`, or a dict of its fields overriding the
    config's (``t_seg``, ``t_lm``, ``t_dist``, ...); the same rule chose the checkpoint during
    training. ``save_scores`` writes class score maps (``score_dtype`` float16 or float32);
    ``formats`` also writes the picks in those formats (see :mod:`deepetpicker.io.formats`)
    with the writer options in ``export`` (class_names, binning, tilt_series_pixel_size,
    tomo_name; class names default to the checkpoint's).
    ``device``: ``auto | cpu | cuda | cuda:N`` (default: the config's). ``batch_size``: tiles
    per forward pass (default: the config's batch size on a GPU, :func:`cpu_tiles_per_pass`
    on the CPU). ``tta``: test-time augmentation, the class scores averaged over transforms of
    each tile before picking: False (off), True (the 8 mirrorings of z, y and x) or a set name
    of :data:`~deepetpicker.picking.tiling.TTA_SETS` (``flips``, ``full``); the scan takes as
    many times longer as there are transforms. ``zarr_level``: the scale level read from
    OME-Zarr tomograms (default 0, the full resolution; picks are in that level's voxels).
    ``mask``: a region of interest, a volume of the tomogram's shape (non-zero = keep) or a
    folder of masks named like the tomograms (see :mod:`deepetpicker.picking.mask`): picks
    outside it are dropped and tiles entirely outside it are not run. ``precision``: the
    network's arithmetic, ``fp32``, ``bf16`` or ``auto`` (bf16 where the CPU does it natively;
    see :mod:`deepetpicker.precision`); default fp32 on the CPU, float16 mixed precision on a
    GPU; the log and the sidecar say which ran.
    Every setting is checked before any tomogram is read.

    Outputs never replace a user's file or an input (see :mod:`deepetpicker.io.outputs`);
    ``overwrite`` replaces the outputs of an earlier run. A tomogram whose picks and sidecar
    were written by the same weights and settings is skipped (its picks still go into the
    exported formats); ``force`` picks it again.

    Progress: stage ``predict`` per tomogram, ``statistics`` per slab, ``scan`` per tile
    batch, ``peaks`` per slab; cancellable at each of those steps.
    """
    options = PredictOptions(pad=pad, save_scores=save_scores, formats=formats, device=device,
                             batch_size=batch_size, score_dtype=score_dtype, picking=picking,
                             diameters=diameters, export=export, overwrite=overwrite,
                             force=force, tta=tta, zarr_level=zarr_level, mask=mask,
                             precision=precision)
    return run_prediction(config, weights, tomograms, out, options, Reporter(progress, cancel))


def run_prediction(config: Optional[TrainConfig], weights: PathLike,
                   tomograms: Union[None, PathLike, Sequence[PathLike]],
                   out: Optional[PathLike], options: PredictOptions,
                   report: Reporter) -> PredictResult:
    """:func:`predict` with its options in one :class:`PredictOptions`: plan, pick each
    tomogram, export."""
    from deepetpicker.io.formats import check_export, write_format
    from deepetpicker.model.checkpoint import BEST, resolve_checkpoint
    from deepetpicker.picking.mask import mask_paths
    from deepetpicker.picking.tiling import tile_starts
    from deepetpicker.runtime import env_world, resolve_device

    started = time.monotonic()
    weights = resolve_checkpoint(weights, prefer=BEST)
    opts = options.checked()
    config, labels_known, preloaded, out = _resolve_config(config, weights, tomograms, out,
                                                           opts.diameters)
    settings = opts.pick_settings(config)
    rank, world, local_rank = env_world()
    device = resolve_device(opts.device or config.device, config.gpu_ids, local_rank, world > 1)
    patch = int(config.patch_size)
    pad = int(config.padding_size if opts.pad is None else opts.pad)
    tile_starts(patch, patch, pad)                  # rejects a pad that leaves no centre
    batch_size = int(opts.batch_size if opts.batch_size is not None else
                     int(config.batch_size) if device.type == "cuda"
                     else cpu_tiles_per_pass(config.f_maps, patch))
    diameters = [float(d) for d in config.ocp_diameter]
    num_cls = int(config.num_cls)
    paths = tomogram_paths(config, tomograms)
    paths = paths[rank::world] if world > 1 else paths
    out_dir = Path(out) if out is not None else config.run_dir / "predictions"
    masks = {} if opts.mask is None else mask_paths(opts.mask, paths)
    guard = OutputGuard(out_dir, overwrite=opts.overwrite or opts.force,
                        inputs=[*paths, weights, *masks.values()])
    if guard.stale_removed:
        report.log(stale_note(guard.stale_removed))

    precision = resolve_precision(opts.precision, device.type)
    model, meta = _load_network(weights, device, preloaded, config, report)
    report.log(f"network arithmetic: {PRECISION_WORDS[precision]}")
    settings = tuned_settings(settings, meta, num_cls, report)
    class_names = meta.get("class_names") or None
    export = {"class_names": class_names, **(opts.export or {})}
    check_export(opts.formats, **export)            # refused names fail before the scan
    record_base = {"weights": str(weights), "config": getattr(config, "source", None),
                   "device": str(device), "patch_size": patch, "pad_size": pad,
                   "batch_size": batch_size, "t_seg": settings.t_seg, "t_lm": settings.t_lm,
                   "norm_type": config.norm_type, "num_cls": num_cls,
                   "class_names": class_names, "tta": [t.name for t in opts.transforms],
                   "precision": precision}
    if opts.zarr_level is not None and str(opts.zarr_level) != "0":
        record_base["zarr_level"] = str(opts.zarr_level)
    plan = make_plan(paths, out_dir, guard, masks, weights, record_base, settings, diameters,
                     export, opts.force, opts.save_scores, num_cls, class_names)

    def write_export(fmt, tables, folder, voxel_size, shapes_):
        return write_format(tables, fmt, folder, voxel_size=voxel_size, shapes=shapes_,
                            **export)

    plan.check_outputs(opts.save_scores, num_cls, class_names, opts.formats, write_export)
    # the weak labels set the ball a pick's score is measured in; unknown, d / 4 of the particle
    picker = TomogramPicker(model, device, patch, pad, batch_size, settings, diameters,
                            config.class_label_diameters() if labels_known else None,
                            config.norm_type, opts.transforms, opts.zarr_level, precision)
    result = PredictResult(out_dir=out_dir, settings=record_base)
    try:
        tables, shapes, voxel_sizes = _pick_each(plan, picker, record_base, opts, num_cls,
                                                 class_names, result, report)
    except Cancelled as exc:  # say what was finished, e.g. for a results table
        result.seconds = time.monotonic() - started
        raise Cancelled(*exc.args, partial=result if result.outputs else None) from exc
    if not result.outputs and result.failed:
        details = "; ".join(f"{k}: {v}" for k, v in result.failed.items())
        raise DeepETPickerError(f"No tomogram could be processed. {details}")
    for fmt in opts.formats:
        known_vs = {k: v for k, v in voxel_sizes.items() if v}
        written = write_export(fmt, tables, out_dir, known_vs or None, shapes)
        guard.record(written, tag=f"{fmt} {plan.export_tag}")
        result.exports.extend(written)
    result.seconds = time.monotonic() - started
    return result


def _resolve_config(config, weights: Path, tomograms, out, diameters):
    """``(config, labels_known, preloaded, out)``: the config given (its particle diameters
    replaced by ``diameters`` when given) or the one the checkpoint holds (then loaded here
    on the CPU, ``preloaded`` = ``(model, meta)``, and ``out`` defaults to ``predictions``
    beside the weights)."""
    from deepetpicker.model import load_checkpoint

    if config is None:
        preloaded = load_checkpoint(weights, "cpu")
        config, labels_known = checkpoint_config(preloaded[1], weights, diameters)
        if out is None:
            out = Path(weights).parent / "predictions"
        if tomograms is None:
            raise DeepETPickerError(
                f"Name the tomograms to pick (--tomograms): without a training config the "
                f"weights {weights} do not say where the dataset is.")
        return config, labels_known, preloaded, out
    if diameters is not None:
        data = config.to_dict()
        data["ocp_diameter"] = [int(round(d)) for d in diameters]
        config = type(config).from_dict(data, source=getattr(config, "source", None))
        config.validate(check_paths=False)
    return config, True, None, out


def _load_network(weights: Path, device, preloaded, config, report: Reporter):
    """The checkpoint's network on ``device``, checked against the config and made ready for
    inference, with the checkpoint's record."""
    from deepetpicker.model import load_checkpoint

    report.log(f"loading weights {weights} on {device}")
    if preloaded is None:
        model, meta = load_checkpoint(weights, device)
    else:
        model, meta = preloaded
        model.to_device(device)
    check_weights(model, meta, config, weights)
    model.fuse_for_inference()
    return model, meta


def _pick_each(plan: PredictPlan, picker: TomogramPicker, record_base: dict,
               opts: PredictOptions, num_cls: int, class_names, result: PredictResult,
               report: Reporter):
    """Pick every planned tomogram in turn (or take its earlier picks), writing its picks,
    sidecar and score maps as soon as it is done: ``(picks of each, shapes, voxel sizes)``
    for the exports."""
    import torch

    tables, shapes, voxel_sizes = [], {}, {}
    out_dir, total = plan.out_dir, len(plan.paths)
    for index, path in enumerate(plan.paths):
        stem = path.stem
        report("predict", index, total, item=stem,
               message=f"tomogram {index + 1}/{total}: {path.name}")
        coords = out_dir / f"{stem}.coords"
        found = plan.finished.get(str(path))
        if found is not None:
            picks, record = found
            report.log(f"{path.name}: skipped, picked before with the same weights and "
                       f"settings ({coords}; --force picks it again)")
            result.add(coords, path, sidecar_path(coords), picks.counts(num_cls), skipped=True)
            tables.append(picks)
            shapes[stem] = tuple(record["shape"])
            voxel_sizes[stem] = record.get("voxel_size")
            report("predict", index + 1, total, item=stem)
            continue
        try:
            done = picker(path, plan.masks.get(path), report)
        except (DeepETPickerError, OSError) as exc:
            result.failed[str(path)] = str(exc)
            report.log(f"skipped {path}: {exc}")
            continue
        except torch.cuda.OutOfMemoryError as exc:
            raise DeepETPickerError(
                f"The GPU ran out of memory on {path.name} with {picker.batch_size} tile(s) of "
                f"{picker.patch}^3 per pass. Lower --batch-size (or the patch size).") from exc
        _write_tomogram(plan, path, done, record_base, opts, num_cls, class_names, result)
        tables.append(done.picks)
        shapes[stem] = done.shape
        voxel_sizes[stem] = done.voxel_size
        report("predict", index + 1, total, item=stem,
               message=f"{path.name}: {counted(len(done.picks), 'pick')}",
               picks=len(done.picks))
    return tables, shapes, voxel_sizes


def _write_tomogram(plan: PredictPlan, path: Path, done, record_base: dict,
                    opts: PredictOptions, num_cls: int, class_names,
                    result: PredictResult) -> None:
    """Write one tomogram's picks, sidecar and (when asked) score maps, and record them."""
    from deepetpicker.io.picks import write_picks

    coords = write_picks(plan.out_dir / f"{path.stem}.coords", done.picks)
    record = sidecar_record(record_base, path, coords, done, num_cls,
                            plan.fingerprints[str(path)], plan.masks.get(path))
    sidecar = write_sidecar(coords, record)
    plan.guard.record([coords, sidecar])
    if opts.save_scores:
        maps = write_score_maps(done.scores, plan.out_dir, path.stem, done.voxel_size,
                                SCORE_DTYPES[opts.score_dtype], class_names)
        plan.guard.record(maps)
        result.score_maps.extend(maps)
    done.scores = None
    result.add(coords, path, sidecar, done.picks.counts(num_cls))
