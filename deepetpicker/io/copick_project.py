"""copick projects, read and written with copick's own API (the ``copick`` extra).

A copick project is a config JSON naming the pickable objects (name, ``label``, ``radius`` in
Angstrom, ``is_particle``) and where its runs are stored; each run holds tomograms per voxel
spacing and tomogram type (OME-Zarr) and picks per object, user and session (Angstrom). This
module opens projects, finds a run's tomogram (a local ``.zarr`` folder where the project is
on this computer's file system, otherwise the array read chunk by chunk), reads a run's picks
as a :class:`~deepetpicker.io.picks.Picks` table in voxels and writes a table back as one
picks file per object. Units are converted by :mod:`deepetpicker.io.formats`. ``copick`` is
imported only when a function needs it; without it a :class:`DeepETPickerError` says how to
install it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.types import PathLike

INSTALL_HINT = "install the copick extra: pip install 'deepetpicker[copick]'"


def require_copick() -> Any:
    """The ``copick`` module, or a :class:`DeepETPickerError` saying how to install it."""
    try:
        import copick
    except ImportError as exc:
        raise DeepETPickerError(f"Reading and writing copick projects needs the copick "
                                f"package, which is not installed ({exc}); {INSTALL_HINT}"
                                ) from None
    return copick


def open_project(config: PathLike) -> Any:
    """The copick root of the project whose config JSON is ``config`` (any project copick can
    open: file system, CryoET Data Portal, ...)."""
    copick = require_copick()
    path = Path(config).expanduser()
    if not path.is_file():
        raise DeepETPickerError(f"copick config {path} not found. Give the project's config "
                                f"JSON file (the one naming pickable_objects and overlay_root).")
    try:
        return copick.from_file(str(path))
    except Exception as exc:       # JSON and pydantic errors, unknown config types
        raise DeepETPickerError(f"copick cannot open the project {path}: {exc}. Check the "
                                f"config JSON against copick's documentation.") from exc


@dataclass(frozen=True)
class ProjectObject:
    """A pickable particle of a project: copick ``name``, ``label`` (the class id) and
    ``radius`` in Angstrom (None when the config gives none)."""

    name: str
    label: int
    radius: Optional[float]

    def diameter(self, voxel_spacing: float) -> Optional[float]:
        """The particle's diameter in voxels at ``voxel_spacing`` Angstrom."""
        return None if not self.radius else 2.0 * float(self.radius) / float(voxel_spacing)


def particle_objects(root: Any, source: str = "the copick config") -> list[ProjectObject]:
    """The project's pickable objects that are particles and have a label, by label.

    Raises when two particles share a label (their picks could not be told apart).
    """
    found: dict[int, ProjectObject] = {}
    for obj in root.pickable_objects:
        if not obj.is_particle or obj.label is None:
            continue
        item = ProjectObject(str(obj.name), int(obj.label),
                             None if obj.radius is None else float(obj.radius))
        if item.label in found:
            raise DeepETPickerError(
                f"{source}: the particles {found[item.label].name!r} and {item.name!r} both "
                f"have label {item.label}; give each pickable object its own label.")
        found[item.label] = item
    return [found[k] for k in sorted(found)]


def objects_as_classes(objects: Sequence[ProjectObject],
                       source: str = "the copick config") -> list[ProjectObject]:
    """The particles as DeepETPicker classes 1..K: class k is the particle with label k.

    Raises unless the labels are exactly 1..K (class ids are consecutive from 1).
    """
    if not objects:
        raise DeepETPickerError(f"{source} has no pickable object with is_particle true and a "
                                f"label; there is nothing to pick.")
    labels = [o.label for o in objects]
    if labels != list(range(1, len(labels) + 1)):
        listed = ", ".join(f"{o.name}={o.label}" for o in objects)
        raise DeepETPickerError(
            f"{source}: the particles' labels are {listed}; DeepETPicker's class ids are the "
            f"labels and must run 1, 2, ... {len(labels)} without gaps. Renumber the labels "
            f"of the particles in the config.")
    return list(objects)


def class_objects(num_cls: int, class_names: Optional[Sequence[str]],
                  objects: Sequence[ProjectObject],
                  source: str = "the copick config") -> dict[int, str]:
    """Class id -> object name for picks of a network with ``num_cls`` classes.

    A class goes to the particle named like the class (the checkpoint's class names), else to
    the particle whose label is the class id. Raises for a class with no particle, or two
    classes that would go to one particle.
    """
    by_name = {o.name: o for o in objects}
    by_label = {o.label: o for o in objects}
    names = list(class_names or [])
    mapping: dict[int, str] = {}
    missing = []
    for k in range(1, int(num_cls) + 1):
        named = names[k - 1] if k - 1 < len(names) else None
        target = by_name.get(named) if named else None
        target = target or by_label.get(k)
        if target is None:
            missing.append(f"class {k}" + (f" ({named})" if named else ""))
        else:
            mapping[k] = target.name
    if missing:
        known = ", ".join(f"{o.name} (label {o.label})" for o in objects) or "none"
        raise DeepETPickerError(
            f"{source} has no particle for {', '.join(missing)} of the network: a class goes "
            f"to the particle of the same name or whose label is the class id. Its particles: "
            f"{known}. Add the object to the config or set its label.")
    taken: dict[str, int] = {}
    for k, name in mapping.items():
        if name in taken:
            raise DeepETPickerError(
                f"Classes {taken[name]} and {k} of the network would both be written as "
                f"{name!r} in {source}; give the particles labels 1..{num_cls} in class order.")
        taken[name] = k
    return mapping


def project_runs(root: Any, names: Optional[Iterable[str]] = None,
                 source: str = "the copick project") -> list:
    """The project's runs, or those named (each must exist), in the order given."""
    runs = list(root.runs)
    if not names:
        return runs
    by_name = {r.name: r for r in runs}
    names = list(dict.fromkeys(str(n) for n in names))
    unknown = [n for n in names if n not in by_name]
    if unknown:
        shown = ", ".join(sorted(by_name)[:10]) + (" ..." if len(by_name) > 10 else "")
        raise DeepETPickerError(f"{source} has no run named {', '.join(unknown)}; its runs are "
                                f"{shown or 'none'}.")
    return [by_name[n] for n in names]


def run_tomogram(run: Any, tomo_type: str, voxel_spacing: float) -> Any:
    """The copick tomogram of ``run`` at ``voxel_spacing`` of ``tomo_type`` (the first, where
    a run holds several of that type), or None."""
    spacing = run.get_voxel_spacing(float(voxel_spacing))
    if spacing is None:
        return None
    found = [t for t in spacing.tomograms if t.tomo_type == tomo_type]
    return found[0] if found else None


def available_tomograms(run: Any) -> list[str]:
    """``"<tomo_type> at <voxel spacing> A"`` for every tomogram of ``run`` (for messages)."""
    return [f"{t.tomo_type} at {vs.voxel_size:g} A"
            for vs in run.voxel_spacings for t in vs.tomograms]


def local_zarr_path(tomogram: Any) -> Optional[Path]:
    """The tomogram's ``.zarr`` folder when the project lies on this computer's file system
    (copick's ``local``/``file`` storage), else None (read it with :func:`tomogram_array`)."""
    try:
        store = tomogram.zarr()
    except Exception:              # a storage that has no zarr store here
        return None
    fs = getattr(store, "fs", None)
    protocol = getattr(fs, "protocol", None)
    protocols = {protocol} if isinstance(protocol, str) else set(protocol or ())
    if not protocols & {"file", "local"}:
        return None
    path = Path(str(getattr(store, "path", "")))
    return path if path.is_dir() else None


def tomogram_array(tomogram: Any, level: str = "0") -> Any:
    """The tomogram's scale ``level`` (default the full resolution) as a read-only array that
    decodes only the chunks read (:class:`~deepetpicker.io.zarr_tomogram.ChunkCache`)."""
    import zarr

    from deepetpicker.io.zarr_tomogram import ChunkCache

    try:
        array = zarr.open(tomogram.zarr(), mode="r")[level]
    except Exception as exc:
        raise DeepETPickerError(f"Cannot read the copick tomogram {tomogram.tomo_type!r} of "
                                f"run {tomogram.voxel_spacing.run.name!r}: {exc}") from exc
    return ChunkCache(array)


def copy_tomogram(tomogram: Any, path: PathLike, voxel_size: float,
                  report: Optional[Callable[..., Any]] = None) -> Path:
    """Write the copick ``tomogram`` to the MRC file ``path`` slab by slab (as many z-slices as
    a chunk holds at a time, never the whole volume in memory), atomically."""
    from deepetpicker.io.atomic import atomic_path
    from deepetpicker.io.tomogram import create_tomogram

    data = tomogram_array(tomogram)
    path = Path(path)
    depth = max(1, int(data.chunks[0]))
    with atomic_path(path) as tmp:
        mrc = create_tomogram(tmp, data.shape, voxel_size, np.float32, final_name=Path(path))
        try:
            for z0 in range(0, data.shape[0], depth):
                if report is not None:
                    report("copy", z0, data.shape[0], item=path.stem)
                mrc.data[z0:z0 + depth] = data[z0:z0 + depth]
            mrc.update_header_stats()
            mrc.flush()
        finally:
            mrc.close()
    return path


def _centres_angstrom(picks) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3)`` particle centres in Angstrom (location plus the transform's shift, as copick
    places a particle) and their ``(N,)`` scores (1 where a point has none)."""
    points = list(picks.points or [])
    xyz = np.zeros((len(points), 3))
    scores = np.ones(len(points))
    for i, point in enumerate(points):
        shift = np.asarray(point.transformation_ or np.eye(4), dtype=float)[:3, 3]
        xyz[i] = [point.location.x, point.location.y, point.location.z]
        xyz[i] += shift
        if point.score is not None:
            scores[i] = float(point.score)
    return xyz, scores


def read_run_picks(run: Any, objects: Sequence[ProjectObject], voxel_spacing: float,
                   user_id: Optional[str] = None, session_id: Optional[str] = None) -> Picks:
    """The picks of ``objects`` in ``run`` by ``user_id`` (and ``session_id``, or every
    session) as one table: class id = the object's label, positions in 0-based voxels at
    ``voxel_spacing`` Angstrom, with the points' scores."""
    from deepetpicker.io.formats import from_angstrom

    classes, xyz, scores = [], [], []
    for obj in objects:
        for picks in run.get_picks(object_name=obj.name, user_id=user_id,
                                   session_id=session_id):
            centres, values = _centres_angstrom(picks)
            classes.append(np.full(len(centres), obj.label, dtype=np.int64))
            xyz.append(from_angstrom(centres, voxel_spacing))
            scores.append(values)
    if not classes:
        return Picks.empty(run.name, float(voxel_spacing), with_scores=True)
    return Picks(np.concatenate(classes), np.concatenate(xyz), np.concatenate(scores),
                 tomo_name=run.name, voxel_size=float(voxel_spacing))


def existing_picks(run: Any, object_names: Iterable[str], user_id: str,
                   session_id: str) -> list[str]:
    """``"<run>/<user>_<session>_<object>"`` for each of those picks already in ``run``."""
    return [f"{run.name}/{user_id}_{session_id}_{name}" for name in object_names
            if run.get_picks(object_name=name, user_id=user_id, session_id=session_id)]


def write_run_picks(run: Any, picks: Picks, objects: dict[int, str], voxel_spacing: float,
                    user_id: str, session_id: str) -> dict[str, int]:
    """Store ``picks`` (0-based voxels at ``voxel_spacing``) in ``run`` as copick picks of
    ``user_id`` and ``session_id``: one picks file per object of ``objects`` (class id ->
    object name), holding that class's points in Angstrom with their scores (an object with
    no picks gets an empty file). Replaces picks of the same user and session. Returns the
    points written per object."""
    from copick.models import CopickLocation, CopickPoint

    from deepetpicker.io.formats import to_angstrom

    scores = picks.scores if picks.scores is not None else np.ones(len(picks))
    written = {}
    for cls, name in objects.items():
        chosen = picks.classes == cls
        centres = to_angstrom(picks.xyz[chosen], voxel_spacing)
        points = [CopickPoint(location=CopickLocation(x=float(x), y=float(y), z=float(z)),
                              score=float(s))
                  for (x, y, z), s in zip(centres, scores[chosen])]
        try:
            target = run.new_picks(name, session_id, user_id, exist_ok=True)
        except ValueError as exc:
            raise DeepETPickerError(f"copick refused picks of {name!r} in run {run.name!r}: "
                                    f"{exc}") from exc
        target.meta.voxel_spacing = float(voxel_spacing)
        target.meta.trust_orientation = False     # positions only, no orientations
        target.points = points
        target.store()
        written[name] = len(points)
    return written


def copick_name(text: Any) -> str:
    """``text`` as copick accepts it for a user or session id; raises when copick would change
    it (so picks are never stored under a name the user did not give)."""
    from deepetpicker.io.formats import copick_name_problem, copick_safe_name

    text = str(text)
    problem = copick_name_problem(text)
    if problem:
        raise DeepETPickerError(f"{text!r} cannot be a copick user or session id: it {problem}. "
                                f"Use e.g. {copick_safe_name(text) or 'deepetpicker'!r}.")
    return text


@dataclass(frozen=True)
class RunContents:
    """What one run of a project holds: its tomograms as ``(tomo_type, voxel spacing)`` and
    the ``(user_id, session_id)`` of its picks, each sorted (to offer as choices)."""

    name: str
    tomograms: list[tuple[str, float]]
    pick_owners: list[tuple[str, str]]


def run_contents(run: Any) -> RunContents:
    """The tomograms and pick owners of ``run`` (see :class:`RunContents`)."""
    tomograms = sorted({(str(t.tomo_type), float(vs.voxel_size))
                        for vs in run.voxel_spacings for t in vs.tomograms})
    owners = sorted({(str(p.user_id), str(p.session_id)) for p in run.picks})
    return RunContents(str(run.name), tomograms, owners)


def run_tomogram_path(run: Any, tomo_type: str, voxel_spacing: float,
                      source: str = "the copick project") -> Path:
    """The local ``.zarr`` folder of the ``tomo_type`` tomogram of ``run`` at
    ``voxel_spacing`` Angstrom (what a viewer opens in place).

    Raises when the run has no such tomogram (naming those it has) or when the project is not
    on this computer's file system.
    """
    tomogram = run_tomogram(run, tomo_type, voxel_spacing)
    if tomogram is None:
        have = ", ".join(available_tomograms(run)) or "none"
        raise DeepETPickerError(
            f"Run {run.name!r} of {source} has no {tomo_type!r} tomogram at "
            f"{float(voxel_spacing):g} A (it has: {have}). Choose one of those tomogram types "
            f"and voxel spacings.")
    path = local_zarr_path(tomogram)
    if path is None:
        raise DeepETPickerError(
            f"The {tomo_type!r} tomogram of run {run.name!r} in {source} is not on this "
            f"computer's file system. Import the project first (deepetpicker copick import "
            f"copies it to raw/{run.name}.mrc) and open that file.")
    return path


@dataclass(frozen=True)
class ProjectRun:
    """A run opened for viewing: its tomogram's local ``.zarr`` folder, the picks of the
    chosen particles (class id = the object's label, 0-based voxels) and those particles,
    with the project's ``config`` and the ``voxel_spacing`` read."""

    name: str
    tomogram: Path
    picks: Picks
    objects: list[ProjectObject]
    voxel_spacing: float
    config: Path


def open_run(config: PathLike, run_name: str, tomo_type: str, voxel_spacing: float,
             user_id: Optional[str] = None, session_id: Optional[str] = None,
             object_names: Optional[Sequence[str]] = None) -> ProjectRun:
    """Open run ``run_name`` of the project ``config``: the path of its ``tomo_type``
    tomogram at ``voxel_spacing`` Angstrom and the picks of ``object_names`` (default every
    particle) by ``user_id`` and ``session_id`` (default any) in voxels of that spacing.

    Raises for an unknown run, tomogram or object, and for a tomogram that is not on this
    computer's file system (see :func:`run_tomogram_path`).
    """
    voxel_spacing = float(voxel_spacing)
    if not voxel_spacing > 0:
        raise DeepETPickerError(f"Voxel spacing {voxel_spacing:g}: give the spacing of the "
                                f"tomogram in Angstrom, a positive number such as 10.012.")
    root = open_project(config)
    source = str(config)
    run = project_runs(root, [run_name], source)[0]
    path = run_tomogram_path(run, tomo_type, voxel_spacing, source)
    objects = particle_objects(root, source)
    if object_names:
        by_name = {o.name: o for o in objects}
        unknown = [n for n in object_names if n not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none"
            raise DeepETPickerError(f"{source} has no particle named {', '.join(unknown)}; "
                                    f"its particles are {known}.")
        objects = [by_name[n] for n in object_names]
    picks = read_run_picks(run, objects, voxel_spacing, user_id or None, session_id or None)
    return ProjectRun(str(run.name), path, picks, list(objects), voxel_spacing, Path(config))


__all__ = ["INSTALL_HINT", "ProjectObject", "ProjectRun", "RunContents", "available_tomograms",
           "class_objects", "copick_name", "copy_tomogram", "existing_picks",
           "local_zarr_path", "objects_as_classes", "open_project", "open_run",
           "particle_objects", "project_runs", "read_run_picks", "require_copick",
           "run_contents", "run_tomogram", "run_tomogram_path", "tomogram_array",
           "write_run_picks"]
