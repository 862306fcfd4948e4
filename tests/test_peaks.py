"""Peak picking on synthetic score maps and de-duplication of picks."""

import numpy as np
import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.picking.peaks import deduplicate, find_picks


def gaussian_map(shape, centres_zyx, sigma=2.5, amplitude=0.95):
    """A score map with one Gaussian blob per centre (sub-voxel centres allowed)."""
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    out = np.zeros(shape, dtype=np.float64)
    for cz, cy, cx in centres_zyx:
        r2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
        out = np.maximum(out, amplitude * np.exp(-r2 / (2 * sigma ** 2)))
    return out.astype(np.float32)


def assert_matches(picks, centres_zyx, tol=1.0):
    found = picks.zyx
    assert len(found) == len(centres_zyx)
    for c in centres_zyx:
        d = np.linalg.norm(found - np.asarray(c), axis=1)
        assert d.min() <= tol, f"no pick within {tol} of {c}: nearest {d.min():.2f}"


def test_gaussian_peaks_are_found_at_their_centres():
    rng = np.random.default_rng(0)
    centres = [(10, 12, 11), (30.4, 35.6, 14.2), (12.7, 36.3, 33.5), (29, 10, 34), (2, 40, 3)]
    scores = gaussian_map((40, 48, 44), centres)
    scores += rng.uniform(0, 0.05, scores.shape).astype(np.float32)   # background speckle
    picks = find_picks(scores[None], diameters=[8])
    assert_matches(picks, centres)
    assert (picks.classes == 1).all()
    assert ((picks.scores > 0.5) & (picks.scores <= 1.0)).all()
    assert list(picks.scores) == sorted(picks.scores, reverse=True)
    assert picks.meta["t_seg"] == 0.5 and picks.meta["t_lm"] == 0.1
    assert picks.meta["t_dist"] == [4.0] and picks.meta["diameters"] == [8.0]
    voxels = find_picks(scores[None], diameters=[8], refine=False)
    assert_matches(voxels, centres)
    assert (voxels.xyz == np.round(voxels.xyz)).all()


def test_score_is_the_mean_probability_around_the_peak():
    shape = (24, 24, 24)
    z, y, x = np.meshgrid(*[np.arange(24)] * 3, indexing="ij")
    ball = ((z - 12) ** 2 + (y - 11) ** 2 + (x - 13) ** 2) <= 16
    scores = np.where(ball, 0.8, 0.0).astype(np.float32)
    picks = find_picks(scores, diameters=8, score_radius=2)
    assert len(picks) == 1
    np.testing.assert_allclose(picks.xyz[0], [13, 11, 12], atol=1e-9)
    assert picks.scores[0] == pytest.approx(0.8, abs=1e-6)
    assert shape == scores.shape


def test_peaks_below_the_thresholds_are_ignored():
    scores = gaussian_map((32, 32, 32), [(8, 8, 8)], amplitude=0.95)
    faint = gaussian_map((32, 32, 32), [(24, 24, 24)], amplitude=0.4)   # below t_seg
    scores = np.maximum(scores, faint)
    scores[20, 6, 26] = 0.9                                              # a one-voxel speck
    picks = find_picks(scores, diameters=8)
    assert_matches(picks, [(8, 8, 8)])
    # the speck passes t_seg but its smoothed value is far below t_lm; lowering t_lm finds it
    low = find_picks(scores, diameters=8, t_lm=0.001)
    assert_matches(low, [(8, 8, 8), (20, 6, 26)], tol=0.0)
    # the faint blob needs both a lower t_seg (its peak is 0.4) and a lower t_lm (few voxels
    # pass t_seg, so its smoothed value stays small)
    assert len(find_picks(scores, diameters=8, t_seg=0.3)) == 1
    assert_matches(find_picks(scores, diameters=8, t_seg=0.3, t_lm=0.01),
                   [(8, 8, 8), (24, 24, 24)])
    assert len(find_picks(np.zeros((8, 8, 8), np.float32), diameters=5)) == 0


def test_duplicates_from_a_flat_blob_are_merged():
    # a flat-topped elongated blob has many equal local maxima; t_dist merges them
    scores = np.zeros((20, 20, 40), np.float32)
    scores[7:13, 7:13, 8:22] = 1.0
    merged = find_picks(scores, diameters=6, t_lm=0.1)
    split = find_picks(scores, diameters=6, t_dist=0.5)
    assert len(split) > len(merged)
    d = np.linalg.norm(merged.xyz[:, None] - merged.xyz[None], axis=2)
    assert (d[np.triu_indices(len(merged), 1)] >= 3).all()


def test_multi_class_maps_give_class_ids_from_channels():
    shape = (30, 40, 40)
    c1 = [(8, 10, 10), (20, 30, 12)]
    c2 = [(10, 28, 30), (22, 10, 28), (15, 20, 20)]
    scores = np.stack([gaussian_map(shape, c1, sigma=2.0), gaussian_map(shape, c2, sigma=3.0)])
    picks = find_picks(scores, diameters=[6, 10])
    assert picks.counts() == {1: 2, 2: 3}
    assert_matches(picks.of_class(1), c1)
    assert_matches(picks.of_class(2), c2)
    assert picks.meta["t_dist"] == [3.0, 5.0]
    assert list(picks.classes) == [1, 1, 2, 2, 2]


def test_slabs_and_torch_input_give_the_same_picks():
    rng = np.random.default_rng(3)
    centres = rng.uniform(3, 37, size=(12, 3))
    scores = gaussian_map((40, 40, 40), centres, sigma=2.0)
    whole = find_picks(scores, diameters=7, chunk=1000)
    slabs = find_picks(scores, diameters=7, chunk=3)
    tensor = find_picks(torch.from_numpy(scores)[None], diameters=7, chunk=7)
    assert len(whole) >= 8
    for other in (slabs, tensor):
        np.testing.assert_array_equal(other.xyz, whole.xyz)
        np.testing.assert_allclose(other.scores, whole.scores, rtol=1e-6)


def test_bad_settings_are_clear_errors():
    scores = np.zeros((2, 8, 8, 8), np.float32)
    with pytest.raises(DeepETPickerError, match="diameters is required"):
        find_picks(scores)
    with pytest.raises(DeepETPickerError, match=r"diameters has 3 value\(s\) \(5, 6, 7\).*2 class"):
        find_picks(scores, diameters=[5, 6, 7])
    with pytest.raises(DeepETPickerError, match="t_seg = 1.5"):
        find_picks(scores, diameters=5, t_seg=1.5)
    with pytest.raises(DeepETPickerError, match="diameters: class 2 has 0"):
        find_picks(scores, diameters=[5, 0])
    with pytest.raises(DeepETPickerError, match=r"got shape \(8, 8\)"):
        find_picks(np.zeros((8, 8)), diameters=5)


def _table(rows):
    return Picks.from_array(np.asarray(rows, dtype=np.float64))


def test_deduplicate_keeps_the_higher_score_within_t_dist():
    picks = _table([[1, 10, 10, 10, 0.6],
                    [1, 13, 10, 10, 0.9],     # 3 from the first: merged, this one wins
                    [1, 30, 10, 10, 0.5],
                    [1, 34, 10, 10, 0.7]])    # exactly 4 from the third: not closer than 4
    kept = deduplicate(picks, 4)
    np.testing.assert_array_equal(kept.scores, [0.9, 0.5, 0.7])


def test_deduplicate_is_greedy_along_chains():
    picks = _table([[1, 0, 0, 0, 0.9], [1, 3, 0, 0, 0.8], [1, 6, 0, 0, 0.7]])
    kept = deduplicate(picks, 4)
    np.testing.assert_array_equal(kept.xyz[:, 0], [0, 6])   # the middle one goes, the end stays


def test_deduplicate_across_classes_uses_the_smaller_distance():
    close = _table([[1, 0, 0, 0, 0.6], [2, 2, 0, 0, 0.8]])
    kept = deduplicate(close, [4, 3])
    assert list(kept.classes) == [2]
    assert len(deduplicate(close, [4, 3], cross_class=False)) == 2
    apart = _table([[1, 0, 0, 0, 0.6], [2, 3.5, 0, 0, 0.8]])
    assert len(deduplicate(apart, [4, 3])) == 2               # 3.5 >= min(4, 3)
    assert len(deduplicate(apart, {1: 4, 2: 4})) == 1
    # one value serves every class, as everywhere a per-class value is taken
    assert len(deduplicate(apart, np.array([4.0]))) == len(deduplicate(apart, 4.0)) == 1
    with pytest.raises(DeepETPickerError, match=r"t_dist has 2 value\(s\) \(4, 4\) for 3"):
        deduplicate(_table([[3, 0, 0, 0, 0.6], [1, 9, 0, 0, 0.8]]), [4, 4])
    with pytest.raises(DeepETPickerError, match="t_dist has no value for class 2"):
        deduplicate(apart, {1: 4})


def test_deduplicate_scales_to_many_picks():
    rng = np.random.default_rng(5)
    xyz = rng.uniform(0, 200, size=(20000, 3))
    picks = Picks(np.ones(len(xyz)), xyz, rng.uniform(size=len(xyz)))
    kept = deduplicate(picks, 5)
    from scipy.spatial import cKDTree
    pairs = cKDTree(kept.xyz).query_pairs(r=5 - 1e-9)
    assert len(pairs) == 0
    # every dropped pick has a kept pick with a higher score within 5 voxels
    dropped = picks.select(~np.isin(np.arange(len(picks)), np.nonzero(
        np.isin(picks.scores, kept.scores))[0]))
    tree = cKDTree(kept.xyz)
    for xyz_d, s in zip(dropped.xyz[:200], dropped.scores[:200]):
        near = tree.query_ball_point(xyz_d, 5 - 1e-9)
        assert near and max(kept.scores[near]) >= s


def split_scores():
    """Three classes: particles A and B are sure of their class (0.9); particle C's
    probability is split 0.40 / 0.35 / 0.15 over the three classes (foreground 0.9), so no
    class map alone crosses t_seg = 0.5."""
    shape = (32, 40, 40)
    a, b, c = (8, 10, 10), (24, 30, 12), (16, 20, 30)
    blob = {k: gaussian_map(shape, [k], sigma=2.5, amplitude=1.0) for k in (a, b, c)}
    scores = np.zeros((3,) + shape, np.float32)
    scores[0] += 0.9 * blob[a] + 0.40 * blob[c]
    scores[1] += 0.9 * blob[b] + 0.35 * blob[c]
    scores[2] += 0.15 * blob[c]
    return scores, a, b, c


def test_foreground_localisation_finds_a_particle_split_over_classes():
    scores, a, b, c = split_scores()
    per_class = find_picks(scores, diameters=[8, 8, 8])
    assert_matches(per_class, [a, b])                    # the split particle is lost
    picks = find_picks(scores, diameters=[8, 8, 8], localize="foreground")
    assert_matches(picks, [a, b, c])
    by_position = {tuple(np.rint(z).astype(int)): k for z, k in zip(picks.zyx, picks.classes)}
    assert by_position == {a: 1, b: 2, c: 1}            # C: the most probable class
    share = dict(zip(map(tuple, np.rint(picks.zyx).astype(int)), picks.meta["class_confidence"]))
    assert share[a] == pytest.approx(1.0) and share[c] == pytest.approx(0.40 / 0.90, abs=0.02)
    assert picks.meta["localize"] == "foreground"
    # torch input, one class, and a bad mode
    again = find_picks(torch.from_numpy(scores), diameters=[8, 8, 8], localize="foreground")
    assert np.allclose(again.zyx, picks.zyx) and (again.classes == picks.classes).all()
    one = find_picks(scores[:1], diameters=[8], localize="foreground")
    assert np.allclose(one.zyx, find_picks(scores[:1], diameters=[8]).zyx)
    with pytest.raises(DeepETPickerError, match="localize = 'blob'"):
        find_picks(scores, diameters=[8, 8, 8], localize="blob")


def test_an_uncertain_class_keeps_the_particle_unless_a_class_confidence_is_asked():
    """The split particle C is found (its detection score is high) and kept by default with
    its class confidence; only an explicit ``min_class_confidence`` drops it."""
    from deepetpicker.picking.settings import PickSettings, picks_from_scores

    scores, a, b, c = split_scores()
    picks = picks_from_scores(scores, [8, 8, 8], PickSettings())
    assert_matches(picks, [a, b, c])
    by_position = dict(zip(map(tuple, np.rint(picks.zyx).astype(int)),
                           zip(picks.scores, picks.meta["class_confidence"])))
    score_c, confidence_c = by_position[c]
    assert score_c > 0.5 and confidence_c == pytest.approx(0.40 / 0.90, abs=0.02)
    strict = picks_from_scores(scores, [8, 8, 8], PickSettings(min_class_confidence=0.6))
    assert_matches(strict, [a, b])
    assert strict.meta["min_class_confidence"] == 0.6
    assert len(strict.meta["class_confidence"]) == 2
    with pytest.raises(DeepETPickerError, match="min_class_confidence = 1.5"):
        PickSettings(min_class_confidence=1.5)


def test_each_class_searched_alone_gives_each_pick_its_class_share():
    scores, a, b, c = split_scores()
    scores[1] += 0.3 * gaussian_map(scores.shape[1:], [a], sigma=2.5, amplitude=1.0)
    picks = find_picks(scores, diameters=[8, 8, 8])          # localize="class"
    share = dict(zip(map(tuple, np.rint(picks.zyx).astype(int)), picks.meta["class_confidence"]))
    assert share[a] == pytest.approx(0.9 / 1.2, abs=0.02) and share[b] == pytest.approx(1.0)


def test_foreground_localisation_gives_one_pick_per_particle_of_a_large_class():
    """Peaks are searched with the smallest class's kernels; a large particle that yields
    several peaks is merged by its own class's distance, ceil(d / 2)."""
    shape = (40, 48, 48)
    small, large = (10, 10, 10), (24, 28, 28)
    scores = np.zeros((2,) + shape, np.float32)
    scores[0] = gaussian_map(shape, [small], sigma=1.5)
    zz, yy, xx = np.indices(shape)
    r = np.sqrt((zz - 24) ** 2 + (yy - 28) ** 2 + (xx - 28) ** 2)
    scores[1] = np.where(r <= 9, 0.9 - 0.2 * np.cos(r), 0.0)  # a flat-topped, bumpy blob
    picks = find_picks(scores, diameters=[5, 20], localize="foreground")
    assert sorted(picks.classes.tolist()) == [1, 2]
    assert_matches(picks, [small, large], tol=3.0)


def test_scores_measured_over_the_weak_label_rank_saturated_particles():
    """A trained network's probability is 1 all through a particle it is sure of; over a ball
    inside that core every pick scores 1 and sits on a whole voxel. Measured over the reach of
    the weak label the network was taught (``label_diameters``), a particle marked as widely
    as its label outranks one marked smaller, and an off-grid centre is placed off-grid."""
    shape = (40, 40, 60)
    zz, yy, xx = np.indices(shape, dtype=float)
    scores = np.zeros((1,) + shape, np.float32)
    full, small = (20.0, 20.0, 15.5), (20.0, 20.0, 45.0)
    for (z, y, x), radius in ((full, 5.6), (small, 3.5)):
        scores[0][(zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2] = 1.0
    inner = find_picks(scores, diameters=[10])                # score ball d / 4 = 2 voxels
    assert inner.scores.tolist() == [1.0, 1.0]
    picks = find_picks(scores, diameters=[10], label_diameters=[9])
    assert picks.meta["score_radius"] == [pytest.approx(4 * np.sqrt(2))]
    x_full, x_small = sorted(picks.xyz[:, 0])
    assert abs(x_full - 15.5) < 0.35 and x_full != round(x_full) and x_small == 45.0
    by_x = dict(zip(np.round(picks.xyz[:, 0]), picks.scores))
    assert 0.9 < by_x[round(x_full)] <= 1.0 and by_x[45.0] < 0.5
    # foreground picking scores each pick with its own class's label
    two = np.concatenate([scores, np.zeros_like(scores)])
    two[:, :, :, 30:] = two[::-1, :, :, 30:]                 # the small one is class 2
    fg = find_picks(two, diameters=[10, 10], label_diameters=[9, 5], localize="foreground")
    by_class = dict(zip(fg.classes, fg.scores))
    assert by_class[1] == pytest.approx(by_x[round(x_full)])
    assert by_class[2] > by_x[45.0]                          # a 5-voxel label's reach is 2.8
