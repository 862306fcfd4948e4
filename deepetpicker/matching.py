"""The distance rule: one-to-one matching of picks to true particles within a fraction of the
particle radius, with precision, recall, F1 and F-beta per class and pooled over tomograms.

As in the CZII cryo-ET benchmark, a pick matches a true particle of the same class within
``fraction * radius`` of its centre, one to one. The matching is optimal (Hungarian algorithm on
each group of mutually reachable picks and particles: the most matches, then the smallest total
distance); ``matching="greedy"`` instead lets picks in descending score order take the nearest
free particle. Reported per class and overall (counts summed over classes): precision, recall,
F1 and F-beta (beta 4 by default, which weighs recall 16 times as much as precision).

Training validation scores its picks with it and :mod:`deepetpicker.evaluate` reports it beside
the SHREC occupancy rule. Results are :class:`DistanceResult` objects; ``to_dict()`` gives the
JSON form that evaluation reports write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.values import PerClassValue, per_class


def safe_ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den else None


def prf(tp: int, n_pred: int, n_true: int, beta: Optional[float] = None
        ) -> tuple[float, float, float, Optional[float]]:
    """precision, recall, F1 and F-beta (None without ``beta``); 0 where nothing was predicted
    or nothing is true."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f_beta = _fbeta(precision, recall, beta) if beta is not None else None
    return precision, recall, _fbeta(precision, recall, 1.0), f_beta


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    den = b2 * precision + recall
    return (1 + b2) * precision * recall / den if den > 0 else 0.0


def num_classes_of(pred: Picks, truth: Picks, num_cls: Optional[int], source: str = "") -> int:
    top = max([0] + [int(t.classes.max()) for t in (pred, truth) if len(t)])
    if num_cls is None:
        return max(top, 1)
    for name, table in (("prediction", pred), ("truth", truth)):
        if len(table) and int(table.classes.max()) > num_cls:
            raise DeepETPickerError(
                f"{source or name}: class {int(table.classes.max())} in the {name} but the "
                f"dataset has {num_cls} class(es). Check num_cls or the class column.")
    return int(num_cls)


@dataclass
class DistanceClassScores:
    """One class's scores under the distance rule (one tomogram's, or pooled)."""

    class_id: int
    radius: float
    max_distance: float          # fraction * radius: the farthest a match may be
    n_truth: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    f_beta: float
    mean_distance: Optional[float]   # of the matched pairs; None without any

    def to_dict(self) -> dict:
        """The JSON form written in evaluation reports."""
        return {"class": self.class_id, "radius": self.radius,
                "max_distance": self.max_distance, "n_truth": self.n_truth,
                "n_pred": self.n_pred, "TP": self.tp, "FP": self.fp, "FN": self.fn,
                "precision": self.precision, "recall": self.recall, "F1": self.f1,
                "F_beta": self.f_beta, "mean_distance": self.mean_distance}


@dataclass
class DistanceResult:
    """The distance rule's scores of one tomogram (or pooled over several): counts summed over
    classes, ``macro_f1`` the mean F1 of the classes that have particles (None if none)."""

    rule: ClassVar[str] = "distance"

    tomo_name: Optional[str]
    num_cls: int
    fraction: float
    beta: float
    matching: str
    n_truth: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    f_beta: float
    mean_distance: Optional[float]
    macro_f1: Optional[float]
    per_class: list[DistanceClassScores] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON form written in evaluation reports."""
        return {"rule": self.rule, "tomo_name": self.tomo_name, "num_cls": self.num_cls,
                "fraction": self.fraction, "beta": self.beta, "matching": self.matching,
                "n_truth": self.n_truth, "n_pred": self.n_pred, "TP": self.tp, "FP": self.fp,
                "FN": self.fn, "precision": self.precision, "recall": self.recall,
                "F1": self.f1, "F_beta": self.f_beta, "mean_distance": self.mean_distance,
                "macro_F1": self.macro_f1, "per_class": [pc.to_dict() for pc in self.per_class]}


def _macro_f1(per_class: list[DistanceClassScores]) -> Optional[float]:
    present = [pc.f1 for pc in per_class if pc.n_truth]
    return float(np.mean(present)) if present else None


def radii_per_class(radii: PerClassValue, num_cls: int) -> np.ndarray:
    if radii is None:
        raise DeepETPickerError("The distance rule needs a particle radius (or diameter) per "
                                "class; give --diameters or an occupancy folder.")
    return np.asarray(per_class(radii, num_cls, "radius/diameter", positive=True),
                      dtype=np.float64)


def match_by_distance(pred_xyz: np.ndarray, true_xyz: np.ndarray, max_distance: float,
                      scores: Optional[np.ndarray] = None, matching: str = "optimal"
                      ) -> list[tuple[int, int, float]]:
    """One-to-one pairs ``(pick index, particle index, distance)`` within ``max_distance``.

    ``optimal``: the most pairs, then the smallest total distance (Hungarian algorithm on each
    connected group of candidate pairs). ``greedy``: picks in descending ``scores`` order
    (table order on ties) each take the nearest free particle.
    """
    from scipy.spatial import cKDTree

    pred_xyz = np.asarray(pred_xyz, np.float64).reshape(-1, 3)
    true_xyz = np.asarray(true_xyz, np.float64).reshape(-1, 3)
    if not len(pred_xyz) or not len(true_xyz):
        return []
    candidates = cKDTree(pred_xyz).sparse_distance_matrix(
        cKDTree(true_xyz), max_distance, output_type="ndarray")
    if not len(candidates):
        return []
    pi, ti, dist = candidates["i"], candidates["j"], candidates["v"]
    if matching == "greedy":
        return _greedy(pi, ti, dist, len(pred_xyz), scores)
    if matching != "optimal":
        raise ValueError(f"matching must be 'optimal' or 'greedy', not {matching!r}")
    return _optimal(pi, ti, dist, len(pred_xyz), len(true_xyz))


def _greedy(pi, ti, dist, n_pred, scores) -> list[tuple[int, int, float]]:
    scores = np.zeros(n_pred) if scores is None else np.asarray(scores, np.float64)
    by_pick = np.lexsort((dist, pi))          # candidates grouped by pick, nearest first
    pi, ti, dist = pi[by_pick], ti[by_pick], dist[by_pick]
    starts = np.searchsorted(pi, np.arange(n_pred + 1))
    taken = set()
    pairs = []
    for p in np.argsort(-scores, kind="stable"):
        for c in range(starts[p], starts[p + 1]):
            t = int(ti[c])
            if t not in taken:
                taken.add(t)
                pairs.append((int(p), t, float(dist[c])))
                break
    return pairs


def _optimal(pi, ti, dist, n_pred, n_true) -> list[tuple[int, int, float]]:
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = n_pred + n_true
    graph = coo_matrix((np.ones(len(pi)), (pi, n_pred + ti)), shape=(nodes, nodes))
    _, labels = connected_components(graph, directed=False)
    edge_group = labels[pi]
    order = np.argsort(edge_group, kind="stable")
    bounds = np.searchsorted(edge_group[order], np.unique(edge_group), side="left")
    bounds = list(bounds) + [len(order)]
    pairs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = order[a:b]
        p_ids, p_local = np.unique(pi[sel], return_inverse=True)
        t_ids, t_local = np.unique(ti[sel], return_inverse=True)
        big = (float(dist[sel].max()) + 1.0) * (min(len(p_ids), len(t_ids)) + 1)
        cost = np.full((len(p_ids), len(t_ids)), big)
        cost[p_local, t_local] = dist[sel]
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] < big:
                pairs.append((int(p_ids[r]), int(t_ids[c]), float(cost[r, c])))
    pairs.sort()
    return pairs


def evaluate_distance(pred: Picks, truth: Picks, radii: PerClassValue, fraction: float = 0.5,
                      beta: float = 4.0, matching: str = "optimal",
                      num_cls: Optional[int] = None) -> DistanceResult:
    """Score picks by one-to-one matching to same-class particles within ``fraction * radius``.

    ``radii``: particle radius in voxels, one per class (sequence indexed by class - 1, dict
    by class id, or one number). Returns the overall counts and rates (counts summed over
    classes), the ``mean_distance`` of matched pairs, ``macro_f1`` and one
    :class:`DistanceClassScores` per class.
    """
    check_beta(beta)
    k = num_classes_of(pred, truth, num_cls)
    radius = radii_per_class(radii, k)
    if not fraction > 0:
        raise DeepETPickerError(f"fraction = {fraction} must be positive (0.5 in the CZII "
                                f"benchmark: within half a radius).")
    per_class = []
    all_dist = []
    for c in range(1, k + 1):
        p = pred.of_class(c)
        t = truth.of_class(c)
        limit = float(fraction * radius[c - 1])
        pairs = match_by_distance(p.xyz, t.xyz, limit, p.scores, matching)
        tp = len(pairs)
        all_dist.extend(d for _, _, d in pairs)
        per_class.append(DistanceClassScores(
            c, float(radius[c - 1]), limit, len(t), len(p), tp, len(p) - tp, len(t) - tp,
            *prf(tp, len(p), len(t), beta),
            mean_distance=float(np.mean([d for _, _, d in pairs])) if pairs else None))
    tp = sum(e.tp for e in per_class)
    return DistanceResult(
        pred.tomo_name or truth.tomo_name, k, float(fraction), float(beta), matching,
        len(truth), len(pred), tp, len(pred) - tp, len(truth) - tp,
        *prf(tp, len(pred), len(truth), beta),
        mean_distance=float(np.mean(all_dist)) if all_dist else None,
        macro_f1=_macro_f1(per_class), per_class=per_class)


def tp_weighted_mean(results: list, attr: str) -> Optional[float]:
    """The mean of the attribute ``attr`` over results that have it (not None), each weighted
    by its true positives ``tp`` (a mean distance pooled over tomograms)."""
    pairs = [(getattr(r, attr), r.tp) for r in results if getattr(r, attr) is not None]
    return sum(v * t for v, t in pairs) / sum(t for _, t in pairs) if pairs else None


def pool_distance(results: list[DistanceResult]) -> DistanceResult:
    """One distance-rule result from several tomograms' (counts summed, then the ratios)."""
    k = max(r.num_cls for r in results)
    first = results[0]
    per_class = []
    for c in range(1, k + 1):
        rows = [pc for r in results for pc in r.per_class if pc.class_id == c]
        counts = [int(sum(getattr(pc, key) for pc in rows))
                  for key in ("n_truth", "n_pred", "tp", "fp", "fn")]
        per_class.append(DistanceClassScores(
            c, rows[0].radius, rows[0].max_distance, *counts,
            *prf(counts[2], counts[1], counts[0], first.beta),
            mean_distance=tp_weighted_mean(rows, "mean_distance")))
    n_truth, n_pred, tp, fp, fn = (int(sum(getattr(r, key) for r in results))
                                   for key in ("n_truth", "n_pred", "tp", "fp", "fn"))
    return DistanceResult(
        "all tomograms", k, first.fraction, first.beta, first.matching, n_truth, n_pred, tp, fp,
        fn, *prf(tp, n_pred, n_truth, first.beta),
        mean_distance=tp_weighted_mean(results, "mean_distance"),
        macro_f1=_macro_f1(per_class), per_class=per_class)


def check_beta(beta: float) -> None:
    if not (isinstance(beta, (int, float)) and np.isfinite(beta) and beta > 0):
        shown = format(beta, "g") if isinstance(beta, (int, float)) else repr(beta)
        raise DeepETPickerError(
            f"beta = {shown}: F-beta needs a positive beta (it weighs recall beta^2 times as much "
            f"as precision); give e.g. --beta 4 (the CZII benchmark) or --beta 1 (F1).")


def cumulative_hits(scores: Sequence[np.ndarray], hits: Sequence[np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Picks pooled over tomograms (``scores`` and whether each found a particle, one array
    per tomogram), ranked by score: at each distinct score from high to low, the score, how
    many picks score at least that (``kept``) and how many of those found a particle
    (``tp``). A threshold can only fall between two distinct scores, so these are every
    precision-recall point there is."""
    scores = np.concatenate(list(scores)) if len(scores) else np.zeros(0)
    hits = np.concatenate(list(hits)) if len(hits) else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], hits[order]
    tp = np.cumsum(hits)
    last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True]) if len(scores) else \
        np.zeros(0, np.int64)
    return scores[last], last + 1, tp[last]


def ranked_hits(pred: Picks, truth: Picks, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The scores of one class's picks from high to low and, for each, whether it found a
    particle: picks take the nearest free particle within ``max_distance`` in descending score
    order, so the picks above any threshold are matched exactly as if they were all there were.
    """
    scores = (np.zeros(len(pred)) if pred.scores is None
              else np.asarray(pred.scores, np.float64))
    order = np.argsort(-scores, kind="stable")
    hits = np.zeros(len(pred), dtype=bool)
    for p, _, _ in match_by_distance(pred.xyz, truth.xyz, max_distance, scores, "greedy"):
        hits[p] = True
    return scores[order], hits[order]


def localisation_hits(pred: Picks, truth: Picks, radii: PerClassValue, num_cls: int,
                      fraction: float = 0.5) -> np.ndarray:
    """For each pick (table order), whether it found a particle of any class: picks in
    descending score order take the nearest free particle within ``fraction`` of that
    particle's radius (``radii`` per class as in :func:`evaluate_distance`). The class a pick
    names plays no part: this is the localisation half of picking."""
    from scipy.spatial import cKDTree

    radius = radii_per_class(radii, num_cls) * float(fraction)
    hits = np.zeros(len(pred), dtype=bool)
    if not len(pred) or not len(truth):
        return hits
    reach = radius[np.clip(truth.classes, 1, num_cls) - 1]
    candidates = cKDTree(pred.xyz).sparse_distance_matrix(
        cKDTree(truth.xyz), float(reach.max()), output_type="ndarray")
    pi, ti, dist = candidates["i"], candidates["j"], candidates["v"]
    near = dist <= reach[ti]
    scores = None if pred.scores is None else np.asarray(pred.scores, np.float64)
    for p, _, _ in _greedy(pi[near], ti[near], dist[near], len(pred), scores):
        hits[p] = True
    return hits


@dataclass(frozen=True)
class ThresholdChoice:
    """The detection threshold chosen for one class and what it gave (see
    :func:`best_detection_thresholds`): ``f1`` is the localisation F1 of all classes' picks
    under all the chosen thresholds, ``f1_all`` with every pick kept; ``n_pred`` this
    class's picks kept, ``n_truth`` its particles."""

    class_id: int
    threshold: float
    f1: float
    f1_all: float
    n_pred: int
    n_truth: int


def best_detection_thresholds(preds: list[Picks], truths: list[Picks], radii: PerClassValue,
                              num_cls: int, fraction: float = 0.5,
                              tolerance: Optional[float] = None) -> list[ThresholdChoice]:
    """One score threshold per class (picks of that class scoring at least it are kept): the
    lowest that together give a localisation F1 within ``tolerance`` of the best over the
    given tomograms.

    A pick counts as found when it lands on a particle of any class (see
    :func:`localisation_hits`), so a particle found but named with another class is never
    dropped to make a class purer. The best thresholds maximise ``2 TP / (kept + N)`` jointly
    (Dinkelbach's iteration: for a trial F1 ``f`` each class independently maximises ``2 TP_c
    - f kept_c``, which is exact for a ratio of sums). From there the thresholds are lowered,
    one class's step at a time (the step that costs least first), while the F1 stays within
    ``tolerance`` of the best: a few validation particles cannot tell F1 values closer than
    one particle apart, and a found particle dropped by a threshold is lost for good.
    ``tolerance`` defaults to one particle's worth, ``1 / N``; 0 keeps the best thresholds.
    A threshold lies halfway between the lowest kept and the highest dropped score; 0.0 keeps
    every pick (also for a class without picks).
    """
    n_truth_all = int(sum(len(t) for t in truths))
    per_class_counts = [int(sum(len(t.of_class(c)) for t in truths))
                        for c in range(1, num_cls + 1)]
    hits = [localisation_hits(p, t, radii, num_cls, fraction) for p, t in zip(preds, truths)]
    ladders = []                               # per class: cut scores, kept, tp
    for c in range(1, num_cls + 1):
        scores, found = [], []
        for p, h in zip(preds, hits):
            mask = p.classes == c
            scores.append(np.zeros(int(mask.sum())) if p.scores is None
                          else np.asarray(p.scores, np.float64)[mask])
            found.append(h[mask])
        cuts, kept, tp = cumulative_hits(scores, found)
        ladders.append((np.r_[np.inf, cuts], np.r_[0, kept], np.r_[0, tp]))

    def f1_of(choice):
        tp = sum(int(lad[2][i]) for lad, i in zip(ladders, choice))
        kept = sum(int(lad[1][i]) for lad, i in zip(ladders, choice))
        return 2.0 * tp / (kept + n_truth_all) if kept + n_truth_all else 0.0

    every = [len(lad[0]) - 1 for lad in ladders]
    choice, f_trial = list(every), 0.0
    for _ in range(100):
        f_trial = f1_of(choice)
        new = []
        for cuts, kept, tp in ladders:
            gain = 2.0 * tp - f_trial * kept
            if len(cuts) > 1 and cuts[1] >= 1.0:   # a score of 1 cannot be cut off
                gain[0] = -np.inf
            new.append(int(np.flatnonzero(gain >= gain.max() - 1e-12)[-1]))
        if new == choice:
            break
        choice = new
    best, f_all = f1_of(choice), f1_of(every)
    if best < f_all:                            # never worse than keeping every pick
        choice, best = every, f_all
    slack = (1.0 / n_truth_all if n_truth_all else 0.0) if tolerance is None else tolerance
    choice = _loosened(choice, every, f1_of, best - float(slack))
    best = f1_of(choice)
    result = []
    for c, ((cuts, kept, _), i) in enumerate(zip(ladders, choice), start=1):
        threshold = 0.0 if i == len(cuts) - 1 else float(
            (cuts[i] + cuts[i + 1]) / 2.0 if i > 0 else (cuts[1] + 1.0) / 2.0)
        result.append(ThresholdChoice(c, threshold, best, f_all, int(kept[i]),
                                      per_class_counts[c - 1]))
    return result


def _loosened(choice: list[int], every: list[int], f1_of: Callable[[list[int]], float],
              floor: float) -> list[int]:
    """``choice`` (an index into each class's ladder of cut scores; ``every`` keeps every
    pick) with thresholds lowered one step at a time, the step that keeps the F1 highest
    first, while the F1 stays at least ``floor``."""
    choice = list(choice)
    while True:
        steps = []
        for c in range(len(choice)):
            if choice[c] < every[c]:
                trial = choice[:c] + [choice[c] + 1] + choice[c + 1:]
                steps.append((f1_of(trial), -c, trial))
        steps = [step for step in steps if step[0] >= floor - 1e-12]
        if not steps:
            return choice
        choice = max(steps)[2]
