"""Pictures of picks on tomogram slices, for reports, the demo and the documentation.

Uses matplotlib (imported here only); the rest of the library does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from deepetpicker.io.atomic import atomic_path
from deepetpicker.io.picks import Picks
from deepetpicker.render.slices import circle_sections, class_colour, percentile_limits

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def draw_circles(ax: Axes, picks: Picks, axis: int, index: int,
                 diameters: Union[None, float, Sequence[float]], style: str = "-",
                 label: Optional[str] = None, lw: float = 1.2) -> None:
    """Draw on matplotlib axes ``ax`` each pick's sphere cut by slice ``index`` along ``axis``
    (0: an XY slice at z = index, 1: an XZ slice at y = index), in its class colour.
    ``diameters``: one number, or one per class (1-based order); ``label`` names the first
    circle for a legend."""
    from matplotlib.patches import Circle

    radii = np.array([_diameter(diameters, cls) / 2.0 for cls in picks.classes])
    cut, centres, sections = circle_sections(picks.xyz, radii, ("xy", "xz")[axis], index)
    for n, (k, (h, v), r) in enumerate(zip(cut, centres, sections)):
        # image columns are x; rows are y (XY view) or z (XZ view)
        ax.add_patch(Circle((h, v), float(r), fill=False, lw=lw, ls=style,
                            ec=class_colour(picks.classes[k]), label=label if n == 0 else None))


#: Colour of a region-of-interest mask's outline.
MASK_COLOUR = "#ffe119"


def draw_mask(ax: Axes, region: np.ndarray) -> None:
    """Dim what lies outside ``region`` (a 2-D slice of a mask, non-zero = inside) on axes
    ``ax`` and outline its edge."""
    inside = np.asarray(region) != 0
    shade = np.zeros(inside.shape + (4,), dtype=np.float32)
    shade[~inside, 3] = 0.55                       # translucent black outside
    limits = ax.get_xlim(), ax.get_ylim()
    ax.imshow(shade, interpolation="nearest")
    if inside.any() and not inside.all():
        ax.contour(inside.astype(np.float32), levels=[0.5], colors=MASK_COLOUR,
                   linewidths=1.2)
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])


def _diameter(diameters, cls) -> float:
    if diameters is None:
        return 10.0
    if np.isscalar(diameters):
        return float(diameters)
    return float(diameters[min(int(cls), len(diameters)) - 1])


def render_picks_png(volume: np.ndarray, picks: Picks, path: Union[str, Path],
                     truth: Optional[Picks] = None,
                     diameters: Optional[Sequence[float]] = None, z: Optional[int] = None,
                     y: Optional[int] = None, title: str = "", sigma: float = 1.0,
                     mask: Optional[np.ndarray] = None,
                     names: Sequence[str] = ("picks", "truth")) -> Path:
    """Save an XY slice (at ``z``) and an XZ slice (at ``y``) with picks circled.

    The slices are smoothed with a Gaussian of ``sigma`` voxels (0: raw), as viewers show
    tomograms. Picks are solid circles; ``truth`` (optional) dashed. Each circle is the
    cross-section of a
    sphere of the class's diameter with the slice, so a particle shows where it is cut.
    ``mask`` (a volume of the same shape, non-zero = inside): the region of interest, its
    outside dimmed and its edge outlined. ``names``: the legend's names of the solid and the
    dashed circles.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    nz, ny, nx = volume.shape
    z = nz // 2 if z is None else int(z)
    y = ny // 2 if y is None else int(y)
    xy = np.asarray(volume[z], dtype=np.float32)
    xz = np.asarray(volume[:, y, :], dtype=np.float32)
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        xy, xz = gaussian_filter(xy, sigma), gaussian_filter(xz, sigma)
    lo, hi = percentile_limits(np.asarray(xy).ravel())
    fig, axes = plt.subplots(2, 1, figsize=(6, 6 * (ny + nz) / nx * 0.9 + 0.6),
                             gridspec_kw={"height_ratios": [ny, nz]})
    for ax, image, axis, index, name in ((axes[0], xy, 0, z, f"XY slice z={z}"),
                                         (axes[1], xz, 1, y, f"XZ slice y={y}")):
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        if mask is not None:
            draw_mask(ax, mask[index] if axis == 0 else mask[:, index, :])
        if truth is not None:
            draw_circles(ax, truth, axis, index, diameters, "--", names[1], lw=0.9)
        draw_circles(ax, picks, axis, index, diameters, "-", names[0])
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    if mask is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color=MASK_COLOUR, lw=1.2))
        labels.append("mask edge (outside dimmed)")
    if handles:
        axes[0].legend(handles, labels, loc="upper right", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
