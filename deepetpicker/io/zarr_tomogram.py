"""Tomograms stored as Zarr: OME-Zarr multiscale groups (as copick writes them) and plain arrays.

A ``NAME.zarr`` folder is either

- an OME-Zarr group whose ``multiscales`` metadata lists its scale levels (datasets ``"0"``,
  ``"1"``, ... each with a ``scale`` coordinate transformation on the axes z, y, x); level 0,
  the full resolution, is read unless another is named, and the voxel size is that level's
  scale (times the group's own scale, when it has one), converted to Angstrom from the axes'
  unit (copick writes Angstrom; no unit is read as Angstrom); or
- a plain 3-D Zarr array, which has no voxel size.

The array is returned wrapped in a :class:`ChunkCache`: reading a slab, a slice or a tile
decompresses only the chunks it touches, like a memory-mapped MRC pages in only what is read,
and keeps the most recently decoded chunks, so the z-slabs of the statistics and the
overlapping tiles of a scan decompress each chunk about once even when chunks are larger than
what is read at a time (copick writes chunks of 256^3). ``np.asarray(array[...])`` reads it
whole.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import product
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.types import PathLike

Level = Union[int, str, None]

#: Angstrom per unit of the OME-Zarr axis units a tomogram may use.
_UNIT_ANGSTROM = {"angstrom": 1.0, "nanometer": 10.0, "micrometer": 1e4, "picometer": 0.01,
                  "millimeter": 1e7, "meter": 1e10}
_METADATA = (".zgroup", ".zarray")


def is_zarr_path(path: PathLike) -> bool:
    """Whether ``path`` names a Zarr store: a ``.zarr`` folder, or a folder with Zarr metadata."""
    path = Path(path)
    if path.suffix.lower() == ".zarr":
        return True
    return path.is_dir() and any((path / name).is_file() for name in (*_METADATA, "zarr.json"))


def _open(path: Path):
    import zarr

    if not any((path / name).is_file() for name in _METADATA):
        if (path / "zarr.json").is_file():
            raise DeepETPickerError(
                f"{path} is a Zarr version 3 store, which this installation (zarr "
                f"{zarr.__version__}) cannot read. Write the tomogram as Zarr version 2 "
                f"(OME-Zarr 0.4, as copick does) or convert it to MRC.")
        raise DeepETPickerError(
            f"{path} is not a Zarr store: it has no .zgroup or .zarray. Give the tomogram's "
            f".zarr folder (the one holding .zattrs and the scale levels 0, 1, ...).")
    try:
        return zarr.open(zarr.DirectoryStore(str(path)), mode="r")
    except Exception as exc:  # zarr raises several types for damaged metadata
        raise DeepETPickerError(
            f"Cannot read {path} as Zarr ({exc}). Check that the copy is complete.") from exc


def _multiscales(group, path: Path) -> Optional[dict]:
    entries = group.attrs.get("multiscales")
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict) \
            or not isinstance(entries[0].get("datasets"), list) or not entries[0]["datasets"]:
        raise DeepETPickerError(
            f"{path}: its 'multiscales' metadata lists no scale levels (datasets). Write the "
            f"tomogram again with an OME-Zarr writer, or convert it to MRC.")
    return entries[0]


def _scale(transforms, ndim: int) -> Optional[list[float]]:
    """The product of the ``scale`` transformations in ``transforms`` (None if there are none)."""
    result = None
    for item in transforms or ():
        if isinstance(item, dict) and item.get("type") == "scale":
            values = item.get("scale")
            if not isinstance(values, list) or len(values) != ndim:
                continue
            values = [float(v) for v in values]
            result = values if result is None else [a * b for a, b in zip(result, values)]
    return result


def _check_axes(meta: dict, path: Path) -> float:
    """Angstrom per axis unit; raises unless the axes are z, y, x (or unnamed)."""
    axes = meta.get("axes")
    if not axes:
        return 1.0
    names = [a.get("name") if isinstance(a, dict) else a for a in axes]
    if [str(n).lower() for n in names] != ["z", "y", "x"]:
        raise DeepETPickerError(
            f"{path} has the axes {names}; a tomogram needs the three axes z, y, x in that "
            f"order. Write it again as a 3-D (z, y, x) OME-Zarr, or convert it to MRC.")
    units = {str(a.get("unit")).lower() for a in axes if isinstance(a, dict) and a.get("unit")}
    if len(units) > 1:
        raise DeepETPickerError(f"{path}: its axes have different units {sorted(units)}; use "
                                f"one length unit for z, y and x.")
    unit = units.pop() if units else "angstrom"
    if unit not in _UNIT_ANGSTROM:
        raise DeepETPickerError(
            f"{path}: the axis unit {unit!r} is not a length unit DeepETPicker knows "
            f"({', '.join(_UNIT_ANGSTROM)}); write the scale in angstrom.")
    return _UNIT_ANGSTROM[unit]


#: What zarr and the metadata's own values raise for metadata of the wrong shape or type.
_DAMAGED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def _damaged(path: Path, exc: Exception) -> DeepETPickerError:
    return DeepETPickerError(
        f"{path}: its Zarr metadata (.zattrs, .zarray) is damaged or not OME-Zarr "
        f"({type(exc).__name__}: {exc}). Copy the .zarr folder again, or write the tomogram "
        f"again with an OME-Zarr writer (or as MRC).")


def zarr_levels(path: PathLike) -> list[str]:
    """The scale levels (dataset paths, finest first) of an OME-Zarr tomogram; ``["0"]`` for
    a plain array."""
    path = Path(path)
    try:
        return _levels(path)
    except _DAMAGED as exc:
        raise _damaged(path, exc) from exc


def _levels(path: Path) -> list[str]:
    node = _open(path)
    if hasattr(node, "shape"):
        return ["0"]
    meta = _multiscales(node, path)
    if meta is None:
        return []
    return [str(d.get("path")) for d in meta["datasets"] if isinstance(d, dict)]


def _pick_level(paths: list[str], level: Level) -> int:
    if level is None:
        return 0
    text = str(level).strip()
    if text in paths:
        return paths.index(text)
    if text.isdigit() and int(text) < len(paths):
        return int(text)
    return -1


def open_zarr_tomogram(path: PathLike, level: Level = None
                       ) -> tuple["ChunkCache", Optional[float]]:
    """``(array, voxel size in Angstrom or None)`` of a Zarr tomogram at scale ``level``.

    ``level``: None or 0 for the finest level, an index into the multiscales' list of levels or
    a level's path (``"1"``). ``array`` is a read-only ``zarr.Array`` of shape (z, y, x) in a
    :class:`ChunkCache`.
    Raises :class:`DeepETPickerError` naming the folder for a Zarr without multiscales metadata
    that is not a 3-D array, a level that does not exist (the error lists those that do), and
    data that is not 3-D.
    """
    path = Path(path)
    try:
        return _open_level(path, level)
    except _DAMAGED as exc:
        raise _damaged(path, exc) from exc


def _open_level(path: Path, level: Level) -> tuple["ChunkCache", Optional[float]]:
    node = _open(path)
    if hasattr(node, "shape"):                     # a plain array
        if level not in (None, 0, "0"):
            raise DeepETPickerError(
                f"{path} is a single Zarr array with no scale levels, so level {level!r} does "
                f"not exist; leave the level out (or give 0).")
        return ChunkCache(_three_d(node, path)), None
    meta = _multiscales(node, path)
    if meta is None:
        arrays = sorted(name for name, _ in node.arrays())
        found = (f"it holds the arrays {', '.join(arrays)}" if arrays
                 else "it holds no arrays")
        raise DeepETPickerError(
            f"{path} is a Zarr group without OME-Zarr 'multiscales' metadata ({found}), so "
            f"DeepETPicker cannot tell which array is the tomogram or its voxel size. Give the "
            f"array's own folder (e.g. {path / (arrays[0] if arrays else '0')}), or write the "
            f"tomogram as OME-Zarr.")
    datasets = [d for d in meta["datasets"] if isinstance(d, dict) and "path" in d]
    paths = [str(d["path"]) for d in datasets]
    index = _pick_level(paths, level)
    if index < 0:
        raise DeepETPickerError(
            f"{path} has no scale level {level!r}; its levels are {', '.join(paths)} "
            f"(0 = full resolution). Choose one of those.")
    unit = _check_axes(meta, path)
    name = paths[index]
    try:
        array = node[name]
    except KeyError:
        raise DeepETPickerError(
            f"{path}: scale level {name!r} is listed in its metadata but its array is "
            f"missing; the copy is incomplete. Copy the whole .zarr folder again.") from None
    array = _three_d(array, path / name)
    scale = _scale(datasets[index].get("coordinateTransformations"), 3)
    overall = _scale(meta.get("coordinateTransformations"), 3)
    if scale is not None and overall is not None:
        scale = [a * b for a, b in zip(scale, overall)]
    voxel = None
    if scale is not None and scale[-1] > 0:
        voxel = scale[-1] * unit
    return ChunkCache(array), voxel


def _three_d(array, path: Path):
    if not hasattr(array, "shape"):
        raise DeepETPickerError(f"{path} is a Zarr group, not an array; give a scale level "
                                f"that holds the tomogram.")
    if len(array.shape) != 3 or min(array.shape) < 2:
        raise DeepETPickerError(
            f"{path} holds an array of shape {tuple(array.shape)}, not a 3-D tomogram. "
            f"Particle picking needs a reconstructed volume (z, y, x).")
    return array


class ChunkCache:
    """A read-only chunked array (a ``zarr.Array``) that keeps its recently decoded chunks.

    Indexing with integers and slices (positive steps) decodes each chunk the selection
    touches once and keeps up to ``cache_bytes`` of decoded chunks, least recently used first
    out: by default two rows of chunks across the (y, x) plane, at most 2 GiB but at least
    eight chunks. Other indexing goes to the array itself. ``shape``, ``dtype``, ``ndim``,
    ``size``, ``chunks`` and ``vindex`` are the array's.
    """

    MAX_DEFAULT_BYTES = 2 * 2 ** 30

    def __init__(self, array, cache_bytes: Optional[int] = None) -> None:
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))
        self.chunks = tuple(int(c) for c in array.chunks)
        chunk_bytes = int(np.prod(self.chunks)) * self.dtype.itemsize
        per_row = int(np.prod([-(-n // c) for n, c in zip(self.shape[1:], self.chunks[1:])]))
        if cache_bytes is None:
            cache_bytes = max(8 * chunk_bytes,
                              min(2 * per_row * chunk_bytes, self.MAX_DEFAULT_BYTES))
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict = OrderedDict()
        self._held = 0

    @property
    def vindex(self) -> Any:
        """The Zarr array's point indexer (``zarr.indexing.VIndex``), passed through."""
        return self.array.vindex

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[...]
        return whole if dtype is None else whole.astype(dtype)

    def _chunk(self, index: tuple[int, ...]) -> np.ndarray:
        block = self._cache.get(index)
        if block is not None:
            self._cache.move_to_end(index)
            return block
        region = tuple(slice(i * c, min((i + 1) * c, n))
                       for i, c, n in zip(index, self.chunks, self.shape))
        block = np.asarray(self.array[region])
        self._cache[index] = block
        self._held += block.nbytes
        while self._held > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= old.nbytes
        return block

    def _plan(self, key):
        """``(start, stop, step, is_integer)`` per axis, or None for indexing left to zarr."""
        key = key if isinstance(key, tuple) else (key,)
        if sum(k is Ellipsis for k in key) > 1:
            return None
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1:]
        if len(key) > self.ndim:
            return None
        key = key + (slice(None),) * (self.ndim - len(key))
        plan = []
        for k, n in zip(key, self.shape):
            if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
                i = int(k) + (n if k < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
                plan.append((i, i + 1, 1, True))
            elif isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step < 1:
                    return None
                count = max(0, -(-(stop - start) // step))
                plan.append((start, start + (count - 1) * step + 1 if count else start, step,
                             False))
            else:
                return None
        return plan

    def __getitem__(self, key) -> np.ndarray:
        plan = self._plan(key)
        if plan is None:
            return np.asarray(self.array[key])
        box = [stop - start for start, stop, _, _ in plan]
        out = np.empty(box, dtype=self.dtype)
        if min(box, default=1) > 0:
            ranges = [range(start // c, (stop - 1) // c + 1)
                      for (start, stop, _, _), c in zip(plan, self.chunks)]
            for index in product(*ranges):
                block = self._chunk(index)
                src, dst = [], []
                for i, c, (start, stop, _, _) in zip(index, self.chunks, plan):
                    lo, hi = max(start, i * c), min(stop, (i + 1) * c)
                    src.append(slice(lo - i * c, hi - i * c))
                    dst.append(slice(lo - start, hi - start))
                out[tuple(dst)] = block[tuple(src)]
        picked = tuple(0 if integer else slice(None, None, step)
                       for _, _, step, integer in plan)
        return out[picked]


__all__ = ["ChunkCache", "is_zarr_path", "open_zarr_tomogram", "zarr_levels"]
