#!/usr/bin/env python
"""Render slices of a simulated tomogram, with its particles circled, for the documentation.

Writes two PNGs (phantom before imaging beside the reconstructed tomogram):

- ``simulated_xy.png``: the central XY slice;
- ``simulated_xz.png``: an XZ slice through several particles and a gold bead, where the
  missing wedge stretches every object along z and the gold casts X-shaped streaks.

Each circle is the cross-section of a particle's bounding sphere with the slice, in its
class colour. Gold beads, vesicles and small untargeted proteins are distractors and are not
circled. Needs matplotlib (``pip install matplotlib``).

    python scripts/render_sample_slices.py --out docs/images
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _xz_row(picks, info) -> int:
    """The y row through a gold bead (if any) that cuts the most particles near their centres."""
    ny = info["phantom"].shape[1]
    score = np.zeros(ny)
    for cls, zyx in zip(picks.classes, picks.zyx):
        r = info["classes"][cls - 1]["diameter"] / 2.0
        lo, hi = int(max(0, zyx[1] - r / 3)), int(min(ny - 1, zyx[1] + r / 3))
        score[lo:hi + 1] += 1
    rows = [int(g[1]) for g in info["gold"]] or list(range(ny))
    return max(rows, key=lambda row: score[row])


def render(volume, picks, info, out_dir: Path, dpi: int = 100) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from deepetpicker.io.atomic import atomic_path
    from deepetpicker.render import class_colour, draw_circles, percentile_limits

    phantom = info["phantom"]
    nz, ny, nx = volume.shape
    z = (info["slab"][0] + info["slab"][1]) // 2
    y = _xz_row(picks, info)
    diameters = [c["diameter"] for c in info["classes"]]
    handles = [Line2D([], [], color=class_colour(c["id"]), lw=2,
                      label=f'{c["id"]} {c["name"]} ({c["diameter"]:g} vx)')
               for c in info["classes"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    # XZ: the mean of 5 rows, as viewers show thick slices, so the shapes stand out of the noise
    for name, axis, index, cut, label in (
            ("simulated_xy.png", 0, z, lambda v: v[z], f"XY z={z}"),
            ("simulated_xz.png", 1, y, lambda v: v[:, y - 2:y + 3, :].mean(axis=1),
             f"XZ y={y - 2}..{y + 2} averaged")):
        if axis == 0:   # side by side
            fig, axes = plt.subplots(1, 2, figsize=(11.0, 5.5 * ny / nx + 0.9))
        else:           # one above the other, full width
            fig, axes = plt.subplots(2, 1, figsize=(11.0, 2 * 11.0 * nz / nx + 1.2))
        for ax, vol, title in ((axes[0], phantom, "phantom (dense = bright)"),
                               (axes[1], volume, "reconstructed tomogram (dense = dark)")):
            image = cut(vol)
            lo, hi = percentile_limits(np.asarray(image).ravel(), 1.0, 99.0)
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            draw_circles(ax, picks, axis, index, diameters, lw=1.0)
            ax.set_title(f"{title}, {label}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.06 if axis == 0 else 0.08, 1, 1))
        path = out_dir / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/images", help="output folder")
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256),
                        metavar=("Z", "Y", "X"))
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument("--dpi", type=int, default=90)
    args = parser.parse_args(argv)

    from deepetpicker.simulate import simulate_tomogram

    start = time.perf_counter()
    volume, picks, info = simulate_tomogram(tuple(args.shape), classes=args.classes,
                                            seed=args.seed, snr=args.snr, keep_phantom=True)
    print(f"simulated {volume.shape} with {len(picks)} particles in "
          f"{time.perf_counter() - start:.2f} s")
    for path in render(volume, picks, info, Path(args.out), dpi=args.dpi):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
