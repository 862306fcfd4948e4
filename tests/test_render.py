"""Pictures of picks on slices: circles are the spheres' cross-sections, in class colours."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from deepetpicker.io.picks import Picks  # noqa: E402
from deepetpicker.render import PALETTE, class_colour, draw_circles, render_picks_png  # noqa: E402


def _picks():
    # class 1 centred on z=10 (cut through its middle), class 2 at z=13 (cut 3 voxels off
    # centre), class 1 at z=30 (does not reach the slice at z=10)
    return Picks(classes=np.array([1, 2, 1]),
                 xyz=np.array([[20.0, 15.0, 10.0], [40.0, 30.0, 13.0], [5.0, 5.0, 30.0]]))


def test_palette_has_twenty_distinct_colours_and_repeats():
    assert len(set(PALETTE)) == len(PALETTE) >= 20
    assert class_colour(1) == PALETTE[0] and class_colour(21) == PALETTE[0]


def test_circles_are_sphere_cross_sections():
    fig, ax = plt.subplots()
    draw_circles(ax, _picks(), axis=0, index=10, diameters=[10, 8], label="picks")
    patches = ax.patches
    assert len(patches) == 2                     # the particle at z=30 is not cut
    first, second = patches
    assert first.center == (20.0, 15.0) and np.isclose(first.radius, 5.0)
    assert second.center == (40.0, 30.0) and np.isclose(second.radius, np.sqrt(16 - 9))
    assert np.allclose(first.get_edgecolor()[:3], to_rgb(class_colour(1)))
    assert np.allclose(second.get_edgecolor()[:3], to_rgb(class_colour(2)))
    assert first.get_label() == "picks" and second.get_label() != "picks"
    # an XZ slice at y=15: rows are z, columns x
    ax.clear()
    draw_circles(ax, _picks(), axis=1, index=15, diameters=10)
    assert [p.center for p in ax.patches] == [(20.0, 10.0)]
    plt.close(fig)


def test_render_picks_png_writes_an_image(tmp_path):
    volume = np.random.default_rng(0).normal(size=(40, 48, 64)).astype(np.float32)
    path = render_picks_png(volume, _picks(), tmp_path / "out" / "picks.png", truth=_picks(),
                            diameters=[10, 8], z=10, y=15, title="test")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert not list(path.parent.glob("*.tmp*"))  # written atomically, nothing left behind
