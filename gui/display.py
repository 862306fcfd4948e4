"""Display-only helpers of the slice viewer: which 2-D slice a view shows, how it is drawn.

Nothing here changes data; these functions turn a slice of a (possibly memory-mapped)
``(z, y, x)`` volume into the picture on screen, and picks into circles on it.

Views and their image axes (image rows are the vertical axis on screen; the view names, their
axes, contrast limits and sphere sections are :mod:`deepetpicker.render`'s, shared with the
pictures the library draws)::

    view  horizontal  vertical  slice axis   image
    xy    x           y         z            data[z]          (y, x)
    zy    z           y         x            data[:, :, x].T  (y, z)
    xz    x           z         y            data[:, y, :]    (z, x)

so the XY and ZY views share y, and the XY and XZ views share x. On screen, voxel ``i``
covers ``[i, i + 1)``; its centre is at ``i + 0.5``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from deepetpicker.render.slices import VIEWS


def slice_image(data: np.ndarray, view: str, index: int) -> np.ndarray:
    """The 2-D float32 image a view shows at slice ``index`` (rows = vertical axis).

    Only this slice is read from ``data`` (a memory map stays a memory map).
    """
    if view == "xy":
        image = data[index]
    elif view == "zy":
        image = data[:, :, index].T
    elif view == "xz":
        image = data[:, index, :]
    else:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    return np.asarray(image, dtype=np.float32)


def sample_volume(data: np.ndarray, max_values: int = 262_144, max_slices: int = 9) -> np.ndarray:
    """A spread-out subsample of the volume's values (a few strided z-slices), for contrast.

    Reads at most ``max_slices`` z-planes, each thinned so about ``max_values`` values are
    read in total; a memory-mapped 1000 x 1000 x 400 tomogram is never read in full.
    """
    nz, ny, nx = data.shape
    zs = np.unique(np.linspace(0, nz - 1, min(nz, max_slices)).round().astype(int))
    per_slice = max(1, max_values // len(zs))
    step = max(1, int(np.ceil(np.sqrt(ny * nx / per_slice))))
    parts = [np.asarray(data[int(z), ::step, ::step], dtype=np.float32).ravel() for z in zs]
    values = np.concatenate(parts)
    return values[np.isfinite(values)]


def smooth_slice(image: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """The slice smoothed as the viewer shows it: a Gaussian filter of ``sigma`` voxels
    (0 = none), float32."""
    img = np.asarray(image, dtype=np.float32)
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=float(sigma), mode="nearest")
    return img


def render_slice(image: np.ndarray, vmin: float, vmax: float, sigma: float = 0.0,
                 equalize: bool = False, invert: bool = False) -> np.ndarray:
    """The slice as displayed: float32 in [0, 1].

    Order: Gaussian smoothing (``sigma`` voxels, 0 = off), contrast window ``[vmin, vmax]``,
    histogram equalisation of the windowed slice, inversion (dark particles become bright).
    """
    img = smooth_slice(image, sigma)
    span = float(vmax) - float(vmin)
    if not span > 0:
        span = 1.0
    out = np.clip((img - np.float32(vmin)) / np.float32(span), 0.0, 1.0)
    if equalize and out.size > 1 and np.ptp(out) > 0:
        from skimage.exposure import equalize_hist

        out = equalize_hist(out, nbins=256).astype(np.float32)
    if invert:
        out = 1.0 - out
    return out.astype(np.float32, copy=False)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """``'#e6194b'`` -> ``(230, 25, 75)``."""
    text = colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def mask_rgba(mask: np.ndarray, colours: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """A label or instance-id slice as an RGBA image: id ``k`` gets ``colours[(k-1) % n]``,
    0 is transparent. Translucency is set on the image item (the alpha slider)."""
    ids = np.asarray(mask)
    table = np.zeros((len(colours) + 1, 4), dtype=np.uint8)
    table[1:, :3] = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    table[1:, 3] = 255
    lookup = np.where(ids > 0, (ids.astype(np.int64) - 1) % len(colours) + 1, 0)
    return table[lookup]


class ClassStyles:
    """Colour and circle diameter (voxels) of each 1-based class, with sensible defaults.

    Colours default to :data:`deepetpicker.render.PALETTE` (20 distinct colours, repeating).
    """

    def __init__(self, diameter: float = 10.0) -> None:
        from deepetpicker.render.slices import PALETTE

        self.palette = list(PALETTE)
        self.default_diameter = float(diameter)
        self.colours: dict[int, str] = {}
        self.diameters: dict[int, float] = {}

    def colour(self, cls: int) -> str:
        cls = int(cls)
        return self.colours.get(cls, self.palette[(cls - 1) % len(self.palette)])

    def diameter(self, cls: int) -> float:
        return self.diameters.get(int(cls), self.default_diameter)

    def radii(self, classes: np.ndarray) -> np.ndarray:
        """Radius of every pick from its class."""
        classes = np.asarray(classes, dtype=np.int64)
        out = np.full(len(classes), self.default_diameter / 2.0)
        for cls, d in self.diameters.items():
            out[classes == cls] = d / 2.0
        return out

    def rgb_table(self, n: int) -> list[tuple[int, int, int]]:
        """Colours of classes 1..n as RGB triples (for mask overlays)."""
        return [hex_to_rgb(self.colour(k)) for k in range(1, max(1, n) + 1)]
