"""Screenshots of the four tabs with a real dataset loaded, for the documentation.

Make the data first (a simulated dataset, preprocessed, with a trained light model)::

    deepetpicker simulate DATA
    deepetpicker preprocess DATA/configs/simulated.py
    deepetpicker train-config DATA/configs/simulated.py --train-ids 0-2 --val-ids 3 \\
        -o DATA/configs/simulated_train.py --light --patch-size 40 --pad-size 8 --device cpu
    deepetpicker train DATA/configs/simulated_train.py

then, on a machine without a display::

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/gui_screenshots.py DATA

The window runs preprocessing (up to date, so quick) and inference on the validation tomogram
through its own job panels, shows the training curves from the run's log and the predicted
picks in the viewer, and saves ``docs/screenshots/<tab>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHOTS = ("preprocessing", "training", "inference", "visualization")


def wait_for(app, panel, timeout_s: float = 600.0) -> None:
    """Let the window run until the panel's job has ended."""
    deadline = time.monotonic() + timeout_s
    while panel.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()
    if panel.running or panel.last_outcome != "finished":
        raise SystemExit(f"{panel.title} did not finish ({panel.last_outcome}); see its log:\n"
                         + panel.log_view.toPlainText()[-2000:])


def settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the simulated dataset folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--tomogram", default="sim_03", help="tomogram to pick and show")
    parser.add_argument("--size", default="1500x940", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args(argv)

    from PyQt5.QtWidgets import QApplication

    from deepetpicker.config import load_train_config
    from gui.main_window import MainWindow

    data = args.data.resolve()
    pre_config = data / "configs" / "simulated.py"
    train_config = data / "configs" / "simulated_train.py"
    cfg = load_train_config(train_config)
    weights = cfg.run_dir / "best.pth"
    if not weights.is_file():
        weights = cfg.run_dir / "last.pth"
    tomogram = data / "raw" / f"{args.tomogram}.mrc"
    for path in (pre_config, train_config, weights, tomogram):
        if not path.is_file():
            raise SystemExit(f"{path} is missing; make the data first (see --help).")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DeepETPicker")
    window = MainWindow()
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    settle(app)

    # Preprocessing: the dataset's config, run (its outputs are up to date), tomograms listed
    tabs = window.tabs
    pre = window.preprocess_tab
    tabs.setCurrentWidget(pre)
    pre.load_config(pre_config)
    pre.run()
    wait_for(app, pre.panel)
    shots = {"preprocessing": pre}

    # Training: the run's config, its dataset table and the curves from its metrics log
    train = window.train_tab
    train.load_config(train_config)
    shots["training"] = train

    # Inference: the trained weights on the validation tomogram, results listed
    infer = window.infer_tab
    infer.set_inputs(train_config, weights)
    infer.add_tomograms([str(tomogram)])
    infer.out_dir.setText(str(data / "predictions"))
    infer.run()
    wait_for(app, infer.panel)
    shots["inference"] = infer

    # Visualization: the predicted picks on the tomogram, crosshair on a well-scored pick
    infer.results_table.selectRow(0)
    infer.show_selected()
    viewer = window.viewer_tab
    viewer.sigma.setValue(1.0)  # a light Gaussian filter, as one looks at noisy tomograms
    model = viewer.model
    if len(model):
        # the crosshair on a confident pick in the slice with the most picks around it
        z = model.xyz[:, 2]
        crowd = (abs(z[:, None] - z[None, :]) < 4).sum(axis=1)
        best = int(max(range(len(model)), key=lambda i: (crowd[i], model.scores[i])))
        viewer.views.select_pick(best, jump=True)
        viewer.table.show_pick(best)
    shots["visualization"] = viewer

    args.out.mkdir(parents=True, exist_ok=True)
    for name in SHOTS:
        tabs.setCurrentWidget(shots[name])
        settle(app, 0.5)
        path = args.out / f"{name}.png"
        window.grab().save(str(path))
        print(f"{path}  ({path.stat().st_size // 1024} KB)")
    window.viewer_tab.model.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
