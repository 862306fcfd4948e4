"""The inference job: trained weights + tomograms -> picks (and optional score maps).

For each tomogram: open it memory-mapped; compute its intensity statistics in slabs and
normalise every tile on the fly as training did (so raw reconstructions need no
preprocessing run); run the overlap-tile scan; pick peaks; write ``<stem>.coords`` (``class x
y z score``, 0-based voxels), a sidecar ``<stem>.coords.json`` with every setting that made the
picks, and optionally the class score maps as MRC. The model is loaded once for all
tomograms. A tomogram that cannot be read is reported in the result and the others are still
processed. Under ``torchrun`` each process takes every ``WORLD_SIZE``-th tomogram.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.outputs import OutputGuard, file_stamp
from deepetpicker.io.picks import Picks, read_sidecar, sidecar_path, write_sidecar
from deepetpicker.jobs import Cancelled, CancelToken, ProgressCallback, Reporter

if TYPE_CHECKING:
    import torch

    from deepetpicker.config import TrainConfig
    from deepetpicker.picking.settings import PickSettings
    from deepetpicker.picking.tiling import TTAChoice

PathLike = Union[str, os.PathLike]

SCORE_DTYPES = {"float16": np.float16, "float32": np.float32}
#: Memory for the activations of one forward pass on the CPU (bytes), which sets the tiles
#: per pass there.
CPU_ACTIVATION_BUDGET = 256 * 2 ** 20


def cpu_tiles_per_pass(f_maps: Sequence[int], patch: int) -> int:
    """Tiles per forward pass on the CPU: as many as fit :data:`CPU_ACTIVATION_BUDGET`
    (a pass holds about nine first-level feature maps per tile), from 1 to 8.

    Large tiles go one at a time, which is also fastest for them; small tiles are batched,
    because single small tiles fall onto PyTorch's slow non-oneDNN 3D convolution (about ten
    times slower per tile).
    """
    per_tile = 9 * int(f_maps[0]) * int(patch) ** 3 * 4
    return max(1, min(8, CPU_ACTIVATION_BUDGET // per_tile))


@dataclass
class PredictResult:
    """What :func:`predict` wrote.

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
            lines.append(f"  {path.name}: {sum(counts.values())} picks ({per_class})")
        if self.score_maps:
            lines.append(f"  score maps: {len(self.score_maps)} MRC file(s)")
        for path in self.exports:
            lines.append(f"  exported: {path}")
        for name, reason in self.failed.items():
            lines.append(f"  FAILED {name}: {reason}")
        return "\n".join(lines)


def _tomogram_paths(config, tomograms) -> list[Path]:
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


def _check_weights(model, meta: dict, config, weights) -> None:
    """Raise when the checkpoint's network does not fit the config."""
    source = getattr(config, "source", None) or "the training config"
    if model.num_classes != int(config.num_cls):
        raise DeepETPickerError(
            f"Weights {weights} were trained for {model.num_classes} class(es) but "
            f"{source} has num_cls = {config.num_cls}. Use the config the weights were "
            f"trained with (or weights trained on this dataset).")
    if model.in_channels != 1:
        raise DeepETPickerError(
            f"Weights {weights} expect {model.in_channels} input channels; DeepETPicker "
            f"tomograms have one. Choose weights of a DeepETPicker 3D-ResUNet.")
    if meta.get("source") == "deepetpicker":
        want = [int(c) for c in config.f_maps]
        if list(model.f_maps) != want:
            raise DeepETPickerError(
                f"Weights {weights} hold a network with channels {list(model.f_maps)} but "
                f"{source} has f_maps = {want}. Use the config the weights were trained with, "
                f"or set f_maps to {list(model.f_maps)}.")
    multiple = model.size_multiple
    if int(config.patch_size) % multiple:
        raise DeepETPickerError(
            f"patch_size {config.patch_size} in {source} is not a multiple of {multiple}; "
            f"use e.g. 72.")


def _make_predictor(model, device, offset: float, spread: float, tta=(), check=None):
    """Normalise a raw tile batch, run the network, return class probabilities.

    ``tta``: :class:`~deepetpicker.picking.tiling.TileTransform` s whose probabilities are
    averaged (each one a pass of the network over the batch, transformed on ``device``);
    ``check`` is called between those passes.
    """
    import torch

    from deepetpicker.picking.tiling import with_tta
    from deepetpicker.model import probabilities

    use_amp = device.type == "cuda"

    def network(x):
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x)
        return probabilities(logits.float())

    averaged = with_tta(network, tta, check=check)

    def predict_fn(batch):
        x = batch.to(device, non_blocking=True)
        x = (x - offset) / spread
        with torch.inference_mode():
            return averaged(x)

    return predict_fn


def _score_map_names(stem: str, k: int, class_names) -> list[str]:
    """File names of the class score maps of tomogram ``stem``."""
    if k == 1:
        return [f"{stem}_scores.mrc"]
    return [f"{stem}_scores_{class_names[c] if class_names else f'class{c + 1}'}.mrc"
            for c in range(k)]


def _tuned_settings(settings, meta: dict, num_cls: int, report) -> "PickSettings":
    """``settings`` with the checkpoint's score thresholds (tuned per class for the best
    localisation F1 on the validation tomograms during training) when the caller gave none.
    Thresholds an earlier version tuned for class F1 (which drop found particles whose class
    is uncertain) are not used."""
    from dataclasses import replace

    from deepetpicker.picking.settings import THRESHOLD_RULE, format_thresholds

    tuned = meta.get("score_thresholds")
    if (settings.min_score is not None or not isinstance(tuned, (list, tuple))
            or len(tuned) != num_cls):
        return settings
    if meta.get("threshold_rule") != THRESHOLD_RULE:
        report.log("the score thresholds in this checkpoint were tuned for class F1 by an "
                   "earlier version and can drop particles that were found; every pick is "
                   "kept (--min-score applies thresholds)")
        return settings
    settings = replace(settings, min_score=tuple(float(v) for v in tuned))
    report.log(f"detection thresholds tuned on the validation tomograms: "
               f"{format_thresholds(settings.min_score)} (--min-score overrides; 0 keeps "
               f"every pick)")
    return settings


def _fingerprint(tomogram: Path, weights, record_base: dict, settings, diameters) -> dict:
    """What decides a tomogram's picks: the files (path, size, time) and every setting."""
    keep = ("patch_size", "pad_size", "norm_type", "num_cls", "class_names")
    fingerprint = {"tomogram": file_stamp(tomogram), "weights": file_stamp(weights),
                   **{k: record_base[k] for k in keep}, "picking": settings.to_dict(),
                   "diameters": list(diameters)}
    if record_base.get("tta"):      # only when on: picks made before the option still match
        fingerprint["tta"] = list(record_base["tta"])
    if "zarr_level" in record_base:
        fingerprint["zarr_level"] = record_base["zarr_level"]
    return fingerprint


def _finished(out_dir: Path, tomogram: Path, fingerprint: dict, guard, save_scores: bool,
              num_cls: int, class_names):
    """``(picks, sidecar record)`` when ``tomogram`` was picked before into ``out_dir`` with the
    same fingerprint and its files are unchanged; None when it must be picked."""
    from deepetpicker.io.picks import read_picks

    coords = out_dir / f"{tomogram.stem}.coords"
    wanted = [coords, sidecar_path(coords)]
    if save_scores:
        wanted += [out_dir / n for n in _score_map_names(tomogram.stem, num_cls, class_names)]
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


def _write_score_maps(scores: np.ndarray, out_dir: Path, stem: str, voxel_size, dtype,
                      class_names) -> list[Path]:
    """One MRC per class, written slab by slab under a temporary name."""
    from deepetpicker.io.tomogram import create_tomogram

    paths = []
    for c, name in enumerate(_score_map_names(stem, scores.shape[0], class_names)):
        path = out_dir / name
        with atomic_path(path) as tmp:
            mrc = create_tomogram(tmp, scores.shape[1:], voxel_size, dtype)
            try:
                for z0 in range(0, scores.shape[1], 16):
                    mrc.data[z0:z0 + 16] = scores[c, z0:z0 + 16]
                mrc.update_header_stats()
                mrc.flush()
            finally:
                mrc.close()
        paths.append(path)
    return paths


def config_from_checkpoint(meta: dict, weights: PathLike,
                           diameters: Optional[Sequence[float]] = None) -> TrainConfig:
    """The training config a checkpoint was made with, for predicting without a config file.

    Our checkpoints hold their whole training config. The original program's ``.ckpt`` hold
    the patch and pad sizes but not the particle diameters: those come from ``diameters``, or
    from the training config file the checkpoint names when that file is still there, or a
    clear error asks for them. ``diameters`` given also override a checkpoint's own.
    """
    return _checkpoint_config(meta, weights, diameters)[0]


def _checkpoint_config(meta: dict, weights: PathLike, diameters: Optional[Sequence[float]]
                       ) -> tuple[TrainConfig, bool]:
    """:func:`config_from_checkpoint`, and whether the config names the weak labels the
    network was trained with (not so for an original checkpoint without its config file,
    whose label diameter is then a stand-in)."""
    from deepetpicker.config import TrainConfig, load_train_config

    weights = Path(weights)
    saved = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    num_cls = int(meta["model_args"]["num_classes"])
    labels_known = True
    if meta.get("source") == "deepetpicker" and saved:
        data = dict(saved)
    else:
        data = {}
        for key in ("train_configs", "configs"):
            named = saved.get(key)
            if isinstance(named, str) and named and Path(named).is_file():
                try:
                    data = load_train_config(named).to_dict()
                except DeepETPickerError:
                    data = {}
                if data:
                    break
        labels_known = bool(data)
        if not data:
            known = diameters if diameters is not None else meta.get("diameters")
            if not known:
                raise DeepETPickerError(
                    f"{weights} does not hold the particle diameters (a checkpoint of the "
                    f"original DeepETPicker). Give them with --diameters (voxels, one per "
                    f"class, {num_cls} class(es)) or give the training config the weights "
                    f"were made with.")
            data = {"dset_name": weights.stem, "base_path": str(weights.parent),
                    "num_cls": num_cls, "label_diameter": int(round(min(known))),
                    "ocp_diameter": [int(round(d)) for d in known],
                    "train_set_ids": [0], "val_set_ids": [0]}
        data["f_maps"] = list(meta["model_args"]["f_maps"])
        data["coord_conv"] = bool(meta["model_args"].get("coord_conv", True))
        data["pyramid"] = bool(meta["model_args"].get("pyramid", True))
        for ours in ("patch_size", "pad_size"):
            if isinstance(meta.get(ours), int):
                data["patch_size" if ours == "patch_size" else "padding_size"] = meta[ours]
    if diameters is not None:
        if len(diameters) not in (1, num_cls):
            raise DeepETPickerError(
                f"--diameters has {len(diameters)} value(s) but {weights} picks {num_cls} "
                f"class(es); give one diameter per class (voxels).")
        data["ocp_diameter"] = [int(round(d)) for d in diameters] * (
            num_cls if len(diameters) == 1 else 1)
    cfg = TrainConfig.from_dict(data, source=str(weights))
    cfg.validate(check_paths=False)
    return cfg, labels_known


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
            mask: Optional[PathLike] = None) -> PredictResult:
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
    outside it are dropped and tiles entirely outside it are not run.
    Every setting is checked before any tomogram is read.

    Outputs never replace a user's file or an input (see :mod:`deepetpicker.io.outputs`);
    ``overwrite`` replaces the outputs of an earlier run. A tomogram whose picks and sidecar
    were written by the same weights and settings is skipped (its picks still go into the
    exported formats); ``force`` picks it again.

    Progress: stage ``predict`` per tomogram, ``statistics`` per slab, ``scan`` per tile
    batch, ``peaks`` per slab; cancellable at each of those steps.
    """
    import torch

    from deepetpicker.picking.mask import TileFilter, load_mask, mask_paths, picks_in_mask
    from deepetpicker.picking.settings import PickSettings, picks_from_scores
    from deepetpicker.picking.tiling import count_tiles, tile_starts, tta_transforms
    from deepetpicker.io.format_specs import format_spec
    from deepetpicker.io.formats import check_export, write_format
    from deepetpicker.io.picks import write_picks
    from deepetpicker.io.tomogram import load_tomogram
    from deepetpicker.model import load_checkpoint
    from deepetpicker.model.checkpoint import BEST, resolve_checkpoint
    from deepetpicker.normalize import chunked_stats, normalization_scale
    from deepetpicker.runtime import env_world, resolve_device

    started = time.monotonic()
    report = Reporter(progress, cancel)
    weights = resolve_checkpoint(weights, prefer=BEST)
    if picking is None or isinstance(picking, dict):
        overrides = dict(picking or {})
        PickSettings.from_config(None, **overrides)      # refuse bad values before any work
    elif not isinstance(picking, PickSettings):
        raise TypeError(f"picking must be PickSettings or a dict, not {type(picking).__name__}")
    formats = [f for f in dict.fromkeys(formats or ()) if f != "coords"]
    for fmt in formats:
        format_spec(fmt)  # an unknown name is refused before any work
    if score_dtype not in SCORE_DTYPES:
        raise DeepETPickerError(f"score_dtype {score_dtype!r}: use float16 or float32.")
    if batch_size is not None and int(batch_size) < 1:
        raise DeepETPickerError(f"batch_size {batch_size}: use 1 or more tiles per pass.")
    transforms = tta_transforms(tta)

    preloaded = None
    labels_known = True
    if config is None:
        preloaded = load_checkpoint(weights, "cpu")
        config, labels_known = _checkpoint_config(preloaded[1], weights, diameters)
        if out is None:
            out = Path(weights).parent / "predictions"
        if tomograms is None:
            raise DeepETPickerError(
                f"Name the tomograms to pick (--tomograms): without a training config the "
                f"weights {weights} do not say where the dataset is.")
    elif diameters is not None:
        data = config.to_dict()
        data["ocp_diameter"] = [int(round(d)) for d in diameters]
        config = type(config).from_dict(data, source=getattr(config, "source", None))
        config.validate(check_paths=False)
    settings = (picking if isinstance(picking, PickSettings)
                else PickSettings.from_config(config, **(picking or {})))

    rank, world, local_rank = env_world()
    device = resolve_device(device or config.device, config.gpu_ids, local_rank, world > 1)
    patch = int(config.patch_size)
    pad = int(config.padding_size if pad is None else pad)
    tile_starts(patch, patch, pad)                  # rejects a pad that leaves no centre
    if batch_size is None:
        batch_size = (int(config.batch_size) if device.type == "cuda"
                      else cpu_tiles_per_pass(config.f_maps, patch))
    batch_size = int(batch_size)
    diameters = [float(d) for d in config.ocp_diameter]
    # the weak labels set the ball a pick's score is measured in; unknown, d / 4 of the particle
    label_diameters = config.class_label_diameters() if labels_known else None
    paths = _tomogram_paths(config, tomograms)
    paths = paths[rank::world] if world > 1 else paths
    out_dir = Path(out) if out is not None else config.run_dir / "predictions"
    masks = {} if mask is None else mask_paths(mask, paths)
    guard = OutputGuard(out_dir, overwrite=overwrite or force,
                        inputs=[*paths, weights, *masks.values()])

    report.log(f"loading weights {weights} on {device}")
    if preloaded is None:
        model, meta = load_checkpoint(weights, device)
    else:
        model, meta = preloaded
        model.to_device(device)
    _check_weights(model, meta, config, weights)
    model.fuse_for_inference()
    settings = _tuned_settings(settings, meta, int(config.num_cls), report)
    class_names = meta.get("class_names") or None
    export = {"class_names": class_names, **(export or {})}
    check_export(formats, **export)                 # refused names fail before the scan
    record_base = {"weights": str(weights), "config": getattr(config, "source", None),
                   "device": str(device), "patch_size": patch, "pad_size": pad,
                   "batch_size": batch_size, "t_seg": settings.t_seg, "t_lm": settings.t_lm,
                   "norm_type": config.norm_type, "num_cls": int(config.num_cls),
                   "class_names": class_names, "tta": [t.name for t in transforms]}
    if zarr_level is not None and str(zarr_level) != "0":
        record_base["zarr_level"] = str(zarr_level)
    result = PredictResult(out_dir=out_dir, settings=record_base)
    all_picks, shapes, voxel_sizes = [], {}, {}
    num_cls = int(config.num_cls)
    fingerprints = {str(p): _fingerprint(p, weights, record_base, settings, diameters)
                    for p in paths}
    for p, m in masks.items():
        fingerprints[str(p)]["mask"] = file_stamp(m)
    finished = {} if force else {str(p): _finished(out_dir, p, fingerprints[str(p)], guard,
                                                   save_scores, num_cls, class_names)
                                 for p in paths}
    finished = {k: v for k, v in finished.items() if v is not None}
    planned = []
    for path in paths:
        if str(path) not in finished:
            coords = Path(f"{path.stem}.coords")
            planned += [coords, sidecar_path(coords)]
            if save_scores:
                planned += _score_map_names(path.stem, num_cls, class_names)

    def write_export(fmt, tables, folder, voxel_size, shapes_):
        return write_format(tables, fmt, folder, voxel_size=voxel_size, shapes=shapes_,
                            **export)

    guard.check(planned)
    # exports hold every tomogram's picks: written again freely only from the same picks
    export_tag = json.dumps([sorted(map(json.dumps, fingerprints.values())), export],
                            sort_keys=True, default=str)
    stand_in = [Picks(np.arange(1, num_cls + 1), np.zeros((num_cls, 3)), np.full(num_cls, 0.5),
                      tomo_name=p.stem) for p in paths]
    for fmt in formats:          # the file names each format would write, found on stand-ins
        guard.check(guard.files_written_by(lambda folder: write_export(
            fmt, stand_in, folder, {p.stem: 1.0 for p in paths},
            {p.stem: (1, 1, 1) for p in paths})), tag=f"{fmt} {export_tag}")
    total = len(paths)
    try:
        for index, path in enumerate(paths):
            stem = path.stem
            report("predict", index, total, item=stem,
                   message=f"tomogram {index + 1}/{total}: {path.name}")
            done = finished.get(str(path))
            if done is not None:
                picks, record = done
                report.log(f"{path.name}: skipped, picked before with the same weights and "
                           f"settings ({out_dir / (stem + '.coords')}; --force picks it again)")
                coords = out_dir / f"{stem}.coords"
                result.skipped.append(coords)
                result.outputs.append(coords)
                result.sources[coords] = path
                result.sidecars.append(sidecar_path(coords))
                result.counts[stem] = picks.counts(num_cls)
                all_picks.append(picks)
                shapes[stem] = tuple(record["shape"])
                voxel_sizes[stem] = record.get("voxel_size")
                report("predict", index + 1, total, item=stem)
                continue
            try:
                tomo = load_tomogram(path, mmap=True, level=zarr_level)
                region = (None if path not in masks else
                          load_mask(masks[path], tomo.shape, path, level=zarr_level))
                keep_tile = None if region is None else TileFilter(region, patch)
                stats = chunked_stats(tomo.data, report=report, name=str(path))
                offset, spread = normalization_scale(stats, config.norm_type, str(path))
                scores = scan_tomogram(tomo.data, model, device, offset, spread, patch, pad,
                                       batch_size, report, stem, tta=transforms,
                                       keep_tile=keep_tile)
                shape, voxel_size = tomo.shape, tomo.voxel_size
                del tomo                   # unmaps the tomogram: its pages leave this process
                picks = picks_from_scores(scores, diameters, settings, device=device,
                                          tomo_name=stem, voxel_size=voxel_size, report=report,
                                          label_diameters=label_diameters)
                if region is not None:
                    picks = picks_in_mask(picks, region)
                    del region
            except (DeepETPickerError, OSError) as exc:
                result.failed[str(path)] = str(exc)
                report.log(f"skipped {path}: {exc}")
                continue
            except torch.cuda.OutOfMemoryError as exc:
                raise DeepETPickerError(
                    f"The GPU ran out of memory on {path.name} with {batch_size} tile(s) of "
                    f"{patch}^3 per pass. Lower --batch-size (or the patch size).") from exc
            coords = write_picks(out_dir / f"{stem}.coords", picks)
            record = dict(record_base, tomogram=str(path), shape=list(shape),
                          voxel_size=voxel_size, picks=coords.name,
                          counts={str(c): n for c, n in picks.counts(num_cls).items()},
                          t_dist=picks.meta["t_dist"], diameters=picks.meta["diameters"],
                          score_radius=picks.meta["score_radius"],
                          cross_class=picks.meta["cross_class"], refine=picks.meta["refine"],
                          localize=picks.meta["localize"],
                          min_score=picks.meta.get("min_score"),
                          min_class_confidence=picks.meta.get("min_class_confidence"),
                          class_confidence=[round(float(v), 4) for v in
                                            picks.meta.get("class_confidence", [])],
                          normalisation={"offset": offset, "scale": spread, "mean": stats.mean,
                                         "std": stats.std, "min": stats.min, "max": stats.max},
                          tiles=count_tiles(shape, patch, pad),
                          fingerprint=fingerprints[str(path)])
            if keep_tile is not None:
                record.update(mask=str(masks[path]), tiles_skipped=keep_tile.skipped)
            sidecar = write_sidecar(coords, record)
            guard.record([coords, sidecar])
            if save_scores:
                maps = _write_score_maps(scores, out_dir, stem, voxel_size,
                                         SCORE_DTYPES[score_dtype], class_names)
                guard.record(maps)
                result.score_maps.extend(maps)
            del scores
            result.outputs.append(coords)
            result.sources[coords] = path
            result.sidecars.append(sidecar)
            result.counts[stem] = picks.counts(int(config.num_cls))
            all_picks.append(picks)
            shapes[stem] = shape
            voxel_sizes[stem] = voxel_size
            report("predict", index + 1, total, item=stem,
                   message=f"{path.name}: {len(picks)} picks", picks=len(picks))
    except Cancelled as exc:  # say what was finished, e.g. for a results table
        result.seconds = time.monotonic() - started
        raise Cancelled(*exc.args, partial=result if result.outputs else None) from exc
    if not result.outputs and result.failed:
        details = "; ".join(f"{k}: {v}" for k, v in result.failed.items())
        raise DeepETPickerError(f"No tomogram could be processed. {details}")
    for fmt in formats:
        known_vs = {k: v for k, v in voxel_sizes.items() if v}
        written = write_export(fmt, all_picks, out_dir, known_vs or None, shapes)
        guard.record(written, tag=f"{fmt} {export_tag}")
        result.exports.extend(written)
    result.seconds = time.monotonic() - started
    return result


def scan_tomogram(data: np.ndarray, model: torch.nn.Module, device: torch.device, offset: float,
                  spread: float, patch: int, pad: int,
                  batch_size: int, report: Optional[Reporter] = None, name: str = "",
                  tta: TTAChoice = (), keep_tile: Optional[Callable] = None) -> np.ndarray:
    """Class scores ``(K, z, y, x)`` of one tomogram (raw values, normalised per tile).

    ``tta``: transforms (see :func:`deepetpicker.picking.tiling.tta_transforms`) whose scores
    are averaged per tile batch; each costs one more pass of the network. ``keep_tile``: see
    :func:`deepetpicker.picking.tiling.scan`.
    """
    from deepetpicker.picking.tiling import scan, tta_transforms

    check = getattr(report, "check", None)
    predict_fn = _make_predictor(model, device, offset, spread, tta=tta_transforms(tta),
                                 check=check)
    return scan(data, predict_fn, patch, pad, batch_size=batch_size, report=report,
                num_classes=model.num_classes, stage="scan", item=name, keep_tile=keep_tile)
