#!/usr/bin/env python
"""Render which picks a region-of-interest mask keeps, for the documentation.

Simulates a tomogram, makes a mask (the ice slab, cut by a slanted edge, as one masks off a
carbon edge or a damaged corner) and takes the simulated particle centres as the picks. The
picks inside the mask, those :func:`deepetpicker.picking.mask.picks_in_mask` keeps (as
``predict --mask`` and training validation do), are drawn solid; those it drops, dashed. The
mask's edge is outlined and its outside dimmed. Writes ``masked_picks.png``. Needs
matplotlib (``pip install matplotlib``).

    python scripts/render_mask_example.py --out docs/images
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def slanted_slab_mask(shape: tuple[int, int, int], slab: tuple[int, int]) -> np.ndarray:
    """Inside (1): the ice slab's z range, left of a slanted edge across XY."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    left = xx + 0.35 * yy < 0.62 * nx
    mask = np.zeros(shape, dtype=np.uint8)
    mask[slab[0]:slab[1] + 1] = left
    return mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/images", help="output folder")
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 192, 192),
                        metavar=("Z", "Y", "X"))
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    from deepetpicker.picking.mask import picks_in_mask
    from deepetpicker.render import render_picks_png
    from deepetpicker.simulate import simulate_tomogram

    start = time.perf_counter()
    volume, truth, info = simulate_tomogram(tuple(args.shape), classes=2, seed=args.seed)
    print(f"simulated {volume.shape} with {len(truth)} particles in "
          f"{time.perf_counter() - start:.2f} s")
    slab = (int(info["slab"][0]) + 2, int(info["slab"][1]) - 2)
    mask = slanted_slab_mask(volume.shape, slab)
    kept = picks_in_mask(truth, mask)
    dropped = picks_in_mask(truth, mask == 0)
    print(f"mask keeps {len(kept)} of {len(truth)} picks, drops {len(dropped)}")
    diameters = [c["diameter"] for c in info["classes"]]
    z = (slab[0] + slab[1]) // 2
    path = render_picks_png(volume, kept, Path(args.out) / "masked_picks.png", truth=dropped,
                            diameters=diameters, z=z, y=volume.shape[1] // 2, mask=mask,
                            names=(f"kept, inside the mask ({len(kept)})",
                                   f"dropped, outside ({len(dropped)})"),
                            title="predict --mask: picks kept and dropped")
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
