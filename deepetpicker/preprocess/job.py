"""The preprocessing job: raw tomograms + coordinate files -> everything training needs.

Inputs (a :class:`deepetpicker.config.PreprocessConfig`): tomograms (``.mrc``, ``.rec``,
``.map``, or ``.zarr`` folders: OME-Zarr at scale level 0 or the level named) in ``tomo_path``
and coordinate tables (``.coords``, ``.txt``, ``.csv``) in ``coord_path``, paired by file
stem. A tomogram without a coordinate file is only normalised (it is for inference).
Outputs, under ``base_path``, with the original program's names:

- ``coords/<stem><coord_format>``: validated copies of the pick tables, and
  ``coords/num_name.csv``: one tab-separated line ``count, stem, id`` per picked tomogram
  (ids 0, 1, ... in order of stem; training configs select tomograms by these ids);
- ``data_std/<stem><tomo_format>`` (z-score) or ``data_norm/...`` (min-max), float32 MRC
  (also for a Zarr input);
- ``<label_type><label_diameter>/<stem><tomo_format>``: weak labels, class ids (MRC mode 0);
  with one label diameter per class (``label_diameters``) the folder is
  ``<label_type><d1>-<d2>-...`` and class k is painted with its own diameter;
- ``data_ocp/<stem><tomo_format>``: occupancy maps, instance ids 1..N in file order
  (float32, exact for up to 2^24 particles);
- ``configs/<dset_name>.py``: the config the job ran with.

Every input is checked before anything is written; all problems found are reported in one
:class:`DeepETPickerError`. A re-run skips each output that is up to date: it exists, is no
older than its inputs, unchanged since it was written, and the settings and input files that
made it are unchanged. That record is kept in the output manifest of ``base_path`` (see
:mod:`deepetpicker.io.outputs`): each output is recorded with a tag that fingerprints its
settings and inputs. A dataset preprocessed before, with its own
``base_path/.preprocess_manifest.json``, has that file taken over into the manifest on the
next run (and then removed), so its finished outputs are still skipped. Outputs are written
under a temporary name and renamed, so a cancelled run leaves no partial file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from deepetpicker.config import (
    COORD_FORMATS,
    PreprocessConfig,
    format_config,
    save_config,
    written_by_save_config,
)
from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.io.atomic import atomic_path, write_text_atomic
from deepetpicker.io.dataset import NUM_NAME, RAW_TOMOGRAM_SUFFIXES, read_num_name
from deepetpicker.io.outputs import MANIFEST_NAME, OutputGuard, file_stamp, stale_note
from deepetpicker.io.picks import Picks, read_picks, write_picks
from deepetpicker.io.tomogram import create_tomogram, is_tomogram_entry, load_tomogram
from deepetpicker.io.zarr_tomogram import is_zarr_path
from deepetpicker.normalize import (
    VolumeStats,
    chunked_stats,
    normalization_scale,
    normalize_to_file,
)
from deepetpicker.preprocess.labels import paint_labels, paint_occupancy
from deepetpicker.progress import CancelToken, ProgressCallback, Reporter

#: The file under ``base_path`` that records what preprocessing wrote (the output manifest).
MANIFEST = MANIFEST_NAME
#: Where earlier versions kept that record; read once and taken over into :data:`MANIFEST`.
LEGACY_MANIFEST = ".preprocess_manifest.json"
# Problems listed in full in one error; more are counted.
_MAX_LISTED = 20


@dataclass
class PreprocessResult:
    """What a preprocessing run produced.

    ``tomograms``: stems of every tomogram normalised (sorted). ``labelled``: stems with
    picks, in ``num_name.csv`` order (position = tomogram id). ``counts``: picks per
    labelled stem. ``written`` / ``skipped``: output files rewritten / found up to date.
    """

    base_path: Path
    config_path: Path
    tomograms: list[str] = field(default_factory=list)
    labelled: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def described_labelled(self) -> str:
        """``"2 with picks"``, or ``"1 with picks, 1 with an empty coordinate file"``."""
        empty = sum(1 for stem in self.labelled if not self.counts.get(stem))
        text = f"{len(self.labelled) - empty} with picks"
        return text + (f", {empty} with an empty coordinate file" if empty else "")

    def summary(self) -> str:
        """A few lines for the command line: what was found and where it went."""
        lines = [f"{len(self.tomograms)} tomograms normalised, {self.described_labelled()} "
                 f"({len(self.written)} files written, {len(self.skipped)} up to date)"]
        for index, stem in enumerate(self.labelled):
            lines.append(f"  id {index:>3}  {stem}  {self.counts.get(stem, 0)} particles")
        lines.append(f"outputs under {self.base_path}; config: {self.config_path}")
        return "\n".join(lines)


@dataclass
class _Tomo:
    """One tomogram of the dataset and, when it has them, its picks."""

    stem: str
    path: Path
    shape: tuple[int, int, int]
    voxel_size: Optional[float]
    coord_path: Optional[Path] = None
    picks: Optional[Picks] = None
    stats: Optional[VolumeStats] = None


@dataclass
class _Output:
    """A file the job makes, with what it depends on (for the up-to-date check)."""

    path: Path
    inputs: list[Path]
    settings: dict


# --------------------------------------------------------------------------------------------
# Reading num_name.csv
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# Finding and checking the inputs
# --------------------------------------------------------------------------------------------
def _files_by_stem(folder: Path, suffixes: tuple[str, ...], key: str, problems: list[str],
                   exclude: tuple[str, ...] = ()) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not is_tomogram_entry(p, suffixes) or p.name in exclude:
            continue
        if p.stem in found:
            problems.append(
                f"{folder}: both {found[p.stem].name} and {p.name} have the name "
                f"'{p.stem}' ({key}); keep one of them so each tomogram is paired with one "
                f"file.")
            continue
        found[p.stem] = p
    return found


def _raise_problems(problems: list[str]) -> None:
    if not problems:
        return
    listed = problems[:_MAX_LISTED]
    more = len(problems) - len(listed)
    lines = "\n".join(f"  - {p}" for p in listed)
    if more:
        lines += f"\n  ... and {more} more"
    if len(problems) == 1:
        raise DeepETPickerError(f"Preprocessing wrote nothing: {problems[0]}")
    raise DeepETPickerError(
        f"Preprocessing wrote nothing: {len(problems)} problems in the inputs:\n{lines}")


def _find_inputs(cfg: PreprocessConfig, report: Reporter, level=None) -> list[_Tomo]:
    """Pair tomograms with coordinate files and read/check them all; one error for all."""
    problems: list[str] = []
    tomo_dir, coord_dir = Path(cfg.tomo_path), Path(cfg.coord_path)
    tomo_files = _files_by_stem(tomo_dir, RAW_TOMOGRAM_SUFFIXES, "tomograms", problems)
    coord_files = _files_by_stem(coord_dir, COORD_FORMATS, "coordinate files", problems,
                                 exclude=(NUM_NAME,))
    if not tomo_files:
        problems.append(
            f"tomo_path '{tomo_dir}' holds no tomograms "
            f"({', '.join(RAW_TOMOGRAM_SUFFIXES)}). Put the tomograms there or correct "
            f"tomo_path.")
    for stem, path in coord_files.items():
        if stem not in tomo_files:
            problems.append(
                f"{path}: no tomogram named '{stem}' ({'/'.join(RAW_TOMOGRAM_SUFFIXES)}) in "
                f"tomo_path '{tomo_dir}'. Coordinate files are paired with tomograms by name; "
                f"rename the file to match its tomogram, add the tomogram, or move the file "
                f"away.")
    tomos: list[_Tomo] = []
    for k, (stem, path) in enumerate(tomo_files.items()):
        report("validate", k, len(tomo_files), item=stem, message=f"checking {path.name}")
        try:
            tomo = load_tomogram(path, mmap=True, level=level)
            item = _Tomo(stem, path, tomo.shape, tomo.voxel_size)
            del tomo
        except DeepETPickerError as err:
            problems.append(str(err))
            continue
        if stem in coord_files:
            item.coord_path = coord_files[stem]
            try:
                item.picks = read_picks(item.coord_path, shape=item.shape,
                                        num_cls=cfg.num_cls, tomo_name=stem,
                                        voxel_size=item.voxel_size)
            except DeepETPickerError as err:
                problems.append(str(err))
        tomos.append(item)
    data_dir = cfg.data_dir.resolve()
    if tomo_dir.resolve() == data_dir:
        problems.append(
            f"tomo_path '{tomo_dir}' is the folder the normalised tomograms are written to "
            f"({cfg.data_dir}); point tomo_path at the raw tomograms instead.")
    if cfg.num_cls > 127:
        problems.append(f"num_cls = {cfg.num_cls}: label files hold class ids up to 127; "
                        f"use at most 127 classes.")
    report("validate", len(tomo_files), len(tomo_files))
    _raise_problems(problems)
    return tomos


def _check_intensities(items: list[_Tomo], norm_type: str, report: Reporter,
                       level=None) -> None:
    """Statistics of the tomograms to normalise: NaN/Inf and constant volumes fail here."""
    problems: list[str] = []
    for item in items:
        try:
            data = load_tomogram(item.path, mmap=True, level=level).data
            item.stats = chunked_stats(data, report=report, name=str(item.path))
            del data
            normalization_scale(item.stats, norm_type, str(item.path))
        except DeepETPickerError as err:
            problems.append(str(err))
    _raise_problems(problems)


# --------------------------------------------------------------------------------------------
# Up-to-date bookkeeping
# --------------------------------------------------------------------------------------------
def _fingerprint(out: _Output) -> dict:
    """The settings and the input files (path, size, time) that make ``out``."""
    inputs = {}
    for p in out.inputs:
        inputs[str(p.resolve())] = file_stamp(p)[1:]    # a .zarr folder: all its chunks
    return {"settings": out.settings, "inputs": inputs}


def _tag(fingerprint: dict) -> str:
    """The manifest tag of an output made from ``fingerprint``."""
    text = json.dumps(fingerprint, sort_keys=True)
    return "preprocess " + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class _Record:
    """What preprocessing wrote under ``base_path`` and from what, kept by an
    :class:`OutputGuard` on ``base_path`` (its manifest)."""

    def __init__(self, base: Path) -> None:
        self.guard = OutputGuard(base, what="base_path folder", option="base_path in the config")
        self._take_over_legacy(base)

    def _take_over_legacy(self, base: Path) -> None:
        """Move the entries of an earlier version's ``.preprocess_manifest.json`` (output ->
        settings and inputs, the fingerprint of today) into the manifest, then remove it."""
        legacy = base / LEGACY_MANIFEST
        try:
            entries = json.loads(legacy.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for key, entry in (entries.items() if isinstance(entries, dict) else ()):
            path = Path(key) if Path(key).is_absolute() else base / key
            if path.is_file() and not self.guard.listed(path) and isinstance(entry, dict):
                self.guard.record([path], tag=_tag(entry))
        legacy.unlink(missing_ok=True)

    def up_to_date(self, out: _Output) -> bool:
        if not out.path.is_file():
            return False
        if not self.guard.written_by_us(out.path, tag=_tag(_fingerprint(out))):
            return False
        newest = max((file_stamp(p)[2] for p in out.inputs), default=0)
        return out.path.stat().st_mtime_ns >= newest

    def done(self, out: _Output) -> None:
        self.guard.record([out.path], tag=_tag(_fingerprint(out)))

    def knows(self, path: Path) -> bool:
        """Whether ``path`` was written by preprocessing (or another DeepETPicker command)
        into this base path."""
        return self.guard.listed(path)

    def note(self, path: Path) -> None:
        """Record a list or config file written by preprocessing (no inputs to track)."""
        if path.is_file():
            self.guard.record([path], tag=_tag({"settings": {"step": path.name}, "inputs": {}}))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _write_painted(path: Path, item: _Tomo, dtype, paint: Callable[[np.ndarray], None],
                   vmax: float) -> None:
    """Create an MRC of zeros under a temporary name, let ``paint`` fill it, rename it."""
    with atomic_path(path) as tmp:
        mrc = create_tomogram(tmp, item.shape, item.voxel_size, dtype, final_name=path)
        try:
            paint(mrc.data)
            header = mrc.header
            header.dmin, header.dmax = 0.0, float(vmax)
            header.dmean, header.rms = -1.0, -1.0  # MRC2014: not computed
            mrc.flush()
        finally:
            mrc.close()


def _label_diameters(cfg: PreprocessConfig) -> Union[int, list[int]]:
    """The weak-label diameter of every class, or the one for all classes."""
    return cfg.label_diameter if cfg.label_diameters is None else list(cfg.label_diameters)


def _label_settings(cfg: PreprocessConfig) -> dict:
    """The label settings among an output's settings: the diameters that paint them
    (``label_diameters`` when set; otherwise ``label_diameter``, as labels made before
    ``label_diameters`` existed were recorded, so they stay up to date)."""
    if cfg.label_diameters is not None:
        return {"label_type": cfg.label_type, "label_diameters": list(cfg.label_diameters)}
    return {"label_type": cfg.label_type, "label_diameter": cfg.label_diameter}


def _write_labels(cfg: PreprocessConfig, item: _Tomo, path: Path, report: Reporter) -> None:
    picks = item.picks
    _write_painted(
        path, item, np.int8,
        lambda arr: paint_labels(item.shape, picks, _label_diameters(cfg), cfg.label_type,
                                 report=lambda d, n: report("labels", d, n, item=item.stem),
                                 out=arr),
        vmax=float(picks.classes.max()) if len(picks) else 0.0)


def _write_occupancy(cfg: PreprocessConfig, item: _Tomo, path: Path, report: Reporter) -> None:
    picks = item.picks
    _write_painted(
        path, item, np.float32,
        lambda arr: paint_occupancy(item.shape, picks, cfg.ocp_diameter,
                                    report=lambda d, n: report("occupancy", d, n,
                                                               item=item.stem),
                                    out=arr),
        vmax=float(len(picks)))


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True


def _save_config_if_changed(cfg: PreprocessConfig, path: Path) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == format_config(cfg):
        return False
    save_config(cfg, path)
    return True


def _is_input_config(cfg: PreprocessConfig, path: Path) -> bool:
    source = getattr(cfg, "source", None)
    try:
        return bool(source) and Path(source).resolve() == path.resolve()
    except OSError:
        return False


def _check_outputs_are_ours(cfg: PreprocessConfig, tomos: list, manifest: _Record) -> None:
    """Refuse, before any work, to replace a file that preprocessing did not write here."""
    fmt = cfg.tomo_format
    planned = [cfg.data_dir / f"{t.stem}{fmt}" for t in tomos]
    for t in tomos:
        if t.picks is not None:
            copy = cfg.coords_dir / f"{t.stem}{cfg.coord_format}"
            if copy.resolve() != t.coord_path.resolve():
                planned.append(copy)
            planned += [cfg.label_dir / f"{t.stem}{fmt}", cfg.ocp_dir / f"{t.stem}{fmt}"]
    planned.append(cfg.coords_dir / NUM_NAME)
    config_path = cfg.configs_dir / f"{cfg.dset_name}.py"
    if not _is_input_config(cfg, config_path):
        planned.append(config_path)
    inputs = {p.resolve() for t in tomos for p in (t.path, t.coord_path) if p is not None}
    foreign = [p for p in planned if p.exists() and (p.resolve() in inputs
                                                     or not manifest.knows(p))]
    if config_path in foreign and written_by_save_config(config_path):
        foreign.remove(config_path)             # no hand edits in it to lose
    if foreign:
        raise DeepETPickerError(
            f"Nothing was written: preprocessing would replace {listed(foreign)}, which it did not "
            f"write under {cfg.base_path} (an input, your own file, or another program's "
            f"output). Choose another base_path in the config, or move those files away.")


def _level_setting(path: Path, level) -> dict:
    """The Zarr scale level among an output's settings (only for a Zarr input at a level
    other than the default, so outputs made before levels existed stay up to date)."""
    if level is None or str(level) == "0" or not is_zarr_path(path):
        return {}
    return {"zarr_level": str(level)}


def preprocess(config: PreprocessConfig, progress: Optional[ProgressCallback] = None,
               cancel: Optional[CancelToken] = None,
               zarr_level: Union[int, str, None] = None) -> PreprocessResult:
    """Run preprocessing for ``config``; see the module docstring for inputs and outputs.

    ``zarr_level``: the scale level read from OME-Zarr tomograms (default 0, the full
    resolution); picks are in that level's voxels.

    Progress events: ``validate`` (per tomogram), ``statistics`` and ``normalise`` (per slab
    of z-slices), ``labels`` and ``occupancy`` (every few hundred particles), and
    ``preprocess`` (per tomogram and step, ``item`` = the tomogram's stem). Cancelling
    stops at the next event; finished outputs stay, the one in progress is discarded.
    Raises :class:`DeepETPickerError`, having written nothing, when any input is wrong.
    """
    report = Reporter(progress, cancel)
    cfg = config
    cfg.validate(check_paths=True)
    base = Path(cfg.base_path)
    tomos = _find_inputs(cfg, report, zarr_level)
    manifest = _Record(base)
    if manifest.guard.stale_removed:
        report.log(stale_note(manifest.guard.stale_removed))
    fmt = cfg.tomo_format
    _check_outputs_are_ours(cfg, tomos, manifest)

    norm_out = {t.stem: _Output(cfg.data_dir / f"{t.stem}{fmt}", [t.path],
                                {"step": "normalise", "norm_type": cfg.norm_type,
                                 **_level_setting(t.path, zarr_level)})
                for t in tomos}
    _check_intensities([t for t in tomos if not manifest.up_to_date(norm_out[t.stem])],
                       cfg.norm_type, report, zarr_level)

    labelled = sorted((t for t in tomos if t.picks is not None), key=lambda t: t.stem)
    result = PreprocessResult(base_path=base,
                              config_path=cfg.configs_dir / f"{cfg.dset_name}.py",
                              tomograms=[t.stem for t in tomos],
                              labelled=[t.stem for t in labelled],
                              counts={t.stem: len(t.picks) for t in labelled})
    for t in labelled:
        if len(t.picks) == 0:
            report.log(f"{t.coord_path} holds no picks; the labels of {t.stem} are empty.")

    def run(out: _Output, make: Callable[[], object]) -> None:
        if manifest.up_to_date(out):
            result.skipped.append(out.path)
            return
        make()
        manifest.done(out)
        result.written.append(out.path)

    n = len(tomos)
    for k, t in enumerate(tomos):
        def step(what: str) -> None:
            report("preprocess", k, n, item=t.stem, message=f"{t.stem}: {what}")

        step("normalising")
        out = norm_out[t.stem]
        run(out, lambda: normalize_to_file(load_tomogram(t.path, mmap=True, level=zarr_level),
                                           out.path, cfg.norm_type, report=report,
                                           stats=t.stats))
        if t.picks is None:
            continue
        coords_copy = cfg.coords_dir / f"{t.stem}{cfg.coord_format}"
        if coords_copy.resolve() != t.coord_path.resolve():
            step("copying the coordinates")
            run(_Output(coords_copy, [t.coord_path], {"step": "coords", "num_cls": cfg.num_cls}),
                lambda: write_picks(coords_copy, t.picks))
        step("painting weak labels")
        out = _Output(cfg.label_dir / f"{t.stem}{fmt}", [t.path, t.coord_path],
                      {"step": "labels", **_label_settings(cfg),
                       **_level_setting(t.path, zarr_level)})
        run(out, lambda: _write_labels(cfg, t, out.path, report))
        step("painting occupancy")
        out = _Output(cfg.ocp_dir / f"{t.stem}{fmt}", [t.path, t.coord_path],
                      {"step": "occupancy", "ocp_type": cfg.ocp_type,
                       "ocp_diameter": list(cfg.ocp_diameter),
                       **_level_setting(t.path, zarr_level)})
        run(out, lambda: _write_occupancy(cfg, t, out.path, report))
    report("preprocess", n, n, message="writing the dataset list and the config")

    num_name = "".join(f"{len(t.picks)}\t{t.stem}\t{i}\n" for i, t in enumerate(labelled))
    path = cfg.coords_dir / NUM_NAME
    (result.written if _write_if_changed(path, num_name) else result.skipped).append(path)
    manifest.note(path)
    path = result.config_path
    if _is_input_config(cfg, path):
        result.skipped.append(path)             # the config being run is never rewritten
    else:
        (result.written if _save_config_if_changed(cfg, path) else result.skipped).append(path)
        manifest.note(path)
    report.log(f"Preprocessing finished: {n} tomogram(s), {result.described_labelled()}; "
               f"{len(result.written)} file(s) written, {len(result.skipped)} up to date.")
    return result


__all__ = ["PreprocessResult", "preprocess", "read_num_name", "NUM_NAME", "MANIFEST",
           "LEGACY_MANIFEST"]
