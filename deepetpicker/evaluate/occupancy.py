"""The occupancy rule, as in the SHREC 2021 cryo-ET challenge's evaluation script (``misc/eval.py``
of the challenge data; Gubins et al., "SHREC 2021: Classification in cryo-electron tomograms").
By default it is that script's rule exactly:

1. the occupancy map of particle ids is dilated by one voxel: every voxel takes the largest id
   among itself and its six face neighbours (a maximum filter with the 6-connected cross;
   voxels beyond the volume add nothing). Where two particles touch or their dilations meet,
   the larger id wins, even on a voxel of the smaller particle;
2. each pick is rounded to the nearest voxel (halves to even, as Python's ``round``), then
   clamped into the volume; picks that needed clamping are counted as RO ("reported
   outside") and are still looked up, and measured, at the clamped voxel;
3. the pick hits the particle whose id the dilated map holds there (0: background, a false
   positive).

``dilate=False`` (``--no-dilate``) looks picks up in the map as it is. ``skip_classes`` leaves
classes out of the truth as the challenge left out 4V94 and vesicles: picks still land on those
particles (after the same dilation) but count neither as hits nor as false positives; they do
count among the picks reported (RR), so they lower the precision, as in the challenge.

With N true particles and RR picks ("results reported"):

- TP: particles hit at least once; FN = N - TP; FP: picks in the background;
- MH: particles hit more than once ("multiple hits"); the extra picks count neither as TP
  nor as FP, but they lower the precision;
- precision = TP / RR, recall = TP / N, F1 their harmonic mean, miss rate = 1 - recall;
- AD: the mean distance (voxels) from each hit particle's first pick (file order, at its
  rounded and clamped voxel) to its centre;
- classification: each true particle takes the class of its first pick (0 when not found, or
  when that pick's class is a skipped one);
  the confusion matrix counts true class (rows 1..K) against that class (columns 0..K), and
  the per-class precision, recall and F1 come from it, as in the challenge's tables (picks in
  the background do not enter them). Per class we also give ``pick_precision``,
  ``pick_recall`` and ``pick_F1``: the occupancy rule applied to that class's picks and
  particles alone, which does count background picks.

Where this differs from the script, on purpose: it clamps into the volume's own shape (the
script clamps to 0..511, the challenge's 512^3 tomograms); N counts the particles left after
every skipped class (the script subtracts the 4V94 particles from N but not the vesicles,
although it drops both from the counts of found and missed particles); and no pick raises an
error (the script stops on F1 when nothing is found, and on a particle whose first pick is
labelled "vesicle").

Results are :class:`OccupancyResult` objects (one :class:`OccupancyClassScores` per class);
``to_dict()`` gives the JSON form that evaluation reports write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Sequence

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.matching import num_classes_of, prf, safe_ratio, tp_weighted_mean


# --------------------------------------------------------------------------------------------
# Occupancy maps
# --------------------------------------------------------------------------------------------
def _as_occupancy(occupancy, truth: Picks, source: str = "") -> np.ndarray:
    """The map as integer particle ids, checked against the truth table it belongs to."""
    occ = np.asarray(occupancy)
    where = source or "occupancy map"
    if occ.ndim != 3:
        raise DeepETPickerError(f"{where}: shape {occ.shape} is not a 3-D (z, y, x) occupancy "
                                f"map.")
    if occ.dtype.kind == "f":
        occ = np.rint(occ)
    dtype = np.int32 if len(truth) < 2 ** 31 - 1 else np.int64
    if occ.size:
        low, top = float(occ.min()), float(occ.max())
        if low < 0 or top > len(truth):
            bad = int(top) if top > len(truth) else int(low)
            raise DeepETPickerError(
                f"{where}: holds particle id {bad} but the truth table {truth.tomo_name!r} has "
                f"{len(truth)} particle(s) (ids 1..{len(truth)} in file order). The occupancy "
                f"map and the truth picks do not belong together; regenerate the map from these "
                f"picks (preprocessing writes data_ocp/).")
    occ = occ.astype(dtype, copy=False)
    _refuse_class_labels(occ, truth, where)
    return occ


def _refuse_class_labels(occ: np.ndarray, truth: Picks, where: str) -> None:
    """Stop when the map holds class ids (a weak-label volume) instead of particle ids.

    A label map holds only 0..K, and the voxel at each particle's centre holds that particle's
    class; an occupancy map holds the particle's row number there. Only particles whose class
    differs from their row number can tell the two apart.
    """
    n = len(truth)
    if n < 2 or not occ.size:
        return
    k = int(truth.classes.max())
    top = int(occ.max())
    if top == 0 or top > k:
        return
    centres = np.rint(truth.xyz[:, ::-1]).astype(np.int64)
    inside = ((centres >= 0) & (centres < np.asarray(occ.shape))).all(axis=1)
    values = np.zeros(n, dtype=np.int64)
    values[inside] = occ[tuple(centres[inside].T)]
    rows = np.arange(1, n + 1)
    telling = inside & (values > 0) & (truth.classes != rows)
    as_class = int(np.sum(telling & (values == truth.classes)))
    as_row = int(np.sum(telling & (values == rows)))
    if as_class and as_class > as_row:
        distinct = int(np.count_nonzero(np.bincount(occ.ravel(), minlength=top + 1)[1:]))
        raise DeepETPickerError(
            f"{where}: this looks like a class-label map (a weak-label volume), not an occupancy "
            f"map of particle ids: it holds {distinct} distinct id(s) (1..{top}) for {n} true "
            f"particles, and at {as_class} particle centre(s) it holds the particle's class "
            f"instead of its number. With class ids every particle of a class shares one id, "
            f"so picks cannot be told apart and F1 would be near 0. Give the occupancy maps "
            f"preprocessing writes to data_ocp/ (--occupancy <base>/data_ocp), not the label "
            f"folder.")


def dilate_occupancy(occupancy: np.ndarray) -> np.ndarray:
    """The SHREC 2021 script's one-voxel dilation of a map of particle ids.

    Each voxel takes the largest id among itself and its six face neighbours (a grey dilation
    with the 6-connected cross); voxels beyond the volume contribute nothing. Where two
    particles touch or their dilations meet the larger id wins, even on a voxel that belonged
    to the smaller particle. Returns a new array of the same dtype.
    """
    occ = np.asarray(occupancy)
    out = occ.copy()
    for axis in range(occ.ndim):
        head = [slice(None)] * occ.ndim
        tail = [slice(None)] * occ.ndim
        head[axis] = slice(None, -1)            # voxels 0..n-2 along this axis
        tail[axis] = slice(1, None)             # voxels 1..n-1
        head, tail = tuple(head), tuple(tail)
        np.maximum(out[head], occ[tail], out=out[head])   # the neighbour above
        np.maximum(out[tail], occ[head], out=out[tail])   # the neighbour below
    return out


def lookup_map(occupancy: np.ndarray, truth: Picks, dilate: bool, source: str = "") -> np.ndarray:
    occ = _as_occupancy(occupancy, truth, source)
    return dilate_occupancy(occ) if dilate else occ


def skipped_class_ids(skip_classes: Optional[Sequence[int]],
                      num_cls: Optional[int] = None) -> tuple[int, ...]:
    """Validated class ids to leave out of the truth (sorted, unique)."""
    if skip_classes is None:
        return ()
    values = [skip_classes] if np.ndim(skip_classes) == 0 else list(skip_classes)
    out = []
    for v in values:
        if float(v) != int(float(v)) or int(float(v)) < 1:
            raise DeepETPickerError(
                f"skip class {v}: class ids are whole numbers from 1 (0 is background); give "
                f"the ids of the classes to leave out of the truth, e.g. --skip-classes 1 4.")
        if num_cls is not None and int(float(v)) > num_cls:
            raise DeepETPickerError(
                f"skip class {int(float(v))}: the dataset has {num_cls} class(es); give ids in "
                f"1..{num_cls}.")
        out.append(int(float(v)))
    return tuple(sorted(set(out)))


def _voxel_lookup(xyz: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Rounded, clamped (z, y, x) voxel indices and a flag for picks that needed clamping."""
    rounded = np.rint(xyz[:, ::-1]).astype(np.int64)
    upper = np.asarray(shape, dtype=np.int64) - 1
    clamped = np.clip(rounded, 0, upper)
    outside = (clamped != rounded).any(axis=1)
    return clamped, outside



# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
#: What the rows and columns of :attr:`OccupancyResult.confusion` count.
CONFUSION_ROWS = "true class 1..K"
CONFUSION_COLUMNS = "class of the first pick 0..K (0: not found)"


@dataclass
class OccupancyClassScores:
    """One class's scores under the occupancy rule (one tomogram's, or pooled).

    ``tp fp fn precision recall f1`` come from the confusion matrix (background picks do not
    enter them; ``precision`` is None when no particle was first picked as this class);
    ``pick_*`` apply the rule to this class's picks and particles alone, which does count its
    ``fp_background`` picks. ``skipped``: the class was left out of the truth.
    """

    class_id: int
    n_truth: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: Optional[float]
    recall: Optional[float]
    f1: Optional[float]
    fp_background: int
    pick_tp: int
    pick_precision: float
    pick_recall: float
    pick_f1: float
    skipped: bool = False

    def to_dict(self) -> dict:
        """The JSON form written in evaluation reports."""
        return {"class": self.class_id, "n_truth": self.n_truth, "n_pred": self.n_pred,
                "TP": self.tp, "FP": self.fp, "FN": self.fn, "precision": self.precision,
                "recall": self.recall, "F1": self.f1, "FP_background": self.fp_background,
                "pick_TP": self.pick_tp, "pick_precision": self.pick_precision,
                "pick_recall": self.pick_recall, "pick_F1": self.pick_f1,
                "skipped": self.skipped}


@dataclass
class OccupancyResult:
    """The occupancy rule's scores of one tomogram (or pooled over several, ``pooled``).

    ``rr`` picks reported, ``tp fp fn`` particles found / background picks / particles missed,
    ``mh`` particles hit more than once, ``ro`` picks reported outside the volume, ``ad`` the
    mean distance of first hits to their centres (None without hits); ``skipped_hits``: picks
    on particles of the ``skipped_classes``. ``confusion``: rows true classes 1..K, columns the
    class of each particle's first pick 0..K (0: not found).
    """

    rule: ClassVar[str] = "occupancy"

    tomo_name: Optional[str]
    num_cls: int
    n_truth: int
    rr: int
    tp: int
    fp: int
    fn: int
    mh: int
    ro: int
    ad: Optional[float]
    dilated: bool
    skipped_classes: list[int]
    skipped_hits: int
    precision: float
    recall: float
    f1: float
    miss_rate: float
    mean_class_f1: Optional[float]
    per_class: list[OccupancyClassScores] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    pooled: bool = False

    def to_dict(self) -> dict:
        """The JSON form written in evaluation reports (a pooled result lists its settings
        before its counts)."""
        values = {"rule": self.rule, "tomo_name": self.tomo_name, "num_cls": self.num_cls,
                  "n_truth": self.n_truth, "RR": self.rr, "TP": self.tp, "FP": self.fp,
                  "FN": self.fn, "MH": self.mh, "RO": self.ro, "AD": self.ad,
                  "dilated": self.dilated, "skipped_classes": list(self.skipped_classes),
                  "skipped_hits": self.skipped_hits, "precision": self.precision,
                  "recall": self.recall, "F1": self.f1, "miss_rate": self.miss_rate,
                  "mean_class_F1": self.mean_class_f1,
                  "per_class": [pc.to_dict() for pc in self.per_class],
                  "confusion": {"rows": CONFUSION_ROWS, "columns": CONFUSION_COLUMNS,
                                "matrix": [list(row) for row in self.confusion]}}
        order = _POOLED_ORDER if self.pooled else values
        return {key: values[key] for key in order}


_POOLED_ORDER = ("rule", "tomo_name", "num_cls", "dilated", "skipped_classes", "n_truth", "RR",
                 "TP", "FP", "FN", "MH", "RO", "skipped_hits", "AD", "precision", "recall", "F1",
                 "miss_rate", "mean_class_F1", "per_class", "confusion")


# --------------------------------------------------------------------------------------------
# Occupancy rule (SHREC 2021)
# --------------------------------------------------------------------------------------------
def _class_scores(c: int, n_truth: int, n_pred: int, tp: int, fp: int, fn: int,
                  fp_background: int, pick_tp: int, skipped: bool) -> OccupancyClassScores:
    """One class's row: confusion-matrix counts and rates, plus its picks' own scores."""
    pick_precision, pick_recall, pick_f1, _ = prf(pick_tp, n_pred, n_truth)
    return OccupancyClassScores(
        c, n_truth, n_pred, tp, fp, fn, safe_ratio(tp, tp + fp), safe_ratio(tp, tp + fn),
        safe_ratio(2 * tp, 2 * tp + fp + fn), fp_background, pick_tp, pick_precision,
        pick_recall, pick_f1, skipped)


def _mean_f1(per_class: list[OccupancyClassScores]) -> Optional[float]:
    present = [pc.f1 for pc in per_class if pc.n_truth and pc.f1 is not None]
    return float(np.mean(present)) if present else None


def pick_hits(pred: Picks, occ: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pick: the particle id it lands in (0 = background), its voxel, outside flag."""
    if not len(pred):
        return np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(0, bool)
    voxels, outside = _voxel_lookup(pred.xyz, occ.shape)
    ids = occ[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
    return ids, voxels, outside


def evaluate_occupancy(pred: Picks, truth: Picks, occupancy: np.ndarray,
                       num_cls: Optional[int] = None,
                       dilate: bool = True, skip_classes: Sequence[int] = ()
                       ) -> OccupancyResult:
    """Score picks against an occupancy map of instance ids (SHREC 2021 rule, module doc).

    ``occupancy`` is ``(z, y, x)`` with 0 for background and ``i`` inside particle ``i`` (row
    ``i - 1`` of ``truth``). ``dilate`` (default) applies the challenge script's one-voxel
    dilation before the lookup; ``skip_classes`` leaves those classes out of the truth.
    """
    k = num_classes_of(pred, truth, num_cls)
    skip = skipped_class_ids(skip_classes, num_cls)
    lookup = lookup_map(occupancy, truth, dilate)
    return score_occupancy(pred, truth, lookup, k, dilate, skip)


def score_occupancy(pred: Picks, truth: Picks, lookup: np.ndarray, k: int, dilated: bool,
                    skip: tuple[int, ...]) -> OccupancyResult:
    """The occupancy rule on a map that is ready for the lookup (dilated or not)."""
    n_all = len(truth)
    ids, voxels, outside = pick_hits(pred, lookup)
    kept = np.ones(n_all + 1, dtype=bool)            # index 0: background
    if skip:
        kept[1:] = ~np.isin(truth.classes, skip)
    on_skipped = ~kept[ids]
    counts = np.bincount(ids, minlength=n_all + 1)
    counts[1:][~kept[1:]] = 0                      # skipped particles are not in the truth
    n = int(kept[1:].sum())
    found = counts[1:] >= 1
    tp = int(found.sum())
    # first pick (in table order) on each particle
    first = np.full(n_all + 1, -1, dtype=np.int64)
    hit_ids, first_rows = np.unique(ids, return_index=True)
    first[hit_ids] = first_rows
    first = first[1:]
    if tp:
        hit_ids = np.nonzero(found)[0]
        dist = np.linalg.norm(voxels[first[hit_ids]][:, ::-1] - truth.xyz[hit_ids], axis=1)
        ad = float(dist.mean())
    else:
        ad = None

    # classification from each particle's first pick; a skipped class reads as not found
    first_class = np.where(first >= 0, pred.classes[np.maximum(first, 0)] if len(pred)
                           else 0, 0)
    if skip:
        first_class = np.where(np.isin(first_class, skip), 0, first_class)
    matrix = np.zeros((k, k + 1), dtype=np.int64)
    rows = kept[1:]
    if n:
        np.add.at(matrix, (truth.classes[rows] - 1, first_class[rows]), 1)
    per_class = []
    for c in range(1, k + 1):
        tp_c = int(matrix[c - 1, c])
        fp_c = int(matrix[:, c].sum() - tp_c)
        fn_c = int(matrix[c - 1].sum() - tp_c)
        mine = pred.classes == c
        true_c = (truth.classes == c) & rows
        hit_c = np.zeros(n_all + 1, dtype=bool)
        hit_c[ids[mine]] = True
        pick_tp = int(np.sum(hit_c[1:] & true_c))
        per_class.append(_class_scores(c, int(true_c.sum()), int(mine.sum()), tp_c, fp_c, fn_c,
                                       int(np.sum(mine & (ids == 0))), pick_tp, c in skip))
    precision, recall, f1, _ = prf(tp, len(pred), n)
    return OccupancyResult(
        tomo_name=pred.tomo_name or truth.tomo_name, num_cls=k, n_truth=n, rr=len(pred), tp=tp,
        fp=int(np.sum(ids == 0)), fn=n - tp, mh=int(np.sum(counts[1:] > 1)),
        ro=int(outside.sum()), ad=ad, dilated=bool(dilated), skipped_classes=list(skip),
        skipped_hits=int(on_skipped.sum()), precision=precision, recall=recall, f1=f1,
        miss_rate=1.0 - recall if n else 0.0, mean_class_f1=_mean_f1(per_class),
        per_class=per_class, confusion=matrix.tolist())


def pool_occupancy(results: list[OccupancyResult]) -> OccupancyResult:
    """One occupancy-rule result from several tomograms' (counts summed, then the rates)."""
    k = max(r.num_cls for r in results)
    skipped = list(results[0].skipped_classes)
    n_truth, rr, tp, fp, fn, mh, ro, skipped_hits = (
        int(sum(getattr(r, key) for r in results))
        for key in ("n_truth", "rr", "tp", "fp", "fn", "mh", "ro", "skipped_hits"))
    matrix = np.zeros((k, k + 1), dtype=np.int64)
    for r in results:
        m = np.asarray(r.confusion, dtype=np.int64)
        matrix[:m.shape[0], :m.shape[1]] += m
    per_class = []
    for c in range(1, k + 1):
        rows = [pc for r in results for pc in r.per_class if pc.class_id == c]
        tp_c = int(matrix[c - 1, c])
        fp_c = int(matrix[:, c].sum() - tp_c)
        fn_c = int(matrix[c - 1].sum() - tp_c)
        per_class.append(_class_scores(
            c, sum(pc.n_truth for pc in rows), sum(pc.n_pred for pc in rows), tp_c, fp_c,
            fn_c, sum(pc.fp_background for pc in rows), sum(pc.pick_tp for pc in rows),
            c in skipped))
    precision, recall, f1, _ = prf(tp, rr, n_truth)
    return OccupancyResult(
        tomo_name="all tomograms", num_cls=k, n_truth=n_truth, rr=rr, tp=tp, fp=fp, fn=fn,
        mh=mh, ro=ro, ad=tp_weighted_mean(results, "ad"), dilated=results[0].dilated,
        skipped_classes=skipped, skipped_hits=skipped_hits, precision=precision,
        recall=recall, f1=f1, miss_rate=1.0 - recall if n_truth else 0.0,
        mean_class_f1=_mean_f1(per_class), per_class=per_class, confusion=matrix.tolist(),
        pooled=True)
