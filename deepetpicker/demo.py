"""The end-to-end demo on built-in simulated data: simulate -> preprocess -> train -> predict ->
evaluate, with progress, ending with the F1 table and where the outputs are.

Four simulated tomograms: the network trains on the first two and is validated on the third;
the fourth is held out. The held-out tomogram takes no part in training or validation, and the
network picks its particles from the raw (unnormalised) reconstruction, as it would for a new
tomogram of a user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from deepetpicker.config import NETWORK_PRESETS
from deepetpicker.errors import DeepETPickerError
from deepetpicker.progress import CancelToken, Reporter

#: The quick CPU demo (light network, a few minutes on two cores) and ``--full`` (the paper's
#: network and schedule, for a GPU workstation).
QUICK = dict(max_epochs=40, f_maps=list(NETWORK_PRESETS["light"]), patch_size=40,
             padding_size=6, batch_size=8, lr=3e-3)
FULL = dict(max_epochs=60, f_maps=list(NETWORK_PRESETS["default"]), patch_size=72, padding_size=12,
            batch_size=16, lr=1e-3)
#: ``--full`` simulates tomograms deep enough for its 72-voxel patches.
FULL_SHAPE = (96, 256, 256)


@dataclass
class DemoResult:
    """Where the demo put things, and its evaluation."""

    out_dir: Path
    train_config: Path
    weights: Path
    picks: Path
    evaluation: object          # deepetpicker.evaluate.FolderResult
    slices_png: Optional[Path]
    pr_png: Optional[Path]

    @property
    def f1(self) -> float:
        """F1 of the held-out tomogram's picks (SHREC occupancy rule)."""
        return float(self.evaluation.occupancy.f1)

    def summary(self) -> str:
        ev = self.evaluation
        lines = [ev.summary(), "",
                 f"picks:            {self.picks}",
                 f"weights:          {self.weights}",
                 f"training config:  {self.train_config}",
                 f"PR curve:         {self.pr_png or (ev.curve.csv if ev.curve else None)}",
                 f"picks on slices:  {self.slices_png}",
                 "",
                 f"Look at them in the desktop application:\n"
                 f"  deepetpicker gui {self.train_config}"]
        return "\n".join(lines)


def run_demo(out_dir: Union[str, Path] = "demo_output", epochs: Optional[int] = None,
             device: str = "auto", full: bool = False, progress: Optional[Callable] = None,
             cancel: Optional[CancelToken] = None, seed: int = 0,
             shape: Optional[Sequence[int]] = None, n_particles: Optional[int] = None,
             **train_overrides) -> DemoResult:
    """Run the whole workflow under ``out_dir`` and return where things are.

    ``epochs`` overrides the number of training epochs; ``full`` trains the paper's network
    (for a GPU); ``shape`` and ``n_particles`` change the simulated tomograms (tests use small
    ones); other keyword arguments override training settings (e.g. ``patch_size``).
    """
    from deepetpicker.config import TrainConfig, load_preprocess_config, save_config
    from deepetpicker.evaluate import evaluate_folder
    from deepetpicker.io.picks import read_picks
    from deepetpicker.io.tomogram import load_tomogram
    from deepetpicker.predict.job import predict
    from deepetpicker.preprocess.job import preprocess
    from deepetpicker.render import render_picks_png
    from deepetpicker.runtime import resolve_device
    from deepetpicker.simulate import simulate_dataset
    from deepetpicker.train.job import train

    out_dir = Path(out_dir).expanduser().resolve()
    report = Reporter(progress, cancel)
    settings = dict(FULL if full else QUICK)
    if epochs is not None:
        if int(epochs) < 1:
            raise DeepETPickerError(f"--epochs {epochs}: train for at least one epoch.")
        settings["max_epochs"] = int(epochs)
    settings.update(train_overrides)
    resolve_device(device)          # a device that cannot work fails now, not after minutes

    report.log(f"1/5 simulating 4 tomograms in {out_dir / 'sample_data'}")
    if shape is None and full:
        shape = FULL_SHAPE
    sim_options = {k: v for k, v in {"shape": shape, "n_particles": n_particles}.items()
                   if v is not None}
    pre_path = simulate_dataset(out_dir / "sample_data", n=4, seed=seed, progress=progress,
                                cancel=cancel, reuse=True, **sim_options)
    pre = load_preprocess_config(pre_path)

    report.log("2/5 preprocessing: normalisation, weak labels, occupancy maps")
    prep = preprocess(pre, progress=progress, cancel=cancel)
    stems = prep.labelled
    held_out = stems[3]
    cfg = TrainConfig.from_preprocess(pre, [0, 1], [2], dset_name="demo", device=device,
                                      seed=seed, **settings)
    train_cfg_path = pre.configs_dir / "demo_train.py"
    save_config(cfg, train_cfg_path)

    report.log(f"3/5 training the {'full' if full else 'light'} network for {cfg.max_epochs} "
               f"epochs on {stems[0]} and {stems[1]}, validating on {stems[2]}")
    trained = train(cfg, progress=progress, cancel=cancel, device=device)
    weights = trained.best_checkpoint or trained.last_checkpoint

    raw = Path(pre.tomo_path) / f"{held_out}{pre.tomo_format}"
    report.log(f"4/5 picking particles in the held-out tomogram {raw.name} (raw, never seen "
               f"in training)")
    pred_dir = out_dir / "predictions"
    predicted = predict(cfg, weights, tomograms=[raw], out=pred_dir, formats=("star",),
                        progress=progress, cancel=cancel, device=device, overwrite=True)
    picks_path = predicted.outputs[0]

    report.log("5/5 evaluating against the simulated ground truth")
    truth_path = Path(pre.coord_path) / f"{held_out}{pre.coord_format}"
    eval_dir = out_dir / "evaluation"
    evaluation = evaluate_folder(picks_path, truth_path, occupancy_dir=pre.ocp_dir,
                                 diameters=list(cfg.ocp_diameter), out=eval_dir, dilate=True,
                                 overwrite=True, progress=progress, cancel=cancel)
    tomo = load_tomogram(raw)
    picks = read_picks(picks_path)
    truth = read_picks(truth_path)
    slices_png = render_picks_png(
        tomo.data, picks, eval_dir / "picks_on_slices.png", truth=truth,
        diameters=cfg.ocp_diameter,
        title=f"{held_out}: picks (solid) and truth (dashed)")
    return DemoResult(out_dir=out_dir, train_config=train_cfg_path, weights=Path(weights),
                      picks=Path(picks_path), evaluation=evaluation, slices_png=slices_png,
                      pr_png=evaluation.curve.png if evaluation.curve else None)
