"""A simulated dataset on disk: tomograms, their picks, what was simulated and a preprocessing
config (:func:`simulate_dataset`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError, listed
from deepetpicker.progress import CancelToken, ProgressCallback, Reporter
from deepetpicker.simulate.shapes import ParticleClass, resolve_classes
from deepetpicker.simulate.tomogram import simulate_tomogram


def _json_lines(data: dict) -> str:
    """JSON with one top-level key per line and one line per list item (readable, compact)."""
    rows = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n  ".join(json.dumps(v) for v in value)
            rows.append(f" {json.dumps(key)}: [\n  {items}\n ]")
        else:
            rows.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(rows) + "\n}\n"


#: The built-in sample data: what ``deepetpicker simulate`` and the demo make with no options.
DEFAULT_DATASET = {"n": 4, "shape": (64, 192, 192), "classes": 3}


def label_diameters_for(specs: Sequence[ParticleClass]) -> tuple[int, Optional[list[int]]]:
    """``(label_diameter, label_diameters)`` for these classes: one weak label of about 60 %
    of the smallest particle, and one per class only where a class is much wider than that
    (:func:`deepetpicker.config.label_diameters_if_needed`)."""
    from deepetpicker.config import label_diameters_if_needed

    return label_diameters_if_needed([s.diameter for s in specs])


def label_diameter_for(specs: Sequence[ParticleClass]) -> int:
    """One weak-label diameter for all these classes: odd, about 60 % of the smallest
    particle."""
    return label_diameters_for(specs)[0]


def simulate_dataset(out_dir: Union[str, Path] = "sample_data", n: Optional[int] = None,
                     shape: Optional[Sequence[int]] = None,
                     classes: Union[int, Sequence[Any], None] = None, seed: int = 0,
                     n_particles: Optional[int] = None, snr: float = 0.1,
                     defocus_um: Optional[float] = None, voxel_size: float = 10.0,
                     dset_name: str = "simulated",
                     progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None,
                     reuse: bool = False, **options) -> Path:
    """Simulate ``n`` tomograms into ``out_dir`` and return the path of a preprocess config.

    A folder that already holds tomograms, pick files or any of the files to write is
    refused before anything is simulated (old and new data would mix). With ``reuse``, a
    folder holding exactly the dataset these arguments make (recorded in ``particles.json``,
    every file present) is kept as it is and its config returned.

    Writes ``raw/sim_<i>.mrc`` (with the voxel size) and ``raw/sim_<i>.coords`` (``class x y
    z``, 0-based voxel centres), ``particles.json`` (classes with names and diameters, and per
    tomogram its settings and distractors), and ``configs/<dset_name>.py``: a preprocess config
    whose ``base_path`` is ``out_dir``, with one occupancy diameter per class and the weak-label
    diameters of :func:`label_diameters_for` (one for all classes, and one per class only where
    a class is much wider than it). Left as None, ``n``, ``shape``
    and ``classes`` take :data:`DEFAULT_DATASET`; each tomogram's defocus is drawn from 3-5
    micrometres unless ``defocus_um`` is given. Other ``options`` go to
    :func:`simulate_tomogram`.
    Same arguments, same files.
    """
    from deepetpicker.config import PreprocessConfig, save_config
    from deepetpicker.io.atomic import write_text_atomic

    n = DEFAULT_DATASET["n"] if n is None else n
    shape = DEFAULT_DATASET["shape"] if shape is None else tuple(shape)
    classes = DEFAULT_DATASET["classes"] if classes is None else classes
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepETPickerError(f"n={n!r}: give the number of tomograms to simulate (1 or more).")
    from deepetpicker.io.outputs import check_output_folder

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise DeepETPickerError(f"{out} is a file; give a folder for the simulated dataset.")
    specs = resolve_classes(classes)
    raw = out / "raw"
    recipe = _recipe(n, shape, seed, specs, n_particles, snr, defocus_um, voxel_size, dset_name,
                     options)
    planned = _planned_files(out, n, dset_name)
    if reuse and _holds_recipe(out, planned, recipe):
        Reporter(progress, cancel).log(f"{out} already holds this simulated dataset; "
                                       f"kept as it is")
        return planned[1]
    _refuse_existing_dataset(out, planned)
    check_output_folder(out, "dataset folder", "OUT")
    report = Reporter(progress, cancel)
    summary = _simulate_into(raw, n, shape, specs, seed, n_particles, snr, defocus_um,
                             voxel_size, recipe, report, options)
    write_text_atomic(out / "particles.json", _json_lines(summary))
    label_diameter, label_diameters = label_diameters_for(specs)
    cfg = PreprocessConfig(
        dset_name=dset_name, base_path=str(out), coord_path=str(raw), coord_format=".coords",
        tomo_path=str(raw), tomo_format=".mrc", num_cls=len(specs), label_type="gaussian",
        label_diameter=label_diameter, label_diameters=label_diameters,
        ocp_type="sphere",
        ocp_diameter=[int(round(s.diameter)) for s in specs], norm_type="standardization")
    path = save_config(cfg, planned[1])
    report("simulate", int(n), int(n), message=f"simulated {n} tomograms in {out}")
    return path


def _recipe(n: int, shape: tuple, seed: int, specs: list[ParticleClass],
            n_particles: Optional[int], snr: float, defocus_um: Optional[float],
            voxel_size: float, dset_name: str, options: dict) -> dict:
    """The arguments that make a dataset, as ``particles.json`` records them (JSON values)."""
    recipe = {"n": int(n), "shape": [int(v) for v in shape], "seed": int(seed),
              "classes": [asdict(c) for c in specs], "n_particles": n_particles,
              "snr": float(snr), "defocus_um": defocus_um, "voxel_size": float(voxel_size),
              "dset_name": dset_name, "options": options}
    return json.loads(json.dumps(recipe, default=str))


def _planned_files(out: Path, n: int, dset_name: str) -> list[Path]:
    """The files a dataset of ``n`` tomograms consists of: ``particles.json``, the config
    (second), then each tomogram and its picks."""
    from deepetpicker.io.dataset import CONFIGS_DIR

    raw = out / "raw"
    names = [f"sim_{i:02d}" for i in range(int(n))]
    return [out / "particles.json", out / CONFIGS_DIR / f"{dset_name}.py",
            *(raw / f"{name}{suffix}" for name in names for suffix in (".mrc", ".coords"))]


def _holds_recipe(out: Path, planned: list[Path], recipe: dict) -> bool:
    """Whether every planned file is there and ``particles.json`` records this recipe."""
    if not all(p.is_file() for p in planned):
        return False
    try:
        recorded = json.loads((out / "particles.json").read_text()).get("recipe")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded == recipe


def _refuse_existing_dataset(out: Path, planned: list[Path]) -> None:
    """Refuse a folder holding any planned file, or tomograms or picks in ``raw/``."""
    from deepetpicker.io.tomogram import TOMOGRAM_SUFFIXES

    raw = out / "raw"
    found = [p for p in planned if p.exists()]
    if raw.is_dir():
        found += [p for p in sorted(raw.iterdir()) if p.suffix.lower() in
                  (*TOMOGRAM_SUFFIXES, ".coords", ".txt", ".csv") and p not in found]
    if found:
        raise DeepETPickerError(
            f"{out} already holds a dataset ({listed(found, limit=4)}); simulating into it would "
            f"mix old and new tomograms. Choose an empty or new folder, or remove those files "
            f"first.")


def _simulate_into(raw: Path, n: int, shape: tuple, specs: list[ParticleClass], seed: int,
                   n_particles: Optional[int], snr: float, defocus_um: Optional[float],
                   voxel_size: float, recipe: dict, report: Reporter, options: dict) -> dict:
    """Simulate the ``n`` tomograms into ``raw/`` (each with its picks); the summary that
    ``particles.json`` holds."""
    from deepetpicker.io.picks import write_picks
    from deepetpicker.io.tomogram import write_tomogram

    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(int(n))]
    summary: dict = {
        "recipe": recipe, "voxel_size": float(voxel_size), "seed": int(seed),
        "contrast": "negative (dense matter is dark)",
        "classes": [{"id": i + 1, **asdict(s)} for i, s in enumerate(specs)],
        "tomograms": [],
    }
    for i in range(int(n)):
        name = f"sim_{i:02d}"
        report("simulate", i, int(n), item=name, message=f"simulating {name}")
        df = float(rng.uniform(3.0, 5.0)) if defocus_um is None else float(defocus_um)
        volume, picks, info = simulate_tomogram(
            shape, n_particles=n_particles, classes=specs, seed=seeds[i], snr=snr,
            defocus_um=df, voxel_size=voxel_size, name=name, **options)
        write_tomogram(raw / f"{name}.mrc", volume, voxel_size=voxel_size)
        write_picks(raw / f"{name}.coords", picks)
        summary["tomograms"].append({
            "name": name, "shape": list(volume.shape), "seed": seeds[i],
            "n_particles": len(picks), "counts": {str(k): v for k, v in
                                                  picks.counts(len(specs)).items()},
            "defocus_um": round(df, 3), "snr": float(snr), "slab": info["slab"],
            "gold": info["gold"], "vesicles": info["vesicles"],
        })
    return summary
