"""RELION STAR files: RELION 3 (``star``), RELION 4.0 (``relion4``) and 5.0 (``relion5``).

Where each origin comes from (RELION's own source, 3dem/relion):

* RELION 3 (``star``): extraction windows the micrograph or tomogram at
  ``x0 = (long) rlnCoordinateX + FIRST_XMIPP_INDEX(size)`` with 0-based array indices
  (``src/preprocessing.cpp``, ``extractParticlesFromOneFrame``), so the coordinate is the
  0-based index of the box centre.
* RELION 4.0 (``relion4``): ``ParticleSet::getPosition`` adds 1 to rlnCoordinate
  (``src/jaz/tomography/particle_set.cpp``) because its internal tomogram frame is 1-based
  (``ImodImport`` subtracts 1 again, ``toImodOrigin3D``; ``relion_tomo_reconstruct_tomogram``
  puts voxel 0 at origin 1.0). rlnCoordinate is therefore 0-based, in pixels of the unbinned
  tilt series (``rlnTomoTiltSeriesPixelSize`` of the optics group, which
  ``relion_tomo_import_particles`` writes): a pick at voxel ``v`` of a tomogram binned ``B``
  times is ``v * B``. ``rlnImagePixelSize``, added by ``relion_tomo_subtomo``, is the pixel
  size of the extracted subtomograms, not the unit of the coordinates.
* RELION 5.0 (``relion5``): ``getPosition`` no longer adds 1 and rlnCenteredCoordinate*Angst
  is ``(pixel - size / 2) * rlnTomoTiltSeriesPixelSize`` (``getParticleCoordDecenteredPixel``;
  ``TomogramSet::loadTomogram`` sets the centre to ``size / 2``); reconstruction puts voxel 0
  at origin 0.0 and projection (``Tomogram::getProjectionMatrix``) starts from 0-based pixels.
  In the voxels of a binned tomogram that is ``(v - shape / 2) * voxel_size``.
  There is no RELION 4.1 release; the comment "no longer do this in relion-4.1" in
  ``getPosition`` refers to development that became 5.0.
* ``rlnClassNumber`` carries the picking class, as RELION's own autopicker writes the
  reference number there. It does not select half-sets (``rlnRandomSubset`` does; RELION 4's
  particle import fills it alternately) and it is no initial class assignment:
  Refine3D/Class3D only compare it with the new assignment and overwrite it after the first
  iteration. Only ``relion_reconstruct --class`` and particle subtraction read it.
* The tomogram name: RELION 5 writes tomogram ``<rlnTomoName>`` to ``rec_<rlnTomoName>.mrc``,
  so picks made on ``rec_TS_01.mrc`` need ``tomo_name="rec_{name}"`` to become
  ``rlnTomoName TS_01`` (see :class:`TomoNames`).

RELION origin shifts (``rlnOrigin*Angst``) and orientations are not applied: picks are
positions. Scores travel in ``rlnAutopickFigureOfMerit``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.format_specs import RELION_CENTRED_X, RELION_TOMO_NAME
from deepetpicker.io.formats.conventions import (
    from_centred_angstrom,
    from_tilt_series_pixels,
    to_centred_angstrom,
    to_tilt_series_pixels,
)
from deepetpicker.io.formats.geometry import (
    BINNING_TOLERANCE,
    TS_PIXEL,
    Geometry,
    relion4_binning,
    require_shape,
    require_voxel,
)
from deepetpicker.io.formats.names import ClassIds
from deepetpicker.io.formats.registry import reads, writes
from deepetpicker.io.picks import Picks

# STAR labels
_MICROGRAPH = "rlnMicrographName"
_TOMO = RELION_TOMO_NAME
XYZ_PIXEL = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
_XYZ_CENTRED = (RELION_CENTRED_X, "rlnCenteredCoordinateYAngst", "rlnCenteredCoordinateZAngst")
_CLASS = "rlnClassNumber"
_SCORE = "rlnAutopickFigureOfMerit"
#: A pick's class confidence (its class's share of the class probabilities around it): the
#: column RELION's classifications use for how sure the assignment is.
_CLASS_CONFIDENCE = "rlnMaxValueProbDistribution"
_OPTICS_GROUP = "rlnOpticsGroup"
_OPTICS_NAME = "rlnOpticsGroupName"


def _star_blocks(path: Path) -> dict:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True,
                               parse_as_string=[_TOMO, _MICROGRAPH, _OPTICS_NAME])
    except Exception as exc:  # the parser raises many types on malformed input
        raise DeepETPickerError(f"{path} is not a readable STAR file ({exc}).") from exc
    return blocks


def _numeric_column(path: Path, block: str, df, label: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(df[label], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.nonzero(~np.isfinite(values))[0]
    if len(bad):
        row = int(bad[0])
        cell = df[label].iloc[row]
        problem = ("is missing (the row is short of values)" if pd.isna(cell)
                   else f"is '{cell}', not a finite number")
        raise DeepETPickerError(f"{path}, block data_{block}, row {row + 1}: {label} {problem}.")
    return values


def _optics_pixel_sizes(path: Path, blocks: dict, df) -> Optional[np.ndarray]:
    """rlnTomoTiltSeriesPixelSize of each particle row from the optics table (None without)."""
    optics = blocks.get("optics")
    if optics is None or not hasattr(optics, "columns") or TS_PIXEL not in optics.columns:
        return None
    sizes = _numeric_column(path, "optics", optics, TS_PIXEL)
    if np.any(sizes <= 0):
        raise DeepETPickerError(
            f"{path}, block data_optics: {TS_PIXEL} {sizes[sizes <= 0][0]:g} is not a positive "
            f"pixel size in Angstrom.")
    if _OPTICS_GROUP in optics.columns and _OPTICS_GROUP in df.columns:
        groups = dict(zip(_numeric_column(path, "optics", optics, _OPTICS_GROUP), sizes))
        rows = _numeric_column(path, "particles", df, _OPTICS_GROUP)
        missing = sorted(set(rows) - set(groups))
        if missing:
            raise DeepETPickerError(
                f"{path}: particles of {_OPTICS_GROUP} {missing[0]:g} but data_optics has no "
                f"such group (it has {', '.join(f'{g:g}' for g in sorted(groups))}).")
        return np.array([groups[g] for g in rows])
    if len(sizes) == 1:
        return np.full(len(df), sizes[0])
    raise DeepETPickerError(
        f"{path}: data_optics has {len(sizes)} groups but the particles have no "
        f"{_OPTICS_GROUP} column, so their tilt-series pixel size is unknown.")


def _one_pixel_size(path: Path, name: str, sizes: Optional[np.ndarray],
                    given: Optional[float]) -> Optional[float]:
    """The tilt-series pixel size of one tomogram's rows: the file's and/or the given one."""
    found = None
    if sizes is not None and len(sizes):
        values = np.unique(np.round(sizes, 6))
        if len(values) > 1:
            raise DeepETPickerError(
                f"{path}: the particles of tomogram '{name}' lie in optics groups with different "
                f"{TS_PIXEL} ({', '.join(f'{v:g}' for v in values)} A).")
        found = float(sizes[0])
    if given is not None and found is not None \
            and not math.isclose(given, found, rel_tol=BINNING_TOLERANCE):
        raise DeepETPickerError(
            f"{path}: --tilt-series-pixel-size {given:g} A disagrees with the file's {TS_PIXEL} "
            f"{found:g} A for tomogram '{name}'. Leave the option out to use the file's value.")
    return given if given is not None else found


@reads("star", "relion4", "relion5")
def _read_star(path: Path, geometry: Geometry, ids: ClassIds,
               num_cls: Optional[int]) -> list[Picks]:
    blocks = _star_blocks(path)
    found = None
    for block, df in blocks.items():
        if not hasattr(df, "columns"):
            continue
        if all(c in df.columns for c in _XYZ_CENTRED) or all(c in df.columns for c in XYZ_PIXEL):
            found = (block, df)
            break
    if found is None:
        raise DeepETPickerError(
            f"{path} has no data block with particle coordinates: expected the labels "
            f"{', '.join(XYZ_PIXEL)} (RELION 3/4) or {', '.join(_XYZ_CENTRED)} (RELION 5).")
    block, df = found
    centred = all(c in df.columns for c in _XYZ_CENTRED)
    labels = _XYZ_CENTRED if centred else XYZ_PIXEL
    coords = np.column_stack([_numeric_column(path, block, df, c) for c in labels])
    tomo_labels = _TOMO in df.columns
    if tomo_labels:
        relion_names = df[_TOMO].astype(str).to_numpy()
        if geometry.names is not None:
            mapped = {n: geometry.names.stem(n, str(path)) for n in dict.fromkeys(relion_names)}
            names = np.array([mapped[n] for n in relion_names])
        else:
            names = relion_names
    elif _MICROGRAPH in df.columns:
        names = np.array([Path(str(v)).stem for v in df[_MICROGRAPH]])
    else:
        names = np.full(len(df), path.stem)
    classes = np.ones(len(df))
    if _CLASS in df.columns:
        classes = _numeric_column(path, block, df, _CLASS)
        bad = np.nonzero((classes < 1) | (classes != np.round(classes)))[0]
        if len(bad):
            raise DeepETPickerError(
                f"{path}, block data_{block}, row {int(bad[0]) + 1}: {_CLASS} is "
                f"{df[_CLASS].iloc[int(bad[0])]}; class ids are whole numbers from 1.")
    scores = _numeric_column(path, block, df, _SCORE) if _SCORE in df.columns else None
    pixel_sizes = _optics_pixel_sizes(path, blocks, df) if tomo_labels else None
    tables = []
    for index, name in enumerate(geometry.selected(names, str(path))):
        rows = names == name
        voxel = geometry.voxel(name)
        xyz = coords[rows]
        meta: dict = {}
        if tomo_labels:
            ts = _one_pixel_size(path, name, None if pixel_sizes is None
                                 else pixel_sizes[rows], geometry.ts_pixel)
            if centred:
                if voxel is None and ts is not None and geometry.binning is not None:
                    voxel = ts * geometry.binning
                if ts is not None and voxel is not None and geometry.binning is not None:
                    relion4_binning(name, voxel, ts, geometry.binning, str(path))  # agree?
                meta["tilt_series_pixel_size"] = ts
            else:
                factor, voxel, ts = relion4_binning(name, voxel, ts, geometry.binning,
                                                    str(path))
                xyz = from_tilt_series_pixels(xyz, factor)
                meta.update(binning=factor, tilt_series_pixel_size=ts)
        if centred:
            shape = require_shape(name, geometry.shape(name, index), str(path), geometry)
            voxel = require_voxel("relion5", name, voxel, str(path), geometry)
            xyz = from_centred_angstrom(xyz, shape, voxel)
        tables.append(Picks(classes[rows], xyz, None if scores is None else scores[rows],
                            str(name), voxel, meta))
    return tables


def _class_confidence(table: Picks):
    """The class confidence of each pick of a predicted table, or None."""
    values = table.meta.get("class_confidence")
    if values is None or len(values) != len(table):
        return None
    return np.asarray(values, np.float64)


def _star_frame(tables: Sequence[Picks], name_label: str, name_of, coords_of,
                optics_group_of=None):
    """One particles table (a pandas DataFrame) for all tomograms; ``coords_of(table, index)``
    gives the coordinate labels and values, ``name_of(table)`` the tomogram column and
    ``optics_group_of(table)`` (when given) the rlnOpticsGroup column."""
    import pandas as pd

    has_scores = bool(tables) and all(t.scores is not None for t in tables)
    labels = coords_of(tables[0], 0)[0] if tables else XYZ_PIXEL
    columns: dict[str, list] = {name_label: [], **{c: [] for c in labels}, _CLASS: []}
    if has_scores:
        columns[_SCORE] = []
    has_confidence = bool(tables) and all(_class_confidence(t) is not None for t in tables)
    if has_confidence:
        columns[_CLASS_CONFIDENCE] = []
    if optics_group_of is not None:
        columns[_OPTICS_GROUP] = []
    for index, table in enumerate(tables):
        _, xyz = coords_of(table, index)
        columns[name_label] += [name_of(table)] * len(table)
        for label, values in zip(labels, xyz.T):
            columns[label] += values.tolist()
        columns[_CLASS] += table.classes.tolist()
        if has_scores:
            columns[_SCORE] += table.scores.tolist()
        if has_confidence:
            columns[_CLASS_CONFIDENCE] += _class_confidence(table).tolist()
        if optics_group_of is not None:
            columns[_OPTICS_GROUP] += [optics_group_of(table)] * len(table)
    return pd.DataFrame(columns)


def _write_star_file(path: Path, frame, optics=None) -> Path:
    """Particles first, so RELION's importers (which read the first data block) find them;
    ``data_optics`` after, found by name as RELION's ParticleSet reads it."""
    import starfile

    blocks = {"particles": frame}
    if optics is not None:
        blocks["optics"] = optics
    with atomic_path(path) as tmp:
        starfile.write(blocks, tmp, float_format="%.6f")
    return path


def _optics_table(pixel_sizes: Mapping[str, float]):
    """Optics groups, one per distinct tilt-series pixel size: (frame, tomogram -> group)."""
    import pandas as pd

    groups: dict[float, int] = {}
    group_of = {}
    for name, size in pixel_sizes.items():
        key = round(float(size), 6)
        groups.setdefault(key, len(groups) + 1)
        group_of[name] = groups[key]
    frame = pd.DataFrame({_OPTICS_GROUP: list(groups.values()),
                          _OPTICS_NAME: [f"opticsGroup{g}" for g in groups.values()],
                          TS_PIXEL: list(groups)})
    return frame, group_of


def _relion_names(tables: Sequence[Picks], geometry: Geometry) -> dict[str, str]:
    """rlnTomoName of each table's tomogram."""
    return {t.tomo_name: geometry.names.relion(t.tomo_name) if geometry.names else t.tomo_name
            for t in tables}


@writes("star")
def _write_star3(tables, out_dir, geometry, class_names,
                 file_name=None) -> list[Path]:
    frame = _star_frame(tables, _MICROGRAPH, lambda t: f"{t.tomo_name}.mrc",
                        lambda t, i: (XYZ_PIXEL, t.xyz))
    return [_write_star_file(out_dir / (file_name or "particles.star"), frame)]


@writes("relion4")
def _write_relion4(tables, out_dir, geometry, class_names,
                   file_name=None) -> list[Path]:
    names = _relion_names(tables, geometry)
    scale = {}
    for table in tables:
        ts = geometry.ts_pixel or table.meta.get("tilt_series_pixel_size")
        scale[table.tomo_name] = relion4_binning(
            table.tomo_name, geometry.voxel(table.tomo_name, table.voxel_size), ts,
            geometry.binning)
    pixel_sizes = {name: s[2] for name, s in scale.items()}
    optics, group_of = (None, None)
    if tables and all(size is not None for size in pixel_sizes.values()):
        optics, group_of = _optics_table(pixel_sizes)
    frame = _star_frame(
        tables, _TOMO, lambda t: names[t.tomo_name],
        lambda t, i: (XYZ_PIXEL, to_tilt_series_pixels(t.xyz, scale[t.tomo_name][0])),
        (lambda t: group_of[t.tomo_name]) if group_of else None)
    return [_write_star_file(out_dir / (file_name or "particles_relion4.star"), frame, optics)]


@writes("relion5")
def _write_relion5(tables, out_dir, geometry, class_names,
                   file_name=None) -> list[Path]:
    names = _relion_names(tables, geometry)
    pixel_sizes = {}

    def centred(table: Picks, index: int):
        shape = require_shape(table.tomo_name, geometry.shape(table.tomo_name, index),
                              geometry=geometry)
        ts = geometry.ts_pixel or table.meta.get("tilt_series_pixel_size")
        voxel = geometry.voxel(table.tomo_name, table.voxel_size)
        if geometry.binning is not None:
            _, voxel, ts = relion4_binning(table.tomo_name, voxel, ts, geometry.binning)
        voxel = require_voxel("relion5", table.tomo_name, voxel, geometry=geometry)
        pixel_sizes[table.tomo_name] = ts
        return _XYZ_CENTRED, to_centred_angstrom(table.xyz, shape, voxel)

    for index, table in enumerate(tables):  # check every tomogram before writing anything
        centred(table, index)
    optics, group_of = (None, None)
    if tables and all(size is not None for size in pixel_sizes.values()):
        optics, group_of = _optics_table(pixel_sizes)
    frame = _star_frame(tables, _TOMO, lambda t: names[t.tomo_name], centred,
                        (lambda t: group_of[t.tomo_name]) if group_of else None)
    return [_write_star_file(out_dir / (file_name or "particles_relion5.star"), frame, optics)]
