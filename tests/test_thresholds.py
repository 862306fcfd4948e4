"""Detection thresholds tuned per class on validation picks for the best localisation F1,
and applied when picking."""

import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.matching import best_detection_thresholds, localisation_hits, ranked_hits
from deepetpicker.picking.settings import PickSettings, apply_min_score


def _picks(rows, scores=None):
    rows = np.asarray(rows, float)
    return Picks(rows[:, 0].astype(int), rows[:, 1:4],
                 None if scores is None else np.asarray(scores, float))


TRUTH = _picks([[1, 10, 10, 10], [1, 30, 30, 30], [1, 50, 50, 50], [2, 10, 40, 10]])


def test_ranked_hits_match_in_score_order():
    # two picks on one particle: the higher-scoring one takes it, the other is a miss
    pred = _picks([[1, 10, 10, 11], [1, 10, 11, 10], [1, 80, 80, 80]], [0.4, 0.9, 0.7])
    scores, hits = ranked_hits(pred, TRUTH.of_class(1), max_distance=2.5)
    assert scores.tolist() == [0.9, 0.7, 0.4] and hits.tolist() == [True, False, False]


def test_one_class_the_threshold_with_the_best_f1_over_tomograms():
    # three true picks (0.9, 0.8, 0.6) and two false ones (0.7, 0.2), split over two
    # tomograms; keeping the top 4 (>= 0.6) gives F1 2*3/(4+3) = 0.857, keeping all
    # 2*3/(5+3) = 0.75, keeping the top 2: 2*2/(2+3) = 0.8
    first = _picks([[1, 10, 10, 10], [1, 70, 70, 70], [1, 30, 30, 30]], [0.9, 0.7, 0.8])
    second = _picks([[1, 50, 50, 50], [1, 90, 90, 90]], [0.6, 0.2])
    truth_first = TRUTH.select(np.array([0, 1]))
    truth_second = TRUTH.select(np.array([2]))
    (one,) = best_detection_thresholds([first, second], [truth_first, truth_second],
                                       radii=5, num_cls=1, tolerance=0)
    assert one.class_id == 1 and one.threshold == pytest.approx(0.4)     # between 0.6 and 0.2
    assert one.f1 == pytest.approx(6 / 7) and one.f1_all == pytest.approx(0.75)
    assert (one.n_pred, one.n_truth) == (4, 3)
    # three particles cannot tell 0.857 from 0.75 (one particle is worth 1/3): keep every pick
    (loose,) = best_detection_thresholds([first, second], [truth_first, truth_second],
                                         radii=5, num_cls=1)
    assert loose.threshold == 0.0 and loose.f1 == pytest.approx(0.75) and loose.n_pred == 5


def test_a_found_particle_given_another_class_is_kept():
    """Thresholds are chosen on localisation: a pick on a particle counts whatever class it
    names, so a class whose picks all sit on particles of another class keeps them (tuned on
    class F1 it would lose every one)."""
    truth = TRUTH.of_class(1)                       # three particles of class 1
    pred = _picks([[1, 10, 10, 10], [1, 30, 30, 30], [2, 50, 50, 50], [2, 90, 90, 90],
                   [3, 70, 70, 70]], [0.9, 0.8, 0.7, 0.3, 0.95])
    one, two, three = best_detection_thresholds([pred], [truth], radii=5, num_cls=3,
                                                tolerance=0)
    assert (one.threshold, one.n_pred) == (0.0, 2)
    assert two.threshold == pytest.approx(0.5) and two.n_pred == 1     # the hit at 0.7 kept
    assert three.n_pred == 0 and three.threshold == pytest.approx(0.975)  # a lone false pick
    assert one.f1 == two.f1 == pytest.approx(1.0)        # all three particles, nothing else
    assert one.f1_all == pytest.approx(2 * 3 / (5 + 3))
    assert (one.n_truth, two.n_truth, three.n_truth) == (3, 0, 0)
    kept = apply_min_score(pred, [c.threshold for c in (one, two, three)], num_cls=3)
    assert sorted(kept.scores.tolist()) == [0.7, 0.8, 0.9]


def test_a_particle_counts_within_its_own_class_radius():
    # a class-2 particle of radius 10: a class-1 pick 4 voxels off finds it (within half of
    # its radius), though class 1's own radius (2) would be too small
    truth = _picks([[2, 40, 40, 40]])
    pred = _picks([[1, 44, 40, 40]], [0.9])
    assert localisation_hits(pred, truth, radii=[2, 10], num_cls=2).tolist() == [True]
    assert localisation_hits(pred, truth, radii=[10, 2], num_cls=2).tolist() == [False]


def test_the_joint_thresholds_are_the_best_of_every_combination():
    """Dinkelbach's iteration finds the per-class thresholds with the highest pooled F1:
    compared with trying every combination on random picks of two classes."""
    import itertools

    rng = np.random.default_rng(3)
    for trial in range(25):
        truth = _picks(np.c_[rng.integers(1, 3, 8), rng.uniform(0, 200, (8, 3))])
        # picks on six different particles (as after de-duplication) and six elsewhere
        on = truth.xyz[rng.permutation(8)[:6]] + rng.normal(0, 0.5, (6, 3))
        off = rng.uniform(0, 200, (6, 3))
        xyz = np.r_[on, off]
        pred = Picks(rng.integers(1, 3, 12), xyz, rng.uniform(0, 1, 12).round(3))
        choices = best_detection_thresholds([pred], [truth], radii=6, num_cls=2, tolerance=0)
        cuts = [np.r_[np.unique(pred.scores[pred.classes == c]), 2.0] for c in (1, 2)]
        best = 0.0
        for a, b in itertools.product(*cuts):
            keep = np.where(pred.classes == 1, pred.scores >= a, pred.scores >= b)
            # matching the kept picks alone can only find more than the ranked hits say
            tp = int(localisation_hits(pred.select(keep), truth, 6, 2).sum())
            best = max(best, 2 * tp / (int(keep.sum()) + len(truth)))
        kept = apply_min_score(pred, [c.threshold for c in choices], num_cls=2)
        got = 2 * int(localisation_hits(kept, truth, 6, 2).sum()) / (len(kept) + len(truth))
        assert got == pytest.approx(choices[0].f1), trial
        assert choices[0].f1 == pytest.approx(best), trial


def test_ties_keep_the_lower_threshold_and_equal_scores_are_not_split():
    truth = TRUTH.of_class(1)
    # top pick right, then two false picks with the same score, then two right ones:
    # keeping 1 -> 2/4 = 0.5, keeping 3 -> 2/6, keeping 5 -> 6/8 = 0.75 (best: keep all)
    pred = _picks([[1, 10, 10, 10], [1, 70, 70, 70], [1, 90, 90, 90], [1, 30, 30, 30],
                   [1, 50, 50, 50]], [0.9, 0.5, 0.5, 0.3, 0.3])
    (choice,) = best_detection_thresholds([pred], [truth], radii=5, num_cls=1)
    assert choice.threshold == 0.0 and choice.f1 == pytest.approx(0.75)
    # one right pick at 0.9 and one false at 0.2: equal F1 would be 0.5 and 0.4, so cut
    pred = _picks([[1, 10, 10, 10], [1, 70, 70, 70]], [0.9, 0.2])
    (choice,) = best_detection_thresholds([pred], [truth], radii=5, num_cls=1, tolerance=0)
    assert choice.threshold == pytest.approx(0.55) and choice.n_pred == 1


def test_thresholds_keep_more_picks_while_within_one_particle_of_the_best():
    """Ten validation particles cannot tell F1 values less than one particle (1/10) apart:
    the threshold is lowered from the best to keep a particle found with a low score, and
    not so far that the F1 falls by more than that."""
    truth = _picks([[1, 20 * i, 10, 10] for i in range(10)])
    on = [[1, 20 * i, 10, 10] for i in range(9)]
    # nine right picks scoring 0.95-0.55, two false ones at 0.30 and 0.25, one more right
    # one at 0.20, then four false ones at 0.10
    rows = on + [[1, 300, 80, 80], [1, 340, 80, 80], [1, 180, 10, 10]] + [
        [1, 400 + 30 * i, 90, 90] for i in range(4)]
    scores = [0.95 - 0.05 * i for i in range(9)] + [0.30, 0.25, 0.20] + [0.10] * 4
    pred = _picks(rows, scores)
    (best,) = best_detection_thresholds([pred], [truth], radii=5, num_cls=1, tolerance=0)
    assert best.n_pred == 9 and best.f1 == pytest.approx(18 / 19)
    (kept,) = best_detection_thresholds([pred], [truth], radii=5, num_cls=1)
    # keeping the tenth particle costs 18/19 - 20/22 = 0.038 < 0.1; the four false picks
    # below it would cost 18/19 - 20/26 = 0.18
    assert kept.n_pred == 12 and kept.threshold == pytest.approx(0.15)
    assert kept.f1 == pytest.approx(20 / 22) and kept.f1 >= best.f1 - 0.1


def test_min_score_drops_picks_per_class_and_keeps_per_pick_meta_aligned():
    picks = _picks([[1, 1, 1, 1], [1, 2, 2, 2], [2, 3, 3, 3], [2, 4, 4, 4]],
                   [0.9, 0.3, 0.5, 0.45])
    picks.meta["class_confidence"] = np.array([0.8, 0.6, 0.7, 0.5])
    kept = apply_min_score(picks, (0.5, 0.4), num_cls=2)
    assert kept.scores.tolist() == [0.9, 0.5, 0.45]
    assert kept.meta["class_confidence"].tolist() == [0.8, 0.7, 0.5]
    assert kept.meta["min_score"] == [0.5, 0.4]
    assert len(apply_min_score(picks, 0.0, num_cls=2)) == 4
    assert apply_min_score(picks, None, num_cls=2) is picks
    with pytest.raises(DeepETPickerError, match="min_score"):
        apply_min_score(picks, (0.5, 0.4, 0.3), num_cls=2)


@pytest.mark.parametrize("value", [1.0, -0.1, "high", [0.5, 2]])
def test_bad_min_scores_are_refused_with_the_value(value):
    with pytest.raises(DeepETPickerError, match=r"min_score = .* (is outside \[0, 1\))"):
        PickSettings(min_score=value)


def test_min_score_settings_are_hashable_and_written_as_lists():
    settings = PickSettings(min_score=[0.5, 0.25])
    assert settings.min_score == (0.5, 0.25) and hash(settings)
    assert settings.to_dict()["min_score"] == [0.5, 0.25]
