"""Weak-label masks, label painting and occupancy maps."""

import itertools

import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.preprocess.labels import ball_mask, paint_labels, paint_occupancy, weak_label_mask

DIAMETERS = (3, 4, 7, 8, 9, 12)
TYPES = ("gaussian", "sphere", "cubic")


def expected_count(d: int, label_type: str) -> int:
    """Voxel count from the geometric rules (r = (d - 1) / 2), one offset at a time."""
    r = (d - 1) / 2
    half = int(r)
    count = 0
    for o in itertools.product(range(-half, half + 1), repeat=3):
        sq = sum(v * v for v in o)
        if label_type == "gaussian":
            count += sq <= 2 * r * r
        elif label_type == "sphere":
            count += sq <= r * r
        else:
            count += 1
    return count


def original_template(d: int, t_g: float) -> np.ndarray:
    """The original program's mask for an odd diameter, written out from its definition:
    a d-sample Gaussian with sigma (d - 1) / 2 on offsets -(d-1)/2 .. (d-1)/2, kept above t_g."""
    half = (d - 1) / 2.0
    z, y, x = np.ogrid[-half:half + 1, -half:half + 1, -half:half + 1]
    sigma = (d - 1) / 2.0
    return np.exp(-(x * x + y * y + z * z) / (2 * sigma * sigma)) > t_g


@pytest.mark.parametrize("d", DIAMETERS)
@pytest.mark.parametrize("label_type", TYPES)
def test_mask_voxel_count_matches_formula(d, label_type):
    mask = weak_label_mask(d, label_type)
    side = d if d % 2 else d - 1
    assert mask.shape == (side, side, side)
    assert mask.dtype == bool
    assert int(mask.sum()) == expected_count(d, label_type)
    # Symmetric about the centre voxel, which is always labelled.
    assert mask[side // 2, side // 2, side // 2]
    assert np.array_equal(mask, mask[::-1, :, :])
    assert np.array_equal(mask, mask.transpose(2, 0, 1))


def test_known_counts_of_the_original_program():
    # The paper's supplement and the original's coords2labels.py: d = 2r + 1, sigma = r.
    assert weak_label_mask(9, "gaussian").sum() == 625
    assert weak_label_mask(11, "gaussian").sum() == 1203
    assert weak_label_mask(5, "gaussian").sum() == 93
    assert weak_label_mask(11, "sphere").sum() == 515
    assert weak_label_mask(23, "sphere").sum() == 5575
    assert weak_label_mask(9, "cubic").sum() == 9 ** 3
    assert ball_mask(11).sum() == 515                    # occupancy: the same Ball
    assert weak_label_mask(3, "sphere").sum() == 7       # r = 1: centre and 6 neighbours
    assert weak_label_mask(1, "gaussian").sum() == 1


def test_even_diameters_lie_between_their_odd_neighbours():
    for label_type in TYPES:
        for d in (4, 6, 8, 10, 12, 24):
            below = weak_label_mask(d - 1, label_type)
            mask = weak_label_mask(d, label_type)
            above = weak_label_mask(d + 1, label_type)
            assert mask.shape == below.shape             # d - 1 voxels per axis
            assert below.sum() <= mask.sum() <= above.sum()
            assert np.all(mask[below])                   # a superset of the smaller mask
    assert weak_label_mask(10, "gaussian").sum() == 697  # r = 4.5: |o|^2 <= 40.5 in [-4, 4]^3
    assert weak_label_mask(2, "sphere").sum() == 1


@pytest.mark.parametrize("d", (3, 5, 7, 9, 11, 15, 23, 31))
def test_odd_masks_equal_the_original_program(d):
    assert np.array_equal(weak_label_mask(d, "gaussian"), original_template(d, 0.367879))
    assert np.array_equal(weak_label_mask(d, "sphere"), original_template(d, 0.60653))
    assert np.array_equal(weak_label_mask(d, "cubic"), original_template(d, 0.223))


def test_aliases_and_bad_values():
    assert np.array_equal(weak_label_mask(7, "TBall"), weak_label_mask(7, "gaussian"))
    assert np.array_equal(weak_label_mask(7, "Ball"), weak_label_mask(7, "sphere"))
    assert np.array_equal(ball_mask(9), weak_label_mask(9, "sphere"))
    with pytest.raises(DeepETPickerError, match="donut"):
        weak_label_mask(7, "donut")
    with pytest.raises(DeepETPickerError, match="0"):
        weak_label_mask(0, "gaussian")
    with pytest.raises(DeepETPickerError, match="6.5"):
        weak_label_mask(6.5, "gaussian")


def reference_paint(shape, picks, masks_of, values):
    """Slow reference: each voxel goes to the nearest centre among the masks covering it."""
    grid = np.indices(shape).reshape(3, -1).T            # (V, 3) z, y, x
    best = np.full(len(grid), np.inf)
    out = np.zeros(len(grid), dtype=np.int64)
    for i, (c, v) in enumerate(zip(picks.zyx, values)):
        mask = masks_of[i]
        half = mask.shape[0] // 2
        voxel = np.floor(c + 0.5).astype(int)
        off = grid - voxel
        inside = np.all(np.abs(off) <= half, axis=1)
        member = np.zeros(len(grid), dtype=bool)
        idx = off[inside] + half
        member[inside] = mask[idx[:, 0], idx[:, 1], idx[:, 2]]
        dist = ((grid - c) ** 2).sum(axis=1)
        win = member & (dist < best)                       # strict: earlier rows win ties
        best[win] = dist[win]
        out[win] = v
    return out.reshape(shape)


def test_single_particle_position_and_axis_order():
    shape = (12, 20, 30)
    picks = Picks([2], [[17, 8, 5]])                       # x, y, z
    lab = paint_labels(shape, picks, 5, "sphere")
    assert lab.dtype == np.uint8 and lab.shape == shape
    assert lab[5, 8, 17] == 2
    zz, yy, xx = np.nonzero(lab)
    assert (zz.mean(), yy.mean(), xx.mean()) == (5.0, 8.0, 17.0)
    assert lab.sum() == 2 * weak_label_mask(5, "sphere").sum()


def test_subvoxel_centres_round_half_up():
    lab = paint_labels((9, 9, 9), Picks([1], [[4.5, 3.49, 4.0]]), 3, "cubic")
    zz, yy, xx = np.nonzero(lab)
    assert (zz.mean(), yy.mean(), xx.mean()) == (4.0, 3.0, 5.0)


def test_touching_particles_split_by_nearest_centre():
    shape = (11, 11, 26)
    picks = Picks([1, 2], [[10, 5, 5], [15, 5, 5]])
    lab = paint_labels(shape, picks, 7, "cubic")
    # Along the line through both centres: cubes span x 7..13 and 12..18.
    row = lab[5, 5]
    assert row[7:13].tolist() == [1] * 6                    # x = 12 is nearer to 10
    assert row[13:19].tolist() == [2] * 6                   # x = 13 is nearer to 15
    assert row[:7].sum() == 0 and row[19:].sum() == 0
    # Nothing erased outside the overlap: the union of the two cubes is labelled.
    assert np.count_nonzero(lab) == 7 * 7 * 12
    # Painting order does not matter when no voxel is equidistant.
    swapped = paint_labels(shape, Picks([2, 1], [[15, 5, 5], [10, 5, 5]]), 7, "cubic")
    assert np.array_equal(lab, swapped)


def test_equidistant_voxels_go_to_the_earlier_row():
    lab = paint_labels((9, 9, 20), Picks([1, 2], [[8, 4, 4], [12, 4, 4]]), 7, "cubic")
    assert lab[4, 4, 10] == 1                               # 2 from each centre
    lab = paint_labels((9, 9, 20), Picks([2, 1], [[12, 4, 4], [8, 4, 4]]), 7, "cubic")
    assert lab[4, 4, 10] == 2


@pytest.mark.parametrize("d,label_type", [(7, "gaussian"), (8, "gaussian"), (8, "sphere"),
                                          (5, "cubic")])
def test_random_crowd_matches_reference(d, label_type):
    rng = np.random.default_rng(3)
    shape = (20, 28, 32)
    n = 40
    xyz = rng.uniform(-0.5, [31.5, 27.5, 19.5], size=(n, 3))   # near and on the borders too
    picks = Picks(rng.integers(1, 4, n), xyz)
    lab = paint_labels(shape, picks, d, label_type)
    mask = weak_label_mask(d, label_type)
    ref = reference_paint(shape, picks, [mask] * n, picks.classes)
    assert np.array_equal(lab, ref)
    assert np.count_nonzero(lab) > 0.2 * lab.size              # a real crowd, with overlaps


def test_border_particles_are_clipped_not_dropped():
    shape = (10, 12, 14)
    picks = Picks([1, 2, 3], [[0, 0, 0], [13, 11, 9], [6, 5.9, -0.4]])
    lab = paint_labels(shape, picks, 5, "cubic")
    assert np.count_nonzero(lab == 1) == 3 * 3 * 3             # offsets 0..2 on each axis
    assert np.count_nonzero(lab == 2) == 3 * 3 * 3
    assert np.count_nonzero(lab == 3) == 5 * 5 * 3             # z rounds to 0: half a cube
    assert lab[0, 0, 0] == 1 and lab[9, 11, 13] == 2 and lab[0, 6, 6] == 3


def test_even_diameter_is_centred():
    lab = paint_labels((15, 15, 15), Picks([1], [[7, 7, 7]]), 8, "gaussian")
    assert np.count_nonzero(lab) == expected_count(8, "gaussian")
    xs = np.nonzero(lab[7, 7])[0]
    assert (xs.min(), xs.max()) == (4, 10)                    # 7 voxels, centred on 7


def test_empty_picks_and_report_and_out():
    assert not paint_labels((4, 5, 6), Picks.empty(), 5).any()
    calls = []
    out = np.zeros((16, 16, 16), dtype=np.float32)
    picks = Picks([1, 2], [[4, 4, 4], [11, 11, 11]])
    res = paint_labels((16, 16, 16), picks, 5, report=lambda d, n: calls.append((d, n)),
                       out=out)
    assert res is out
    assert np.array_equal(out, paint_labels((16, 16, 16), picks, 5).astype(np.float32))
    assert calls[-1] == (2, 2)


def test_occupancy_ids_in_file_order():
    shape = (20, 24, 40)
    picks = Picks([1, 2, 1], [[6, 6, 6], [20, 12, 10], [34, 16, 12]])
    occ = paint_occupancy(shape, picks, [5, 9])
    assert occ.dtype == np.int32
    assert sorted(np.unique(occ).tolist()) == [0, 1, 2, 3]
    assert occ[6, 6, 6] == 1 and occ[10, 12, 20] == 2 and occ[12, 16, 34] == 3
    assert np.count_nonzero(occ == 1) == ball_mask(5).sum()
    assert np.count_nonzero(occ == 2) == ball_mask(9).sum()


def test_occupancy_overlaps_match_reference():
    rng = np.random.default_rng(7)
    shape = (18, 24, 24)
    n = 25
    picks = Picks(rng.integers(1, 3, n), rng.uniform(0, [23, 23, 17], size=(n, 3)))
    diameters = [6, 11]
    occ = paint_occupancy(shape, picks, diameters)
    masks = [ball_mask(diameters[c - 1]) for c in picks.classes]
    ref = reference_paint(shape, picks, masks, np.arange(1, n + 1))
    assert np.array_equal(occ, ref)


def test_occupancy_needs_a_diameter_per_class():
    with pytest.raises(DeepETPickerError, match=r"class id 3.*ocp_diameter"):
        paint_occupancy((8, 8, 8), Picks([1, 3], [[2, 2, 2], [5, 5, 5]]), [5, 5])
    with pytest.raises(DeepETPickerError, match="occupancy diameter of class 2"):
        paint_occupancy((8, 8, 8), Picks([1], [[2, 2, 2]]), [5, 0])


def test_each_class_gets_its_own_label_diameter():
    # three particles far apart, classes 1..3 with TBall diameters 9, 11 and 5
    picks = Picks([1, 2, 3], [[8, 8, 8], [24, 8, 8], [8, 24, 8]])
    lab = paint_labels((16, 32, 32), picks, [9, 11, 5])
    assert [np.count_nonzero(lab == k) for k in (1, 2, 3)] == [625, 1203, 93]
    same = paint_labels((16, 32, 32), picks, 9)
    assert [np.count_nonzero(same == k) for k in (1, 2, 3)] == [625, 625, 625]
    assert np.array_equal(paint_labels((16, 32, 32), picks, [9]), same)  # one serves all


def test_per_class_diameters_keep_the_nearest_centre_rule():
    rng = np.random.default_rng(5)
    shape = (20, 28, 32)
    n = 40
    xyz = rng.uniform(-0.5, [31.5, 27.5, 19.5], size=(n, 3))
    picks = Picks(rng.integers(1, 4, n), xyz)
    diameters = [5, 11, 8]
    lab = paint_labels(shape, picks, diameters, "gaussian")
    masks = [weak_label_mask(diameters[k - 1], "gaussian") for k in picks.classes]
    assert np.array_equal(lab, reference_paint(shape, picks, masks, picks.classes))
    assert np.count_nonzero(lab) > 0.2 * lab.size


def test_per_class_diameters_must_cover_every_class():
    picks = Picks([1, 3], [[4, 4, 4], [10, 10, 10]], tomo_name="t1")
    with pytest.raises(DeepETPickerError, match=r"2 value\(s\) \(9, 11\) for 3 class.*t1"):
        paint_labels((16, 16, 16), picks, [9, 11])
    with pytest.raises(DeepETPickerError, match="0"):
        paint_labels((16, 16, 16), picks, [9, 0, 5])
    with pytest.raises(DeepETPickerError, match="not a number"):
        paint_labels((16, 16, 16), picks, "nine")
