"""Pictures of picks on slices: circles are the spheres' cross-sections, in class colours."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from deepetpicker.io.picks import Picks  # noqa: E402
from deepetpicker.render import (  # noqa: E402
    PALETTE,
    class_colour,
    draw_circles,
    inside_volume,
    pick_at,
    render_picks_png,
    slice_to_volume,
    volume_to_slice,
)


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


def test_a_point_on_a_slice_maps_to_the_volume_and_back():
    position = (7, 8, 9)  # x, y, z of the crosshair
    # XY: (h, v) = (x, y), the slice is z
    assert slice_to_volume("xy", 3.5, 4.0, position).tolist() == [3.5, 4.0, 9.0]
    # ZY: (h, v) = (z, y), the slice is x
    assert slice_to_volume("zy", 3.5, 4.0, position).tolist() == [7.0, 4.0, 3.5]
    # XZ: (h, v) = (x, z), the slice is y
    assert slice_to_volume("xz", 3.5, 4.0, position).tolist() == [3.5, 8.0, 4.0]
    for view, slice_axis in (("xy", 2), ("zy", 0), ("xz", 1)):
        xyz = slice_to_volume(view, 1.25, 2.75, position)
        assert volume_to_slice(view, xyz) == (1.25, 2.75, position[slice_axis])
    assert volume_to_slice("zy", (1.0, 2.0, 3.0)) == (3.0, 2.0, 1.0)
    assert volume_to_slice("xz", (1.0, 2.0, 3.0)) == (1.0, 3.0, 2.0)


def test_inside_volume_takes_half_a_voxel_around_the_edge_voxels():
    shape = (4, 5, 6)  # z, y, x
    assert inside_volume((0, 0, 0), shape) and inside_volume((5, 4, 3), shape)
    assert inside_volume((-0.5, -0.5, -0.5), shape) and inside_volume((5.5, 4.5, 3.5), shape)
    assert not inside_volume((-0.51, 2, 2), shape)
    assert not inside_volume((5.6, 2, 2), shape)    # x beyond the last column
    assert not inside_volume((2, 2, 3.6), shape)    # z beyond the last slice
    assert inside_volume((2, 4.4, 2), shape) and not inside_volume((2, 4.6, 2), shape)


def test_pick_at_takes_the_nearest_centre_and_honours_the_minimum_radius():
    centres = np.array([[10.0, 10.0], [14.0, 10.0]])
    radii = np.array([6.0, 6.0])
    # both circles contain the point: the nearer centre wins, whichever comes first
    assert pick_at((13.0, 10.0), centres, radii) == 1
    assert pick_at((11.0, 10.0), centres, radii) == 0
    assert pick_at((11.0, 10.0), centres[::-1], radii) == 1
    # on the rim counts as inside; just outside does not
    assert pick_at((4.0, 10.0), centres, radii) == 0
    assert pick_at((3.9, 10.0), centres, radii) is None
    # a circle of radius 0.1 is hit within min_radius of its centre
    tiny = np.array([[0.0, 0.0]])
    assert pick_at((0.9, 0.0), tiny, np.array([0.1])) == 0
    assert pick_at((0.9, 0.0), tiny, np.array([0.1]), min_radius=0.5) is None
    assert pick_at((2.5, 0.0), tiny, np.array([0.1]), min_radius=3.0) == 0


def test_a_mask_dims_the_outside_and_keeps_the_view(tmp_path):
    from deepetpicker.render import draw_mask

    volume = np.random.default_rng(0).normal(size=(40, 48, 64)).astype(np.float32)
    mask = np.zeros(volume.shape, np.uint8)
    mask[:, :, :32] = 1                                    # the left half
    plain = plt.imread(render_picks_png(volume, _picks(), tmp_path / "plain.png", z=10, y=15))
    masked = plt.imread(render_picks_png(volume, _picks(), tmp_path / "masked.png", z=10, y=15,
                                         mask=mask, names=("kept", "dropped")))
    assert plain.shape == masked.shape                     # same layout
    width = plain.shape[1]
    left, right = slice(width // 5, width * 2 // 5), slice(width * 3 // 5, width * 4 // 5)
    rows = slice(plain.shape[0] // 4, plain.shape[0] // 2)  # inside the XY panel
    assert masked[rows, right, :3].mean() < 0.7 * plain[rows, right, :3].mean()
    assert abs(masked[rows, left, :3].mean() - plain[rows, left, :3].mean()) < 0.02

    fig, ax = plt.subplots()
    ax.imshow(volume[10])
    before = ax.get_xlim(), ax.get_ylim()
    draw_mask(ax, mask[10])
    assert (ax.get_xlim(), ax.get_ylim()) == before and len(ax.collections) >= 1
    plt.close(fig)
