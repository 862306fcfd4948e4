"""Display helpers of the viewer: slices, contrast, masks, circles of picks."""

import numpy as np
import pytest

from deepetpicker.render import circle_sections, percentile_limits, pick_at, view_axes
from gui.display import hex_to_rgb, mask_rgba, render_slice, sample_volume, slice_image


class RecordingVolume:
    """A (z, y, x) array that records how many values each read returns."""

    def __init__(self, data):
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.reads = []

    def __getitem__(self, key):
        out = self.data[key]
        self.reads.append(np.size(out))
        return out


def test_slices_have_the_documented_orientation():
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # z, y, x
    xy = slice_image(vol, "xy", 2)
    zy = slice_image(vol, "zy", 3)
    xz = slice_image(vol, "xz", 1)
    assert xy.shape == (5, 6) and xy[4, 5] == vol[2, 4, 5]
    assert zy.shape == (5, 4) and zy[4, 1] == vol[1, 4, 3]  # rows y, columns z
    assert xz.shape == (4, 6) and xz[3, 2] == vol[3, 1, 2]  # rows z, columns x
    assert xy.dtype == np.float32
    assert view_axes("zy") == (2, 1, 0)
    with pytest.raises(ValueError, match="unknown view 'yz'"):
        slice_image(vol, "yz", 0)


def test_only_the_slice_is_read():
    vol = RecordingVolume(np.zeros((30, 40, 50), np.float32))
    slice_image(vol, "xy", 3)
    slice_image(vol, "zy", 3)
    slice_image(vol, "xz", 3)
    assert vol.reads == [40 * 50, 30 * 40, 30 * 50]
    vol.reads.clear()
    values = sample_volume(vol, max_values=900, max_slices=3)
    assert len(vol.reads) == 3 and 300 < sum(vol.reads) <= 900
    assert values.size == sum(vol.reads)


def test_percentile_limits_from_a_sample():
    rng = np.random.default_rng(1)
    vol = rng.normal(5.0, 2.0, size=(20, 64, 64)).astype(np.float32)
    lo, hi = percentile_limits(sample_volume(vol, max_values=20000), 1, 99)
    assert lo == pytest.approx(5.0 - 2.326 * 2.0, abs=0.35)
    assert hi == pytest.approx(5.0 + 2.326 * 2.0, abs=0.35)
    assert percentile_limits(np.full(10, 3.0)) == (3.0, 4.0)
    assert percentile_limits(np.zeros(0)) == (0.0, 1.0)


def test_render_window_invert_equalize_and_smooth():
    img = np.array([[0.0, 5.0, 10.0, 20.0]], dtype=np.float32)
    out = render_slice(img, 0.0, 10.0)
    assert out.tolist() == [[0.0, 0.5, 1.0, 1.0]]
    assert render_slice(img, 0.0, 10.0, invert=True).tolist() == [[1.0, 0.5, 0.0, 0.0]]
    ramp = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10) ** 4
    eq = render_slice(ramp, 0.0, 1.0, equalize=True)
    # equalisation spreads a skewed ramp evenly: the median goes to about one half
    assert np.median(render_slice(ramp, 0, 1)) < 0.1 and abs(np.median(eq) - 0.5) < 0.05
    spike = np.zeros((9, 9), np.float32)
    spike[4, 4] = 1.0
    smooth = render_slice(spike, 0.0, 1.0, sigma=1.0)
    assert smooth[4, 4] == pytest.approx(1 / (2 * np.pi), rel=0.01)
    assert smooth[4, 5] == pytest.approx(smooth[4, 4] * np.exp(-0.5), rel=0.01)
    assert smooth[0, 0] < 1e-6


def test_mask_colours_and_transparency():
    mask = np.array([[0, 1], [2, 3]], dtype=np.int32)
    rgba = mask_rgba(mask, [hex_to_rgb("#ff0000"), hex_to_rgb("#00ff00")])
    assert rgba.shape == (2, 2, 4)
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]
    assert rgba[0, 1].tolist() == [255, 0, 0, 255]
    assert rgba[1, 0].tolist() == [0, 255, 0, 255]
    assert rgba[1, 1].tolist() == [255, 0, 0, 255]  # ids cycle through the colours


def test_circle_sections_are_sphere_cross_sections():
    xyz = np.array([[10.0, 20.0, 5.0], [3.0, 4.0, 9.0], [7.0, 7.0, 30.0]])
    radii = np.array([5.0, 5.0, 2.0])
    idx, centres, r = circle_sections(xyz, radii, "xy", 8)
    assert idx.tolist() == [0, 1]
    assert centres.tolist() == [[10.0, 20.0], [3.0, 4.0]]
    assert r == pytest.approx([4.0, np.sqrt(24.0)])
    idx, centres, r = circle_sections(xyz, radii, "zy", 10)  # slice x = 10: (z, y) centres
    assert idx.tolist() == [0] and centres.tolist() == [[5.0, 20.0]] and r[0] == 5.0
    idx, centres, r = circle_sections(xyz, radii, "xz", 7)  # slice y = 7
    assert idx.tolist() == [1, 2] and centres.tolist() == [[3.0, 9.0], [7.0, 30.0]]


def test_pick_at_prefers_the_nearest_circle_containing_the_point():
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [20.0, 20.0]])
    radii = np.array([5.0, 5.0, 0.2])
    assert pick_at((2.0, 0.0), centres, radii) == 1
    assert pick_at((-1.0, 0.0), centres, radii) == 0
    assert pick_at((10.0, 10.0), centres, radii) is None
    assert pick_at((20.5, 20.5), centres, radii) == 2  # tiny circles count as radius 1
    assert pick_at((0, 0), np.zeros((0, 2)), np.zeros(0)) is None
