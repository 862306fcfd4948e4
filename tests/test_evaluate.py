"""Evaluation rules on small hand-computed cases."""

import builtins
import json
import math

import numpy as np
import pytest

from deepetpicker.cli import main
from deepetpicker.errors import DeepETPickerError
from deepetpicker.evaluate import (
    DistanceResult,
    OccupancyResult,
    PRCurve,
    dilate_occupancy,
    evaluate_distance,
    evaluate_folder,
    evaluate_occupancy,
    format_report,
    match_by_distance,
    pr_curve,
)
from deepetpicker.io.picks import Picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.progress import Cancelled, CancelToken


def table(rows, name="t"):
    return Picks.from_array(np.asarray(rows, dtype=np.float64), tomo_name=name)


def shrec_case():
    """Three particles (cubes of ids in the occupancy map) and five picks.

    particle 1: class 1 at x, y, z = 2, 2, 2;  particle 2: class 2 at 8, 6, 5;
    particle 3: class 1 at 12, 10, 8.
    picks: a hits 1, b hits 1 again, c (class 1) hits particle 2 (class 2),
    d lands in the background, e lies outside the volume (x = 20) and is clamped into the
    background.
    """
    occ = np.zeros((10, 12, 14), np.int32)
    occ[1:4, 1:4, 1:4] = 1
    occ[4:7, 5:8, 7:10] = 2
    occ[7:10, 9:12, 11:14] = 3
    truth = table([[1, 2, 2, 2], [2, 8, 6, 5], [1, 12, 10, 8]])
    pred = table([[1, 2.4, 1.6, 2.2, 0.9],
                  [1, 3, 3, 3, 0.8],
                  [1, 8, 7, 6, 0.7],
                  [2, 5, 10, 1, 0.6],
                  [2, 20, 5, 5, 0.5]])
    return pred, truth, occ


def test_occupancy_rule_counts_and_rates():
    pred, truth, occ = shrec_case()
    r = evaluate_occupancy(pred, truth, occ)
    assert (r.rr, r.tp, r.fp, r.fn, r.mh, r.ro) == (5, 2, 2, 1, 1, 1)
    assert r.n_truth == 3 and r.num_cls == 2
    # first hits: a at voxel (2, 2, 2) -> distance 0; c at (8, 7, 6) -> sqrt(2) from (8, 6, 5)
    assert r.ad == pytest.approx(math.sqrt(2) / 2)
    assert r.precision == pytest.approx(2 / 5)        # TP / RR: the double hit costs
    assert r.recall == pytest.approx(2 / 3)
    assert r.f1 == pytest.approx(0.5)
    assert r.miss_rate == pytest.approx(1 / 3)


def test_occupancy_rule_confusion_and_per_class_scores():
    pred, truth, occ = shrec_case()
    r = evaluate_occupancy(pred, truth, occ)
    # rows: true class 1, 2; columns: first pick's class 0 (not found), 1, 2
    assert r.confusion == [[1, 1, 0], [0, 1, 0]]
    c1, c2 = r.per_class
    assert (c1.tp, c1.fp, c1.fn) == (1, 1, 1)
    assert c1.precision == c1.recall == c1.f1 == pytest.approx(0.5)
    assert (c2.tp, c2.fp, c2.fn) == (0, 0, 1)
    assert c2.precision is None and c2.recall == 0.0 and c2.f1 == 0.0
    assert r.mean_class_f1 == pytest.approx(0.25)
    # the class's own picks: a, b, c found particle 1 only (c hit a class-2 particle)
    assert (c1.n_pred, c1.n_truth, c1.pick_tp) == (3, 2, 1)
    assert c1.pick_precision == pytest.approx(1 / 3)
    assert c1.pick_recall == pytest.approx(1 / 2)
    assert c1.pick_f1 == pytest.approx(0.4)
    assert (c2.fp_background, c2.pick_f1) == (2, 0.0)
    text = format_report(r)
    assert "Occupancy rule" in text and "0.400" in text and "confusion" in text


def test_occupancy_rule_empty_picks_and_default_dilation():
    pred, truth, occ = shrec_case()
    beside = table([[1, 10, 10, 8, 0.5]])          # touches particle 3's cube face
    official = evaluate_occupancy(beside, truth, occ)
    assert official.tp == 1 and official.dilated
    plain = evaluate_occupancy(beside, truth, occ, dilate=False)
    assert plain.tp == 0 and not plain.dilated
    empty = evaluate_occupancy(Picks.empty(), truth, occ)
    assert (empty.rr, empty.tp, empty.fn, empty.precision, empty.ad) == \
        (0, 0, 3, 0.0, None)


# --------------------------------------------------------------------------------------------
# The SHREC 2021 script's rule on its edge cases
# --------------------------------------------------------------------------------------------
def edge_case():
    """Four particles (cubes of ids) in a (z, y, x) = (8, 10, 16) volume.

    particle 1, class 1: x, y, z in 2..4 (centre 3, 3, 3)
    particle 2, class 2: x 5..7, y, z 2..4 (centre 6, 3, 3): touches particle 1 at x = 4 | 5
    particle 3, class 1: x 9..11, y, z 2..4 (centre 10, 3, 3): one background voxel (x = 8)
        between it and particle 2
    particle 4, class 2: x 12..14, y 6..8, z 5..7 (centre 13, 7, 6): x = 15, the volume's last
        column, is background
    """
    occ = np.zeros((8, 10, 16), np.int32)
    occ[2:5, 2:5, 2:5] = 1
    occ[2:5, 2:5, 5:8] = 2
    occ[2:5, 2:5, 9:12] = 3
    occ[5:8, 6:9, 12:15] = 4
    truth = table([[1, 3, 3, 3], [2, 6, 3, 3], [1, 10, 3, 3], [2, 13, 7, 6]])
    return truth, occ


EDGE_PICKS = {   # (class, x, y, z): where the official rule puts it, where a plain lookup does
    "touching": [1, 4, 3, 3],        # particle 1's face voxel next to particle 2: 2 | 1
    "between": [1, 8, 3, 3],         # background next to particles 2 and 3: 3 | 0
    "beside": [1, 12, 4, 3],         # one voxel outside particle 3's face: 3 | 0
    "diagonal": [1, 12, 1, 3],       # edge-diagonal to particle 3, not face: 0 | 0
    "half": [1, 12.5, 2, 3],         # rounds half to even, to x = 12 (beside 3): 3 | 0
    "outside": [2, 17.2, 7, 6],      # beyond the volume, clamped to x = 15 (beside 4): 4 | 0
}


def hit(name, dilate=True):
    """The particle (1-based, 0 = background) one edge-case pick lands on, and its result."""
    truth, occ = edge_case()
    r = evaluate_occupancy(table([EDGE_PICKS[name]]), truth, occ, dilate=dilate)
    particle = 0
    if r.tp:
        # the hit particle's class and the distance to its centre identify it here
        found = [c for c, row in enumerate(r.confusion, 1) if sum(row[1:])]
        centres = {1: [(3, 3, 3), (10, 3, 3)], 2: [(6, 3, 3), (13, 7, 6)]}[found[0]]
        voxel = np.clip(np.rint(EDGE_PICKS[name][1:]), 0, [15, 9, 7])
        dist = [np.linalg.norm(voxel - c) for c in centres]
        assert min(dist) == pytest.approx(r.ad)
        particle = {(3, 3, 3): 1, (10, 3, 3): 3, (6, 3, 3): 2, (13, 7, 6): 4}[
            centres[int(np.argmin(dist))]]
    return particle, r


def test_official_rule_pick_one_voxel_outside_a_particle_hits_it():
    assert hit("beside")[0] == 3 and hit("beside", dilate=False)[0] == 0
    # the structuring element is the 6-connected cross: an edge-diagonal neighbour misses
    assert hit("diagonal")[0] == 0
    particle, r = hit("beside")
    assert (r.tp, r.fp, r.fn, r.ad) == (1, 0, 3, pytest.approx(math.sqrt(5)))


def test_official_rule_where_two_particles_touch_the_larger_id_wins():
    # on particle 1's own face voxel, particle 2's dilation wins: the pick finds particle 2
    assert hit("touching")[0] == 2 and hit("touching", dilate=False)[0] == 1
    # a background voxel between particles 2 and 3 goes to 3
    assert hit("between")[0] == 3 and hit("between", dilate=False)[0] == 0
    _, r = hit("touching")
    assert r.confusion == [[2, 0, 0], [1, 1, 0]]    # particle 2 found as class 1


def test_official_rule_rounds_half_to_even_into_the_dilated_layer():
    # x = 12.5 rounds to 12 (as Python's round), beside particle 3; 13 would miss it
    particle, r = hit("half")
    assert particle == 3 and r.ro == 0
    assert hit("half", dilate=False)[0] == 0
    truth, occ = edge_case()
    up = evaluate_occupancy(table([[1, 13, 2, 3]]), truth, occ)
    assert up.tp == 0 and up.fp == 1


def test_official_rule_clamps_picks_outside_the_volume_and_counts_them():
    particle, r = hit("outside")
    assert particle == 4 and (r.ro, r.tp, r.fp) == (1, 1, 0)
    assert r.ad == pytest.approx(2.0)            # measured from the clamped voxel x = 15
    plain = hit("outside", dilate=False)[1]
    assert (plain.ro, plain.tp, plain.fp) == (1, 0, 1)
    truth, occ = edge_case()
    # -0.5 rounds to 0: inside the volume, not counted as outside; -0.6 rounds to -1: outside
    r = evaluate_occupancy(table([[1, -0.5, 3, 3], [1, -0.6, 3, 3]]), truth, occ)
    assert (r.rr, r.ro, r.fp) == (2, 1, 2)


def test_official_rule_figures_on_all_edge_cases_together():
    truth, occ = edge_case()
    pred = table([EDGE_PICKS[k] for k in ("touching", "between", "beside", "diagonal", "half",
                                          "outside")])
    official = evaluate_occupancy(pred, truth, occ)
    assert (official.rr, official.tp, official.fp, official.fn, official.mh,
            official.ro) == (6, 3, 1, 1, 1, 1)
    assert official.ad == pytest.approx(2.0)
    assert (official.precision, official.recall, official.f1) == \
        (pytest.approx(0.5), pytest.approx(0.75), pytest.approx(0.6))
    assert official.confusion == [[1, 1, 0], [0, 1, 1]]
    plain = evaluate_occupancy(pred, truth, occ, dilate=False)
    assert (plain.tp, plain.fp, plain.fn, plain.mh, plain.ro) == (1, 5, 3, 0, 1)
    assert plain.f1 == pytest.approx(0.2) and plain.ad == pytest.approx(1.0)
    assert "dilated by one voxel" in format_report(official)
    assert "without dilation" in format_report(plain)


def test_skip_classes_leave_particles_out_of_the_truth_but_not_out_of_the_picks():
    truth, occ = edge_case()
    pred = table([EDGE_PICKS[k] for k in ("touching", "between", "beside", "diagonal", "half",
                                          "outside")])
    r = evaluate_occupancy(pred, truth, occ, skip_classes=[2])
    # "touching" and "outside" land on class-2 particles: neither hits nor false positives,
    # but they stay among the picks reported
    assert (r.n_truth, r.rr, r.tp, r.fp, r.fn, r.mh) == (2, 6, 1, 1, 1, 1)
    assert r.skipped_hits == 2 and r.skipped_classes == [2]
    assert (r.precision, r.recall, r.f1) == \
        (pytest.approx(1 / 6), pytest.approx(0.5), pytest.approx(0.25))
    assert r.confusion == [[1, 1, 0], [0, 0, 0]]
    assert r.per_class[1].skipped and r.per_class[1].n_truth == 0
    text = format_report(r)
    assert "left out of the truth: class 2;" in text and "skipped" in text
    # a particle whose first pick carries a skipped class counts as found, classified as 0
    first_skipped = table([[2, 10, 3, 3], [1, 10, 3, 3]])
    r = evaluate_occupancy(first_skipped, truth, occ, skip_classes=[2])
    assert r.tp == 1 and r.confusion[0] == [2, 0, 0]
    with pytest.raises(DeepETPickerError, match="skip class 0"):
        evaluate_occupancy(pred, truth, occ, skip_classes=[0])
    with pytest.raises(DeepETPickerError, match="skip class 3: the dataset has 2"):
        evaluate_occupancy(pred, truth, occ, skip_classes=[3], num_cls=2)


def test_dilation_equals_the_challenge_scripts_skimage_dilation():
    morphology = pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(3)
    for shape in [(7, 9, 11), (1, 5, 6), (4, 1, 3)]:
        occ = rng.integers(0, 25, size=shape).astype(np.int32)
        occ[rng.random(shape) < 0.6] = 0
        np.testing.assert_array_equal(dilate_occupancy(occ), morphology.dilation(occ))
    truth, occ = edge_case()
    np.testing.assert_array_equal(dilate_occupancy(occ), morphology.dilation(occ))


def test_pr_curve_uses_the_official_rule_by_default():
    truth, occ = edge_case()
    pred = table([EDGE_PICKS[k] + [s] for k, s in (("touching", 0.9), ("between", 0.8),
                                                   ("outside", 0.7), ("diagonal", 0.6))])
    official = pr_curve(pred, truth, occupancy=occ)
    assert official.tp == [1, 2, 3, 3] and official.dilated
    plain = pr_curve(pred, truth, occupancy=occ, dilate=False)
    assert plain.tp == [1, 1, 1, 1] and not plain.dilated
    skipped = pr_curve(pred, truth, occupancy=occ, skip_classes=[2])
    assert skipped.tp == [0, 1, 1, 1] and skipped.n_truth == 2


def label_map(truth, occ):
    """The weak-label volume of the same particles: class ids instead of particle ids."""
    labels = np.zeros_like(occ)
    for i, c in enumerate(truth.classes, start=1):
        labels[occ == i] = c
    return labels


def test_a_class_label_map_given_as_occupancy_is_refused():
    truth, occ = edge_case()
    pred = table([EDGE_PICKS["beside"]])
    with pytest.raises(DeepETPickerError, match=r"class-label map .* 2 distinct id\(s\) "
                                                r"\(1..2\) for 4 true particles.*data_ocp"):
        evaluate_occupancy(pred, truth, label_map(truth, occ))
    # one class: every particle's label is 1
    single = Picks.from_array(np.c_[np.ones(4), truth.xyz], tomo_name="t")
    with pytest.raises(DeepETPickerError, match="class-label map"):
        evaluate_occupancy(pred, single, (occ > 0).astype(np.int32))
    # a real occupancy map of as few particles as classes is accepted
    two = table([[1, 3, 3, 3], [2, 6, 3, 3]])
    ok = evaluate_occupancy(table([[1, 3, 3, 3]]), two, np.where(occ <= 2, occ, 0))
    assert ok.tp == 1


def test_occupancy_rule_errors_name_the_problem():
    pred, truth, occ = shrec_case()
    occ[0, 0, 0] = 7
    with pytest.raises(DeepETPickerError, match=r"particle id 7 .* has 3 particle\(s\)"):
        evaluate_occupancy(pred, truth, occ)
    occ[0, 0, 0] = 0
    with pytest.raises(DeepETPickerError, match="class 2 in the prediction .* 1 class"):
        evaluate_occupancy(pred, truth.of_class(1), np.minimum(occ, 0), num_cls=1)
    with pytest.raises(DeepETPickerError, match="not a 3-D"):
        evaluate_occupancy(pred, truth, occ[0])


def distance_case():
    truth = table([[1, 0, 0, 0], [1, 10, 0, 0], [2, 0, 20, 0]])
    pred = table([[1, 1, 0, 0, 0.9],       # 1 from particle 1
                  [1, 1.5, 0, 0, 0.95],    # 1.5 from particle 1: a duplicate
                  [1, 11.8, 0, 0, 0.8],    # 1.8 from particle 2
                  [1, 30, 0, 0, 0.7],      # nothing near
                  [2, 0, 22.5, 0, 0.6],    # 2.5 from particle 3 (class 2 limit: 3)
                  [1, 0, 20, 0, 0.5]])     # on particle 3 but the wrong class
    return pred, truth


def test_distance_rule_hand_computed():
    pred, truth = distance_case()
    r = evaluate_distance(pred, truth, radii=[4, 6], fraction=0.5, beta=4)
    c1, c2 = r.per_class
    assert (c1.tp, c1.fp, c1.fn, c1.max_distance) == (2, 3, 0, 2.0)
    assert c1.precision == pytest.approx(0.4) and c1.recall == 1.0
    assert c1.f1 == pytest.approx(2 * 0.4 / 1.4)
    assert c1.f_beta == pytest.approx(17 * 0.4 / (16 * 0.4 + 1))
    assert c1.mean_distance == pytest.approx((1 + 1.8) / 2)   # the nearer duplicate wins
    assert (c2.tp, c2.fp, c2.fn) == (1, 0, 0) and c2.f1 == 1.0
    assert (r.tp, r.fp, r.fn) == (3, 3, 0)
    assert r.precision == pytest.approx(0.5) and r.recall == 1.0
    assert r.f1 == pytest.approx(2 / 3)
    assert r.f_beta == pytest.approx(17 * 0.5 / (16 * 0.5 + 1))
    assert r.macro_f1 == pytest.approx((2 * 0.4 / 1.4 + 1) / 2)
    # a tighter radius fraction loses the 1.8 and 2.5 matches
    tight = evaluate_distance(pred, truth, radii=[4, 6], fraction=0.4)
    assert tight.tp == 1
    assert "Distance rule" in format_report(r) and "F4" in format_report(r)


def test_optimal_matching_beats_greedy_when_a_pick_could_take_either_particle():
    true_xyz = np.array([[0, 0, 0], [3, 0, 0]], float)
    pred_xyz = np.array([[1.6, 0, 0], [4.5, 0, 0]], float)
    scores = np.array([0.9, 0.5])
    optimal = match_by_distance(pred_xyz, true_xyz, 2.0, scores)
    greedy = match_by_distance(pred_xyz, true_xyz, 2.0, scores, matching="greedy")
    assert [(p, t) for p, t, _ in optimal] == [(0, 0), (1, 1)]
    assert [(p, t) for p, t, _ in greedy] == [(0, 1)]        # the best pick takes the nearer
    assert match_by_distance(pred_xyz, np.zeros((0, 3)), 2.0) == []


def test_distance_rule_needs_radii_per_class():
    pred, truth = distance_case()
    with pytest.raises(DeepETPickerError, match=r"radius/diameter has 2 value\(s\) \(4, 6\) for 3"):
        evaluate_distance(pred, truth, radii=[4, 6], num_cls=3)
    one_for_all = evaluate_distance(pred, truth, radii=4)      # one number serves every class
    assert [c.max_distance for c in one_for_all.per_class] == [2.0, 2.0]
    with pytest.raises(DeepETPickerError, match="positive"):
        evaluate_distance(pred, truth, radii=[4, 0])


def test_pr_curve_occupancy_rule_hand_computed(tmp_path):
    pred, truth, occ = shrec_case()
    curve = pr_curve(pred, truth, occupancy=occ, out=tmp_path / "pr")
    # by score: a (new hit), b (second hit), c (new hit), d and e (background)
    assert curve.thresholds == [0.9, 0.8, 0.7, 0.6, 0.5]
    np.testing.assert_allclose(curve.precision, [1, 0.5, 2 / 3, 0.5, 0.4])
    np.testing.assert_allclose(curve.recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert curve.ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    assert curve.best.threshold == 0.7 and curve.best.f1 == pytest.approx(2 / 3)
    lines = (tmp_path / "pr.csv").read_text().splitlines()
    assert lines[0] == "threshold,precision,recall,f1,n_picks,tp"
    assert lines[3].split(",")[:3] == ["0.7", "0.666667", "0.666667"]
    assert curve.png == tmp_path / "pr.png" and (tmp_path / "pr.png").stat().st_size > 1000


def test_pr_curve_groups_equal_scores_and_pools_tomograms():
    pred, truth, occ = shrec_case()
    tied = pred.copy()
    tied.scores[:] = [0.9, 0.7, 0.7, 0.6, 0.6]
    curve = pr_curve([tied, tied], [truth, truth], occupancy=[occ, occ])
    assert curve.thresholds == [0.9, 0.7, 0.6]
    assert curve.n_picks == [2, 6, 10] and curve.tp == [2, 4, 4]
    assert curve.n_truth == 6


def test_pr_curve_distance_rule_and_without_matplotlib(tmp_path, monkeypatch):
    pred, truth = distance_case()
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    curve = pr_curve(pred, truth, radii=[4, 6], out=tmp_path / "curve.csv")
    # by score: 0.95 (new), 0.9 (duplicate), 0.8 (new), 0.7 (FP), 0.6 (new, class 2), 0.5 (FP)
    assert curve.tp == [1, 1, 2, 2, 3, 3]
    assert curve.recall[-1] == 1.0 and curve.precision[-1] == 0.5
    assert curve.png is None and (tmp_path / "curve.csv").exists()
    assert not (tmp_path / "curve.png").exists()
    with pytest.raises(DeepETPickerError, match="no scores"):
        pr_curve(Picks(pred.classes, pred.xyz), truth, radii=[4, 6])


def test_evaluate_folder_writes_json_and_table(tmp_path):
    pred, truth, occ = shrec_case()
    pred_dir, truth_dir, occ_dir, out = (tmp_path / n for n in ("pred", "truth", "ocp", "out"))
    for stem in ("tomo_a", "tomo_b"):
        write_picks(pred_dir / f"{stem}.coords", pred)
        write_picks(truth_dir / f"{stem}.coords", truth)
        write_tomogram(occ_dir / f"{stem}.mrc", occ.astype(np.float32))
    write_picks(pred_dir / "stray.coords", pred)
    report = evaluate_folder(pred_dir, truth_dir, occupancy_dir=occ_dir, diameters=[8, 12],
                             out=out)
    assert report.tomograms == ["tomo_a", "tomo_b"] and report.unmatched == ["stray"]
    assert (report.occupancy.rr, report.occupancy.tp, report.occupancy.mh) == (10, 4, 2)
    assert report.occupancy.precision == pytest.approx(0.4)
    assert report.occupancy.confusion == [[2, 2, 0], [0, 2, 0]]
    assert report.occupancy.per_class[0].pick_f1 == pytest.approx(0.4)
    assert report.distance.n_truth == 6
    data = json.loads((out / "evaluation.json").read_text())
    assert data["occupancy"]["TP"] == 4 and data["per_tomogram"]["tomo_b"]["occupancy"]["FP"] == 2
    text = (out / "evaluation.txt").read_text()
    assert "Occupancy rule" in text and "Distance rule" in text and "stray" in text
    assert (out / "pr_curve.csv").exists()
    assert "tomo_a, tomo_b" in report.summary()


def shrec_folders(tmp_path, stems=("tomo_a", "tomo_b")):
    """The SHREC case once per stem: prediction, truth and occupancy folders."""
    pred, truth, occ = shrec_case()
    for i, stem in enumerate(stems):
        # each tomogram loses a different number of its last picks: its own scores
        write_picks(tmp_path / "pred" / f"{stem}.coords", pred.select(np.arange(5 - i)))
        write_picks(tmp_path / "truth" / f"{stem}.coords", truth)
        write_tomogram(tmp_path / "ocp" / f"{stem}.mrc", occ.astype(np.float32))
    return tmp_path / "pred", tmp_path / "truth", tmp_path / "ocp"


def test_folder_results_are_typed_and_their_dict_is_the_json_written(tmp_path):
    pred_dir, truth_dir, occ_dir = shrec_folders(tmp_path)
    result = evaluate_folder(pred_dir, truth_dir, occupancy_dir=occ_dir, diameters=[8, 12],
                             out=tmp_path / "out")
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert result.to_dict() == written
    a, b = result.per_tomogram["tomo_a"], result.per_tomogram["tomo_b"]
    assert isinstance(a.occupancy, OccupancyResult) and isinstance(b.distance, DistanceResult)
    assert isinstance(result.curve, PRCurve)
    # tomo_b lacks the background pick outside the volume: one false positive less
    assert (a.occupancy.rr, a.occupancy.fp, a.occupancy.ro) == (5, 2, 1)
    assert (b.occupancy.rr, b.occupancy.fp, b.occupancy.ro) == (4, 1, 0)
    assert (result.occupancy.rr, result.occupancy.fp, result.occupancy.tp) == (9, 3, 4)
    assert written["per_tomogram"]["tomo_b"]["occupancy"]["FP"] == b.occupancy.fp == 1
    assert written["occupancy"]["per_class"][0] == result.occupancy.per_class[0].to_dict()
    assert written["occupancy"]["per_class"][0]["pick_TP"] == 2
    assert written["pr_curve"]["csv"] == str(tmp_path / "out" / "pr_curve.csv")
    # the distance rule alone: no occupancy entries, and still what the file holds
    only = evaluate_folder(pred_dir, truth_dir, diameters=[8, 12], out=tmp_path / "dist")
    assert only.to_dict() == json.loads((tmp_path / "dist" / "evaluation.json").read_text())
    assert "occupancy" not in only.per_tomogram["tomo_a"].to_dict()
    assert only.occupancy is None and only.to_dict()["occupancy"] is None


def test_folder_evaluation_reports_each_tomogram_and_stops_when_cancelled(tmp_path):
    pred_dir, truth_dir, occ_dir = shrec_folders(tmp_path, ("tomo_a", "tomo_b", "tomo_c"))
    events = []
    result = evaluate_folder(pred_dir, truth_dir, occupancy_dir=occ_dir, diameters=[8, 12],
                             progress=events.append)
    assert {e.stage for e in events} == {"evaluate"}
    assert [(e.done, e.total, e.item) for e in events] == [
        (0, 3, "tomo_a"), (1, 3, "tomo_a"), (1, 3, "tomo_b"), (2, 3, "tomo_b"),
        (2, 3, "tomo_c"), (3, 3, "tomo_c")]
    finished = [e for e in events if e.metrics]
    for event, stem in zip(finished, ("tomo_a", "tomo_b", "tomo_c")):
        scores = result.per_tomogram[stem]
        assert event.metrics == {"F1": scores.occupancy.f1, "distance_F1": scores.distance.f1}
        assert event.message.startswith(f"{stem}: F1 {scores.occupancy.f1:.3f}")
    assert [e.metrics["F1"] for e in finished] == pytest.approx([0.5, 4 / 7, 2 / 3])

    token, seen = CancelToken(), []

    def cancel_after_first(event):
        seen.append((event.done, event.item))
        if event.done == 1:
            token.cancel()

    out = tmp_path / "out"
    with pytest.raises(Cancelled, match="cancelled"):
        evaluate_folder(pred_dir, truth_dir, occupancy_dir=occ_dir, out=out,
                        progress=cancel_after_first, cancel=token)
    assert seen == [(0, "tomo_a"), (1, "tomo_a")]       # tomo_b was never started
    assert not (out / "evaluation.json").exists() and not (out / "evaluation.txt").exists()


def test_cli_evaluate_shows_progress_per_tomogram(tmp_path, capsys):
    pred_dir, truth_dir, occ_dir = shrec_folders(tmp_path)
    assert main(["evaluate", "--pred", str(pred_dir), "--truth", str(truth_dir),
                 "--occupancy", str(occ_dir)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0].startswith("evaluate  [") and "0/2  tomo_a" in lines[0]
    assert lines[-1].startswith("evaluate  [") and lines[-1].endswith("2/2  tomo_b  F1=0.5714")
    assert "Evaluated 2 tomogram(s): tomo_a, tomo_b" in captured.out


def test_evaluate_folder_never_replaces_a_users_file_or_an_input(tmp_path):
    pred, truth, _ = shrec_case()
    write_picks(tmp_path / "pred" / "a.coords", pred)
    write_picks(tmp_path / "truth" / "a.coords", truth)
    out = tmp_path / "out"
    out.mkdir()
    (out / "evaluation.txt").write_text("my notes\n")
    for overwrite in (False, True):
        with pytest.raises(DeepETPickerError, match="evaluation.txt was not written by "
                                                    "DeepETPicker"):
            evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12], out=out,
                            overwrite=overwrite)
    assert (out / "evaluation.txt").read_text() == "my notes\n"
    assert not (out / "evaluation.json").exists()
    # the truth folder as --out: its files are inputs and are never replaced
    write_picks(tmp_path / "truth" / "evaluation.txt", truth)
    with pytest.raises(DeepETPickerError, match="not written by DeepETPicker"):
        evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12],
                        out=tmp_path / "truth", overwrite=True)
    # an earlier evaluation: the same again is fine, other picks need --overwrite
    (out / "evaluation.txt").unlink()
    evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12], out=out)
    evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12], out=out)
    write_picks(tmp_path / "pred" / "a.coords", truth)
    with pytest.raises(DeepETPickerError, match="earlier DeepETPicker run.*--overwrite"):
        evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12], out=out)
    report = evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8, 12], out=out,
                             overwrite=True)
    assert report.distance.f1 == 1.0
    assert json.loads((out / "evaluation.json").read_text())["distance"]["F1"] == 1.0


def test_evaluate_folder_clear_errors(tmp_path):
    pred, truth, occ = shrec_case()
    write_picks(tmp_path / "pred" / "a.coords", pred)
    write_picks(tmp_path / "truth" / "b.coords", truth)
    (tmp_path / "ocp").mkdir()
    with pytest.raises(DeepETPickerError, match="Nothing to evaluate"):
        evaluate_folder(tmp_path / "pred", tmp_path / "truth")
    with pytest.raises(DeepETPickerError, match="No prediction file .* same name"):
        evaluate_folder(tmp_path / "pred", tmp_path / "truth", diameters=[8])
    write_picks(tmp_path / "truth" / "a.coords", truth)
    with pytest.raises(DeepETPickerError, match="No occupancy map for a .* a.mrc"):
        evaluate_folder(tmp_path / "pred", tmp_path / "truth", occupancy_dir=tmp_path / "ocp")
    # two single files are a pair whatever their names
    single = evaluate_folder(tmp_path / "pred" / "a.coords", tmp_path / "truth" / "b.coords",
                             diameters=[8, 12])
    assert single.distance.n_pred == 5


# --------------------------------------------------------------------------------------------
# The evaluate command
# --------------------------------------------------------------------------------------------
def edge_folders(tmp_path, occupancy=None):
    truth, occ = edge_case()
    pred = table([EDGE_PICKS[k] + [0.9 - 0.1 * i] for i, k in enumerate(
        ("touching", "between", "beside", "diagonal", "half", "outside"))])
    write_picks(tmp_path / "pred" / "tomo.coords", pred)
    write_picks(tmp_path / "truth" / "tomo.coords", truth)
    maps = occ if occupancy is None else occupancy(truth, occ)
    write_tomogram(tmp_path / "ocp" / "tomo.mrc", maps.astype(np.float32))
    return [str(tmp_path / n) for n in ("pred", "truth", "ocp")]


def test_evaluate_folder_uses_the_official_rule_by_default(tmp_path):
    pred, truth, ocp = edge_folders(tmp_path)
    report = evaluate_folder(pred, truth, occupancy_dir=ocp, out=tmp_path / "out")
    assert (report.occupancy.tp, report.occupancy.fp, report.occupancy.f1) == \
        (3, 1, pytest.approx(0.6))
    assert report.occupancy.dilated and report.curve.dilated
    assert report.curve.tp[-1] == 3
    assert "dilated by one voxel" in (tmp_path / "out" / "evaluation.txt").read_text()
    plain = evaluate_folder(pred, truth, occupancy_dir=ocp, dilate=False)
    assert (plain.occupancy.tp, plain.curve.tp[-1]) == (1, 1)


def test_cli_evaluate_official_rule_no_dilate_and_skip_classes(tmp_path, capsys):
    pred, truth, ocp = edge_folders(tmp_path)
    args = ["evaluate", "--pred", pred, "--truth", truth, "--occupancy", ocp]
    assert main(args + ["--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "SHREC 2021, maps dilated by one voxel (6-connected)" in text
    data = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert (data["occupancy"]["TP"], data["occupancy"]["F1"]) == (3, pytest.approx(0.6))
    assert main(args + ["--no-dilate", "--out", str(tmp_path / "plain")]) == 0
    assert "plain lookup without dilation (--no-dilate" in capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "evaluation.json").read_text())
    assert (plain["occupancy"]["TP"], plain["occupancy"]["F1"]) == (1, pytest.approx(0.2))
    assert main(args + ["--skip-classes", "2", "--out", str(tmp_path / "skip")]) == 0
    assert "left out of the truth: class 2;" in capsys.readouterr().out
    skip = json.loads((tmp_path / "skip" / "evaluation.json").read_text())["occupancy"]
    assert (skip["n_truth"], skip["TP"], skip["skipped_hits"]) == (2, 1, 2)


def test_cli_evaluate_refuses_a_beta_that_is_not_positive_before_any_work(tmp_path, capsys):
    missing = str(tmp_path / "nothing_here")
    for beta in ("-1", "0"):
        code = main(["evaluate", "--pred", missing, "--truth", missing, "--diameters", "8",
                     "--beta", beta])
        err = capsys.readouterr().err
        assert code == 2 and f"beta = {beta}:" in err and "--beta 4" in err
        assert "nothing_here" not in err            # refused before looking at any file
    with pytest.raises(DeepETPickerError, match=r"beta = -1.*--beta 4"):
        evaluate_distance(*distance_case(), radii=[4, 6], beta=-1)


def test_cli_evaluate_names_a_missing_occupancy_folder(tmp_path, capsys):
    pred, truth, _ = edge_folders(tmp_path)
    missing = tmp_path / "data_ocpp"
    assert main(["evaluate", "--pred", pred, "--truth", truth, "--occupancy",
                 str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"Occupancy folder not found: {missing}" in err and "data_ocp/" in err
    assert "Tomogram folder" not in err


def test_cli_evaluate_refuses_a_label_map_given_as_occupancy(tmp_path, capsys):
    pred, truth, ocp = edge_folders(tmp_path, occupancy=label_map)
    assert main(["evaluate", "--pred", pred, "--truth", truth, "--occupancy", ocp]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "ocp" / "tomo.mrc") in err
    assert "class-label map" in err and "--occupancy <base>/data_ocp" in err
