"""Training data: the preprocessed dataset on disk and the patch sampler.

The dataset is what preprocessing wrote under ``base_path``: normalised tomograms
(``tomo_path/<stem><tomo_format>``), weak labels (``label_path/<stem><tomo_format>``, class ids),
picks (``coord_path/<stem><coord_format>``) and ``coord_path/num_name.csv``, whose ids the
config's ``train_set_ids`` / ``val_set_ids`` refer to.

Each epoch draws one patch per annotated particle, its centre moved by up to ``N // 5`` voxels
per axis and the patch kept inside the tomogram, plus a share of patches at random places
(background). With a region-of-interest mask (the config's ``mask_path``, the rules of
``predict --mask``), background centres are drawn uniformly among the mask's non-zero voxels;
particle patches are drawn as without a mask. Sample ``i`` of epoch ``e`` depends only on
``(seed, e, i)``, so results do not depend on the number of DataLoader workers or processes.
Tomograms, labels and masks are opened memory-mapped inside each worker; only the patches are
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks, read_picks
from deepetpicker.io.tomogram import load_tomogram, tomogram_shape
from deepetpicker.picking.mask import VolumeLike, load_mask, mask_paths
from deepetpicker.picking.tiling import read_tile
from deepetpicker.train.augment import (
    AugmentSettings,
    context_margin,
    draw_transform,
    mirror,
    resample,
)

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig


@dataclass
class TomoEntry:
    """One preprocessed tomogram of the dataset."""

    index: int
    stem: str
    data_path: Path
    label_path: Path
    coord_path: Path
    shape: tuple
    picks: Picks
    #: The region-of-interest mask (non-zero = inside), or None for the whole tomogram.
    mask_path: Optional[Path] = None


def _preprocess_hint(config_source: Optional[str]) -> str:
    target = config_source or "the preprocessing config"
    return f"run preprocessing first (`deepetpicker preprocess {target}`) or correct the path"


def dataset_index(cfg: TrainConfig) -> list[tuple[int, str]]:
    """``(id, stem)`` of every tomogram listed in ``coord_path/num_name.csv``."""
    from deepetpicker.io.dataset import NUM_NAME, read_num_name

    path = Path(cfg.coord_path) / NUM_NAME
    if not path.is_file():
        raise DeepETPickerError(
            f"{path} not found (coord_path = {cfg.coord_path!r}): the list of preprocessed "
            f"tomograms is missing; {_preprocess_hint(None)}.")
    return [(idx, stem) for _, stem, idx in read_num_name(path)]


def _check_ids(cfg, ids: Sequence[int], key: str, index: dict) -> None:
    missing = [i for i in ids if i not in index]
    if missing:
        listing = ", ".join(f"{i}: {s}" for i, s in sorted(index.items())[:12])
        raise DeepETPickerError(
            f"{key} = {list(ids)}: id {missing[0]} is not in the dataset "
            f"({Path(cfg.coord_path) / 'num_name.csv'} lists {len(index)} tomogram(s): "
            f"{listing}). Use ids from that list.")


def check_dataset_ids(cfg: TrainConfig) -> bool:
    """Check ``train_set_ids`` and ``val_set_ids`` against the preprocessed dataset's list;
    False (nothing checked) when the dataset is not preprocessed yet."""
    from deepetpicker.io.dataset import NUM_NAME

    if not (Path(cfg.coord_path) / NUM_NAME).is_file():
        return False
    index = dict(dataset_index(cfg))
    _check_ids(cfg, cfg.train_set_ids, "train_set_ids", index)
    _check_ids(cfg, cfg.val_set_ids, "val_set_ids", index)
    return True


def load_entries(cfg: TrainConfig, ids: Sequence[int], key: str) -> list[TomoEntry]:
    """The tomograms with the given ids, checked: files present, shapes equal, picks valid.

    ``key`` (``train_set_ids`` / ``val_set_ids``) names the setting in error messages.
    """
    label_dir = Path(cfg.label_path)
    if not label_dir.is_dir():
        raise DeepETPickerError(
            f"Label folder {label_dir} not found (label_path): the weak labels are made by "
            f"preprocessing; {_preprocess_hint(None)}.")
    data_dir = Path(cfg.tomo_path)
    if not data_dir.is_dir():
        raise DeepETPickerError(
            f"Tomogram folder {data_dir} not found (tomo_path): the normalised tomograms are "
            f"made by preprocessing; {_preprocess_hint(None)}.")
    index = dict(dataset_index(cfg))
    _check_ids(cfg, ids, key, index)
    entries = []
    for i in ids:
        stem = index[i]
        data_path = data_dir / f"{stem}{cfg.tomo_format}"
        label_path = label_dir / f"{stem}{cfg.tomo_format}"
        coord_path = Path(cfg.coord_path) / f"{stem}{cfg.coord_format}"
        for what, path in (("normalised tomogram", data_path), ("weak labels", label_path),
                           ("coordinates", coord_path)):
            if not path.is_file():
                raise DeepETPickerError(
                    f"The {what} of tomogram {i} ({stem}) are missing: {path} not found; "
                    f"{_preprocess_hint(None)}.")
        shape = tomogram_shape(data_path)
        label_shape = tomogram_shape(label_path)
        if label_shape != shape:
            raise DeepETPickerError(
                f"{label_path} has shape {label_shape} but its tomogram {data_path} has "
                f"{shape}; the labels are out of date. Run preprocessing again.")
        picks = read_picks(coord_path, shape=shape, num_cls=cfg.num_cls, tomo_name=stem)
        entries.append(TomoEntry(i, stem, data_path, label_path, coord_path, shape, picks))
    return entries


def check_patch_fits(entries: Sequence[TomoEntry], patch: int) -> None:
    """Raise unless every tomogram is at least ``patch`` voxels along each axis."""
    for e in entries:
        if min(e.shape) < patch:
            fit = (min(e.shape) // 8) * 8
            if fit < 16:
                raise DeepETPickerError(
                    f"Tomogram {e.index} ({e.stem}, shape z, y, x = {e.shape}) is smaller than "
                    f"16 voxels along an axis, the smallest patch the network takes. Train on "
                    f"larger tomograms (or bin less), and leave this one out of "
                    f"train_set_ids/val_set_ids.")
            raise DeepETPickerError(
                f"patch_size {patch} is larger than tomogram {e.index} ({e.stem}, shape z, y, x "
                f"= {e.shape}). Use patch_size {fit} or less (a multiple of 8, at least 16).")


#: Random positions tried for a background centre inside a mask before it is drawn slice by
#: slice (so a mask of a few percent of the volume is still sampled uniformly, and quickly).
MASK_TRIES = 100


def attach_masks(entries: Sequence[TomoEntry], mask: Union[str, Path, None]) -> None:
    """Give each entry its region-of-interest mask: ``mask`` itself (a volume) or the mask
    named like the tomogram in the folder ``mask`` (the rules of ``predict --mask``), checked
    to have the tomogram's shape. Nothing happens for an empty ``mask``."""
    if not mask:
        return
    if not Path(mask).exists():
        raise DeepETPickerError(
            f"mask_path = {str(mask)!r}: no such mask or folder of masks. Correct the path "
            f"(--mask or mask_path in the training config), or leave it out to train on the "
            f"whole tomograms.")
    found = mask_paths(mask, [e.data_path for e in entries])
    for e in entries:
        load_mask(found[e.data_path], e.shape, e.data_path)  # the shape check
        e.mask_path = found[e.data_path]


def check_dataset_masks(cfg: TrainConfig) -> bool:
    """Check the config's ``mask_path`` against the tomograms of ``train_set_ids`` and
    ``val_set_ids`` (a mask for each, of its shape); False (only the path checked) when the
    dataset is not preprocessed yet or there is no mask."""
    from deepetpicker.io.dataset import NUM_NAME

    if not cfg.mask_path:
        return False
    if not (Path(cfg.coord_path) / NUM_NAME).is_file():
        attach_masks([], cfg.mask_path)
        return False
    ids = list(dict.fromkeys([*cfg.train_set_ids, *cfg.val_set_ids]))
    attach_masks(load_entries(cfg, ids, "train_set_ids/val_set_ids"), cfg.mask_path)
    return True


def mask_slice_counts(mask: VolumeLike) -> np.ndarray:
    """The number of non-zero voxels in each z-slice of ``mask``, read a slab at a time."""
    nz = int(mask.shape[0])
    step = max(1, 2 ** 24 // max(1, int(np.prod(mask.shape[1:]))))
    counts = np.zeros(nz, dtype=np.int64)
    for z in range(0, nz, step):
        block = np.asarray(mask[z:z + step])
        counts[z:z + len(block)] = np.count_nonzero(block.reshape(len(block), -1), axis=1)
    return counts


def draw_in_mask(mask: VolumeLike, rng: np.random.Generator, counts: np.ndarray,
                 tries: int = MASK_TRIES) -> np.ndarray:
    """A voxel ``(z, y, x)`` drawn uniformly among the non-zero voxels of ``mask``.

    Random positions of the volume are tried first (``tries`` of them, each reading one
    voxel); when all fall outside, a z-slice is drawn in proportion to its count of mask
    voxels (``counts``, from :func:`mask_slice_counts`) and a voxel among that slice's. Both
    ways give every mask voxel the same chance, and no list of all mask voxels is made.
    Raises :class:`DeepETPickerError` when the mask is empty.
    """
    shape = np.array(mask.shape, dtype=np.int64)
    for _ in range(int(tries)):
        zyx = np.minimum((rng.random(3) * shape).astype(np.int64), shape - 1)
        if np.asarray(mask[int(zyx[0]), int(zyx[1]), int(zyx[2])]) != 0:
            return zyx
    total = int(counts.sum())
    if total == 0:
        raise DeepETPickerError("The mask holds no non-zero voxel, so no background patch can "
                                "be drawn inside it; mark the region with non-zero values.")
    z = int(np.searchsorted(np.cumsum(counts), rng.random() * total, side="right"))
    inside = np.flatnonzero(np.asarray(mask[z]))
    y, x = np.unravel_index(inside[rng.integers(len(inside))], tuple(shape[1:]))
    return np.array([z, y, x], dtype=np.int64)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Training target from a class-id patch: ``(1, ...)`` foreground for one class,
    ``(K + 1, ...)`` one-hot (channel 0 background) for K classes."""
    if num_classes == 1:
        return (labels > 0).astype(np.float32)[None]
    ids = np.arange(num_classes + 1, dtype=labels.dtype).reshape(-1, 1, 1, 1)
    return (labels[None] == ids).astype(np.float32)


class PatchDataset(Dataset):
    """Patches around particles (jittered) and at random places, with augmentation.

    Items are ``(image (1, N, N, N), target (C, N, N, N))`` float32 tensors.
    ``background_fraction`` is the share of all patches drawn at random places: anywhere in
    the tomograms (each chosen in proportion to its volume), or, for entries with a
    ``mask_path``, among the mask's non-zero voxels (each tomogram in proportion to its mask
    voxels, so every voxel inside has the same chance). An empty mask is an error when
    background patches are drawn. Call :meth:`set_epoch` before each epoch (before the
    DataLoader iterator is made).
    """

    def __init__(self, entries: Sequence[TomoEntry], patch_size: int, num_classes: int,
                 augment: Optional[AugmentSettings] = None, background_fraction: float = 0.0,
                 jitter: Optional[int] = None, seed: int = 0,
                 max_particles: Optional[int] = None) -> None:
        self.entries = list(entries)
        self.patch = int(patch_size)
        self.num_classes = int(num_classes)
        self.augment = augment if augment is not None else AugmentSettings.off()
        self.jitter = self.patch // 5 if jitter is None else int(jitter)
        self.seed = int(seed)
        self.epoch = 0
        particles = [(k, zyx) for k, e in enumerate(self.entries)
                     for zyx in np.rint(e.picks.zyx).astype(np.int64)]
        if max_particles is not None and len(particles) > max_particles:
            keep = np.linspace(0, len(particles) - 1, int(max_particles)).round().astype(int)
            particles = [particles[i] for i in keep]
        self.particles = particles
        fraction = min(float(background_fraction), 0.95)
        self.n_background = int(round(len(particles) * fraction / (1.0 - fraction)))
        self._open: dict = {}
        self._masks: dict = {}
        #: Non-zero voxels per z-slice of each masked tomogram (by entry position).
        self.mask_counts: dict[int, np.ndarray] = {}
        if self.n_background:
            for k, e in enumerate(self.entries):
                if e.mask_path is None:
                    continue
                self.mask_counts[k] = mask_slice_counts(self._mask(k))
                if not self.mask_counts[k].any():
                    raise DeepETPickerError(
                        f"The mask {e.mask_path} of tomogram {e.index} ({e.stem}, "
                        f"{e.data_path}) holds no non-zero voxel, so no background patch can "
                        f"be drawn inside it. Mark the region to train on with non-zero "
                        f"values, or set background_fraction to 0.")
        sizes = np.array([float(self.mask_counts[k].sum()) if k in self.mask_counts
                          else float(np.prod(e.shape)) for k, e in enumerate(self.entries)])
        self._weights = sizes / sizes.sum() if len(sizes) else sizes

    def __len__(self) -> int:
        return len(self.particles) + self.n_background

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random jitter/augmentation the items use."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_open"] = {}  # memory maps are opened again in each worker
        state["_masks"] = {}
        return state

    def _mask(self, k: int) -> VolumeLike:
        if k not in self._masks:
            e = self.entries[k]
            self._masks[k] = load_mask(e.mask_path, e.shape, e.data_path)
        return self._masks[k]

    def _arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._open:
            e = self.entries[k]
            self._open[k] = (load_tomogram(e.data_path, mmap=True).data,
                             load_tomogram(e.label_path, mmap=True).data)
        return self._open[k]

    def sample_centre(self, i: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """Tomogram and centre (z, y, x) of item ``i``."""
        if i < len(self.particles):
            k, zyx = self.particles[i]
            centre = zyx + rng.integers(-self.jitter, self.jitter + 1, size=3)
        else:
            k = int(rng.choice(len(self.entries), p=self._weights))
            if k in self.mask_counts:
                centre = draw_in_mask(self._mask(k), rng, self.mask_counts[k])
            else:
                shape = np.array(self.entries[k].shape)
                centre = (rng.random(3) * shape).astype(np.int64)
        return k, centre

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        k, centre = self.sample_centre(i, rng)
        transform = draw_transform(rng, self.augment, self.patch)
        shape = np.array(self.entries[k].shape)
        n = self.patch
        # patch start kept inside the tomogram (centred where the tomogram is smaller)
        start = np.clip(centre + np.array(transform.shift) - n // 2, 0, np.maximum(shape - n, 0))
        start = np.where(shape < n, -((n - shape) // 2), start)
        data, labels = self._arrays(k)
        if transform.resamples:
            m = context_margin(n)
            image = read_tile(data, start - m, n + 2 * m)
            label = read_tile(labels, start - m, n + 2 * m)
            image, label = resample(image, label, transform, n)
        else:
            image = read_tile(data, start, n)
            label = read_tile(labels, start, n)
        image, label = mirror(image, label, transform.flips)
        label = np.rint(label).astype(np.int16)
        target = one_hot(label, self.num_classes)
        return torch.from_numpy(image[None]), torch.from_numpy(target)
