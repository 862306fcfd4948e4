"""One tomogram -> class scores -> picks, with a network loaded once.

:class:`TomogramPicker` holds what every tomogram of a prediction shares (the network on its
device, the tile size and pad, tiles per pass, test-time augmentation and the picking rule)
and is called once per tomogram: it opens the tomogram memory-mapped, computes its intensity
statistics in slabs, normalises every tile on the fly as training did, runs the overlap-tile
scan and picks the peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.progress import Reporter

if TYPE_CHECKING:
    import torch

    from deepetpicker.io.picks import Picks
    from deepetpicker.normalize import VolumeStats
    from deepetpicker.picking.mask import TileFilter
    from deepetpicker.picking.settings import PickSettings
    from deepetpicker.picking.tiling import TileTransform, TTAChoice

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


def make_predictor(model: torch.nn.Module, device: torch.device, offset: float, spread: float,
                   tta: Sequence[TileTransform] = (), check: Optional[Callable[[], None]] = None,
                   precision: Optional[str] = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Normalise a raw tile batch, run the network, return class probabilities.

    ``tta``: :class:`~deepetpicker.picking.tiling.TileTransform` s whose probabilities are
    averaged (each one a pass of the network over the batch, transformed on ``device``);
    ``check`` is called between those passes. ``precision``: a resolved precision (see
    :func:`deepetpicker.precision.resolve_precision`); None is the device's default (float16
    mixed precision on a GPU, fp32 on the CPU).
    """
    import torch

    from deepetpicker.model import probabilities
    from deepetpicker.picking.tiling import with_tta
    from deepetpicker.precision import autocast_dtype

    if precision is None:
        precision = "fp16" if device.type == "cuda" else "fp32"
    dtype = autocast_dtype(precision)

    def network(x):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
        return probabilities(logits.float())

    averaged = with_tta(network, tta, check=check)

    def predict_fn(batch):
        x = batch.to(device, non_blocking=True)
        x = (x - offset) / spread
        with torch.inference_mode():
            return averaged(x)

    return predict_fn


def scan_tomogram(data: np.ndarray, model: torch.nn.Module, device: torch.device, offset: float,
                  spread: float, patch: int, pad: int,
                  batch_size: int, report: Optional[Reporter] = None, name: str = "",
                  tta: TTAChoice = (), keep_tile: Optional[Callable] = None,
                  precision: Optional[str] = None) -> np.ndarray:
    """Class scores ``(K, z, y, x)`` of one tomogram (raw values, normalised per tile).

    ``tta``: transforms (see :func:`deepetpicker.picking.tiling.tta_transforms`) whose scores
    are averaged per tile batch; each costs one more pass of the network. ``keep_tile``: see
    :func:`deepetpicker.picking.tiling.scan`.
    """
    from deepetpicker.picking.tiling import scan, tta_transforms

    check = getattr(report, "check", None)
    predict_fn = make_predictor(model, device, offset, spread, tta=tta_transforms(tta),
                                check=check, precision=precision)
    return scan(data, predict_fn, patch, pad, batch_size=batch_size, report=report,
                num_classes=model.num_classes, stage="scan", item=name, keep_tile=keep_tile)


@dataclass
class PickedTomogram:
    """What picking one tomogram gave: its picks and class scores, its shape and voxel size,
    its intensity statistics and the normalisation applied, and the tile filter of its mask
    (None without one)."""

    picks: Picks
    scores: np.ndarray
    shape: tuple
    voxel_size: Optional[float]
    stats: VolumeStats
    offset: float
    spread: float
    keep_tile: Optional[TileFilter] = None


@dataclass
class TomogramPicker:
    """The network and the picking rule of a prediction, built once and called per tomogram
    (see the module's docstring). ``label_diameters``: the weak labels the network was
    trained with (None when unknown: scores then come from a quarter of the particle)."""

    model: torch.nn.Module
    device: torch.device
    patch: int
    pad: int
    batch_size: int
    settings: PickSettings
    diameters: list
    label_diameters: Optional[list]
    norm_type: str
    transforms: tuple[TileTransform, ...] = ()
    zarr_level: Union[int, str, None] = None
    precision: Optional[str] = None

    def __call__(self, path: Path, mask_path: Optional[Path], report: Reporter
                 ) -> PickedTomogram:
        """Pick the particles of the tomogram ``path`` (inside the mask at ``mask_path``,
        when given)."""
        from deepetpicker.io.tomogram import load_tomogram
        from deepetpicker.normalize import chunked_stats, normalization_scale
        from deepetpicker.picking.mask import TileFilter, load_mask, picks_in_mask
        from deepetpicker.picking.settings import picks_from_scores

        tomo = load_tomogram(path, mmap=True, level=self.zarr_level)
        region = (None if mask_path is None else
                  load_mask(mask_path, tomo.shape, path, level=self.zarr_level))
        keep_tile = None if region is None else TileFilter(region, self.patch)
        stats = chunked_stats(tomo.data, report=report, name=str(path))
        offset, spread = normalization_scale(stats, self.norm_type, str(path))
        scores = scan_tomogram(tomo.data, self.model, self.device, offset, spread, self.patch,
                               self.pad, self.batch_size, report, path.stem,
                               tta=self.transforms, keep_tile=keep_tile,
                               precision=self.precision)
        shape, voxel_size = tomo.shape, tomo.voxel_size
        del tomo                   # unmaps the tomogram: its pages leave this process
        picks = picks_from_scores(scores, self.diameters, self.settings, device=self.device,
                                  tomo_name=path.stem, voxel_size=voxel_size, report=report,
                                  label_diameters=self.label_diameters)
        if region is not None:
            picks = picks_in_mask(picks, region)
        return PickedTomogram(picks, scores, shape, voxel_size, stats, offset, spread,
                              keep_tile)
