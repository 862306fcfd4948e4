"""From class score maps to particle picks: threshold, local maxima, de-duplication.

For each class the score map is binarised at ``t_seg``; the masked scores are smoothed with a
box filter about half a particle wide (so the middle of a blob becomes its highest point), and
voxels equal to the maximum of their neighbourhood (max-pooling, kernel about half the particle
diameter) whose smoothed value exceeds ``t_lm`` become candidate picks. The smoothing and
pooling run in torch on the device of the scores (or the one asked for), slab by slab along z,
so a large tomogram needs only a few slabs' worth of extra memory; the slabs overlap by enough
that the result equals a whole-volume computation.

With ``localize="foreground"`` finding a particle and naming its class are two steps: peaks
are searched on the foreground map (the sum of the class maps, i.e. one minus the background
probability) with the smallest class diameter, and each peak takes the class whose mean
probability in a small ball around it is highest. A particle whose probability is split over
several similar classes, none above ``t_seg`` alone, is then still found. With the default
``localize="class"`` each class map is searched on its own, as in the paper.

Each pick's score is the network's mean probability in a ball around the peak: the reach of
the weak label the network was trained with when it is known (a network that marks the label
it was taught scores about 1, and the label's rim lets scores rank), else a quarter of the
particle diameter; with ``localize="foreground"`` the probability is the summed class maps
(detection confidence) and the ball is the pick's own class's. Picks
closer than ``t_dist`` (default ``ceil(d / 2)`` of the class) are one particle: the one with
the higher score is kept, within a class and, with the smaller of the two classes' distances,
across classes. Neighbours are found with a KD-tree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks
from deepetpicker.values import per_class

if TYPE_CHECKING:
    import torch

Number = Union[int, float]

#: Voxels per z-slab when find_picks is given no chunk size (16 planes of 512 x 512).
SLAB_VOXELS = 4 * 1024 * 1024


def _odd(value: float) -> int:
    value = int(round(value))
    return value if value % 2 else value + 1


def smoothing_size(diameter: float) -> int:
    """Edge of the box filter (applied twice) used to turn a blob into a peak."""
    return max(3, _odd((diameter + 1) / 2))


def pooling_size(diameter: float) -> int:
    """Edge of the max-pooling window that defines a local maximum."""
    return 2 * max(1, math.ceil(diameter / 4)) + 1


def default_t_dist(diameter: float) -> float:
    """Picks closer than this are one particle: ``ceil(d / 2)``."""
    return float(math.ceil(diameter / 2))


def default_score_radius(diameter: float) -> int:
    """Radius of the ball whose mean probability is a pick's score, without a weak label."""
    return max(1, int(round(diameter / 4)))


def label_score_radius(label_diameter: float) -> float:
    """Radius of the ball whose mean probability is a pick's score when the weak label is
    known: the reach of a TBall label, ``sqrt(2) (d - 1) / 2``. A network that marks the
    label it was taught scores about 1; the label's rim, where a trained network is least
    sure, lets scores differ, so they rank (a smaller ball lies where every probability is 1
    and gives every pick the same score and a whole-voxel position)."""
    return max(1.0, math.sqrt(2.0) * (float(label_diameter) - 1.0) / 2.0)


def _resolve_device(scores, device):
    import torch

    if device is not None:
        return torch.device(device)
    if isinstance(scores, torch.Tensor):
        return scores.device
    return torch.device("cpu")


def _pool_separable(x, size: int, kind: str):
    """Box mean (count excluding padding) or max over a ``size``-cube, one axis at a time."""
    import torch.nn.functional as F

    half = size // 2
    for axis in range(3):
        kernel = [1, 1, 1]
        padding = [0, 0, 0]
        kernel[axis] = size
        padding[axis] = half
        if kind == "mean":
            x = F.avg_pool3d(x, kernel, stride=1, padding=padding, count_include_pad=True)
        else:
            x = F.max_pool3d(x, kernel, stride=1, padding=padding)
    return x


def _ball_offsets(radius: float):
    r = int(math.floor(float(radius) + 1e-9))
    grid = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1].reshape(3, -1).T
    return grid[(grid ** 2).sum(axis=1) <= float(radius) ** 2 + 1e-9]


def _class_peaks(volume, t_seg: float, t_lm: float, diameter: float, score_radius: float,
                 device, chunk: int, refine: bool, tick=None):
    """Peaks of one class map: (P, 3) z, y, x positions and (P,) mean-probability scores."""
    import torch

    s = smoothing_size(diameter)
    m = pooling_size(diameter)
    halo = max(2 * (s // 2) + m // 2, int(math.ceil(score_radius)))
    depth = volume.shape[0]
    offsets = torch.as_tensor(_ball_offsets(score_radius), device=device)
    coords_all, scores_all = [], []
    for z0 in range(0, depth, chunk):
        if tick is not None:
            tick()
        z1 = min(z0 + chunk, depth)
        lo, hi = max(0, z0 - halo), min(depth, z1 + halo)
        slab = volume[lo:hi]
        if isinstance(slab, torch.Tensor):
            slab = slab.to(device=device, dtype=torch.float32)
        else:
            slab = torch.from_numpy(np.ascontiguousarray(slab, dtype=np.float32)).to(device)
        mask = slab > t_seg
        if not bool(mask[z0 - lo:z1 - lo].any()):
            continue
        field = (slab * mask)[None, None]
        field = _pool_separable(_pool_separable(field, s, "mean"), s, "mean")
        pooled = _pool_separable(field, m, "max")
        keep = (field == pooled) & (field > t_lm) & mask[None, None]
        keep[..., :z0 - lo, :, :] = False
        keep[..., z1 - lo:, :, :] = False
        peaks = keep[0, 0].nonzero()
        if len(peaks) == 0:
            continue
        scores, centres = _ball_stats(slab, peaks, offsets, t_seg, refine)
        centres = centres.cpu().numpy().astype(np.float64)
        centres[:, 0] += lo
        coords_all.append(centres)
        scores_all.append(scores.cpu().numpy().astype(np.float64))
    if not coords_all:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(coords_all), np.concatenate(scores_all)


def _ball_stats(slab, peaks, offsets, t_seg: float, refine: bool):
    """Per peak: the mean of ``slab`` over the in-bounds voxels of a ball around it, and the
    position (the peak itself, or with ``refine`` the score-weighted centroid of the ball's
    voxels above ``t_seg``)."""
    import torch

    shape = torch.as_tensor(slab.shape, device=slab.device)
    idx = peaks[:, None, :] + offsets[None, :, :]
    inside = ((idx >= 0) & (idx < shape)).all(dim=2)
    idx = torch.minimum(idx.clamp(min=0), shape - 1)
    flat = (idx[..., 0] * shape[1] + idx[..., 1]) * shape[2] + idx[..., 2]
    return _stats(slab.reshape(-1)[flat] * inside, inside, peaks, offsets, t_seg, refine)


def _stats(values, inside, peaks, offsets, t_seg: float, refine: bool):
    """The mean of ``values`` (peaks x ball offsets, 0 outside the volume) over the in-bounds
    voxels, and the peaks' positions (refined: the centroid of the values above ``t_seg``)."""
    import torch

    scores = values.sum(dim=1) / inside.sum(dim=1)
    centres = peaks.to(torch.float64)
    if refine:
        weights = (values * (values > t_seg)).to(torch.float64)
        shift = (weights[..., None] * offsets[None].to(torch.float64)).sum(dim=1)
        total = weights.sum(dim=1, keepdim=True)
        centres = centres + torch.where(total > 0, shift / total.clamp(min=1e-300), 0.0)
    return scores, centres


def _gather(scores, zyx: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class maps' values ``(K, P, M)`` on the ball ``offsets`` around each pick's voxel
    (0 outside the volume) and which ball voxels are inside ``(P, M)``."""
    import torch

    shape = np.array(scores.shape[1:])
    idx = np.rint(zyx).astype(np.int64)[:, None, :] + offsets[None]
    inside = np.all((idx >= 0) & (idx < shape), axis=2)
    idx = np.clip(idx, 0, shape - 1)
    if isinstance(scores, torch.Tensor):
        t = torch.as_tensor(idx, device=scores.device)
        values = scores[:, t[..., 0], t[..., 1], t[..., 2]].double().cpu().numpy()
    else:
        values = np.asarray(scores[:, idx[..., 0], idx[..., 1], idx[..., 2]], dtype=np.float64)
    return values * inside, inside


def _rescore(scores, zyx: np.ndarray, classes: np.ndarray, radii: Sequence[float],
             t_seg: float, refine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Foreground picks scored and placed with their own class's ball: ``(scores, z y x)``,
    the mean particle probability (sum of the class maps) in the ball and the centroid of its
    voxels above ``t_seg``."""
    import torch

    out_scores, out_zyx = np.zeros(len(zyx)), np.asarray(zyx, np.float64).copy()
    peaks = np.rint(zyx).astype(np.int64)
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        offsets = _ball_offsets(radii[int(c) - 1])
        values, inside = _gather(scores, peaks[rows], offsets)
        got, centres = _stats(torch.from_numpy(values.sum(axis=0)), torch.from_numpy(inside),
                              torch.from_numpy(peaks[rows]), torch.from_numpy(offsets),
                              t_seg, refine)
        out_scores[rows] = got.numpy()
        out_zyx[rows] = centres.numpy()
    return out_scores, out_zyx


LOCALIZE = ("class", "foreground")


class _Foreground:
    """The sum of the class maps ``(K, z, y, x)``, computed slab by slab when sliced."""

    def __init__(self, scores) -> None:
        self.scores = scores
        self.shape = tuple(scores.shape[1:])

    def __getitem__(self, index):
        import torch

        part = self.scores[:, index]
        if isinstance(part, torch.Tensor):
            return part.float().sum(dim=0)
        return np.asarray(part, dtype=np.float32).sum(axis=0)


def _class_means(scores, zyx: np.ndarray, radius: float) -> np.ndarray:
    """``(K, P)``: each class's mean probability in a ball of ``radius`` around each pick's
    voxel (in-bounds voxels only)."""
    values, inside = _gather(scores, zyx, _ball_offsets(radius))
    return values.sum(axis=2) / inside.sum(axis=1)


def _class_confidence(means: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per pick: its class's share of the summed class means (1 for a lone class)."""
    if not means.shape[1]:
        return np.zeros(0)
    total = means.sum(axis=0)
    own = means[classes - 1, np.arange(means.shape[1])]
    return np.where(total > 0, own / np.maximum(total, 1e-12), 0.0)


def _classify(scores, zyx: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pick: the class (1-based) with the highest mean probability in a ball of
    ``radius`` around the pick's voxel, and that class's share of the summed means."""
    if len(zyx) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    means = _class_means(scores, zyx, radius)
    classes = means.argmax(axis=0) + 1
    return classes, _class_confidence(means, classes)


def find_picks(scores: Union[np.ndarray, torch.Tensor], t_seg: float = 0.5, t_lm: float = 0.1,
               t_dist: Union[None, Number, Sequence[Number]] = None,
               diameters: Union[None, Number, Sequence[Number]] = None,
               device: Union[None, str, torch.device] = None,
               score_radius: Union[None, int, Sequence[int]] = None,
               cross_class: bool = True, refine: bool = True, chunk: Optional[int] = None,
               tomo_name: str = "", voxel_size: Optional[float] = None,
               report: Optional[Callable] = None, localize: str = "class",
               label_diameters: Union[None, Number, Sequence[Number]] = None) -> Picks:
    """Particle picks from class score maps ``(K, z, y, x)`` (numpy or torch, values in [0, 1]).

    ``diameters``: particle diameter per class in voxels (one number serves all classes); it
    sets the smoothing and pooling kernels and the defaults ``t_dist = ceil(d / 2)`` and
    ``score_radius = max(1, round(d / 4))``; with ``label_diameters`` (the weak labels the
    network was trained on, one or one per class) the default score radius is the label's
    reach instead (:func:`label_score_radius`). A voxel can be a pick when its score exceeds
    ``t_seg`` and its smoothed masked score exceeds ``t_lm`` and is the maximum of its
    neighbourhood. Picks of class ``k + 1`` come from channel ``k``; their score is the mean
    probability in a ball of ``score_radius`` around the peak, and with ``refine`` its position
    is the score-weighted centroid of that ball's voxels above ``t_seg`` (sub-voxel; without
    it, the peak voxel). Duplicates closer than
    ``t_dist`` are merged (see :func:`deduplicate`). Work runs on ``device`` (default: the
    scores' own device) in z-slabs of ``chunk`` planes (default: about 4 M voxels a slab).
    Returns picks sorted by class, then by
    descending score, with the settings in ``meta``. ``report(stage, done, total, item=...)``
    (e.g. a job's :class:`~deepetpicker.progress.Reporter`) is called before each slab.
    ``localize="foreground"`` finds peaks on the summed class maps and classifies each (see
    the module docstring). The picks' ``meta["class_confidence"]`` holds each pick's class
    confidence, its class's share of the probability around it; the score says how sure the
    network is that a particle is there, the class confidence which kind it is.
    """
    import torch

    if isinstance(scores, np.ndarray) or isinstance(scores, torch.Tensor):
        ndim = scores.ndim
    else:
        scores = np.asarray(scores)
        ndim = scores.ndim
    if ndim == 3:
        scores = scores[None]
    elif ndim != 4:
        raise DeepETPickerError(
            f"Score maps must be (K, z, y, x) or (z, y, x); got shape {tuple(scores.shape)}.")
    num_cls = int(scores.shape[0])
    for name, value in (("t_seg", t_seg), ("t_lm", t_lm)):
        if not 0.0 <= float(value) < 1.0:
            raise DeepETPickerError(
                f"{name} = {value} is outside [0, 1); scores are probabilities, so use a "
                f"threshold such as {0.5 if name == 't_seg' else 0.1}.")
    diam = per_class(diameters, num_cls, "diameters", exact=True, positive=True)
    dist = per_class(t_dist, num_cls, "t_dist", default=[default_t_dist(d) for d in diam],
                     exact=True)
    if label_diameters is not None:
        default_radii = [label_score_radius(d) for d in per_class(
            label_diameters, num_cls, "label_diameters", exact=True, positive=True)]
    else:
        default_radii = [default_score_radius(d) for d in diam]
    radii = [float(r) for r in per_class(score_radius, num_cls, "score_radius", exact=True,
                                         default=default_radii)]
    device = _resolve_device(scores, device)
    plane = int(scores.shape[2]) * int(scores.shape[3])
    chunk = max(1, int(chunk)) if chunk else max(4, SLAB_VOXELS // max(plane, 1))

    if localize not in LOCALIZE:
        raise DeepETPickerError(f"localize = {localize!r}: choose 'class' (each class map on "
                                f"its own) or 'foreground' (peaks on all classes together).")
    foreground = localize == "foreground" and num_cls > 1
    tables = []
    share = None                         # foreground: each pick's class confidence
    slabs = (int(scores.shape[1]) + chunk - 1) // chunk
    done = [0]
    maps = 1 if foreground else num_cls

    def tick():
        done[0] += 1
        if report is not None:
            report("peaks", done[0], maps * slabs, item=tomo_name)

    with torch.no_grad():
        if foreground:
            smallest = int(np.argmin(diam))
            zyx, values = _class_peaks(_Foreground(scores), float(t_seg), float(t_lm),
                                       diam[smallest], radii[smallest], device, chunk, refine,
                                       tick)
            classes, share = _classify(scores, zyx, radii[smallest])
            if len(set(radii)) > 1:
                values, zyx = _rescore(scores, zyx, classes, radii, float(t_seg), refine)
            tables.append(Picks(classes, zyx[:, ::-1], values))
        else:
            for k in range(num_cls):
                zyx, values = _class_peaks(scores[k], float(t_seg), float(t_lm), diam[k],
                                           radii[k], device, chunk, refine, tick)
                xyz = zyx[:, ::-1]
                tables.append(Picks(np.full(len(xyz), k + 1), xyz, values))
    picks = Picks.concat(tables) if tables else Picks.empty(with_scores=True)
    picks, kept = deduplicate(picks, dist, cross_class=cross_class, return_index=True)
    order = np.lexsort((-picks.scores, picks.classes))
    picks = picks.select(order)
    picks.tomo_name = tomo_name
    picks.voxel_size = voxel_size
    picks.meta = {"t_seg": float(t_seg), "t_lm": float(t_lm), "t_dist": dist,
                  "diameters": diam, "score_radius": radii, "cross_class": bool(cross_class),
                  "refine": bool(refine), "localize": localize}
    if share is None:      # each class map searched alone: its share around the pick
        share = _class_confidence(_class_means(scores, picks.zyx, min(radii)), picks.classes) \
            if len(picks) else np.zeros(0)
    else:
        share = share[kept][order]
    picks.meta["class_confidence"] = share
    return picks


def deduplicate(picks: Picks, t_dist: Union[Number, Sequence[Number], dict],
                cross_class: bool = True, return_index: bool = False
                ) -> Union[Picks, tuple[Picks, np.ndarray]]:
    """Merge picks closer than ``t_dist`` voxels, keeping the one with the higher score.

    ``t_dist`` is one number or one per class (a sequence indexed by class - 1, or a dict by
    class id). Two picks of classes a and b conflict when their distance is below
    ``min(t_dist[a], t_dist[b])``; with ``cross_class=False`` only picks of the same class do.
    Greedy by score (ties: earlier row first): the best pick is kept and its conflicting
    neighbours dropped, then the best remaining one, and so on. Row order is preserved.
    With ``return_index`` also returns the indices of the rows kept.
    """
    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree

    n = len(picks)
    if n < 2:
        return (picks.copy(), np.arange(n)) if return_index else picks.copy()
    num_cls = int(picks.classes.max())
    if isinstance(t_dist, dict):        # only the classes present need a distance
        given = {int(c): float(v) for c, v in t_dist.items()}
        missing = sorted(set(picks.classes.tolist()) - set(given))
        if missing:
            raise DeepETPickerError(f"t_dist has no value for class {missing[0]}.")
        t_dist = {c: given.get(c, np.nan) for c in range(1, num_cls + 1)}
    thresholds = np.asarray(per_class(t_dist, num_cls, "t_dist"))[picks.classes - 1]
    reach = float(thresholds.max())
    if reach <= 0:
        return (picks.copy(), np.arange(n)) if return_index else picks.copy()
    tree = cKDTree(picks.xyz)
    pairs = tree.query_pairs(r=reach, output_type="ndarray")
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        distance = np.linalg.norm(picks.xyz[i] - picks.xyz[j], axis=1)
        conflict = distance < np.minimum(thresholds[i], thresholds[j])
        if not cross_class:
            conflict &= picks.classes[i] == picks.classes[j]
        i, j = i[conflict], j[conflict]
    else:
        i = j = np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(2 * len(i), bool), (np.concatenate([i, j]),
                                                    np.concatenate([j, i]))),
                       shape=(n, n)).tocsr()
    scores = picks.scores if picks.scores is not None else np.zeros(n)
    order = np.argsort(-scores, kind="stable")
    dropped = np.zeros(n, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    indptr, indices = graph.indptr, graph.indices
    for idx in order:
        if dropped[idx]:
            continue
        keep[idx] = True
        dropped[indices[indptr[idx]:indptr[idx + 1]]] = True
    if return_index:
        return picks.select(keep), np.flatnonzero(keep)
    return picks.select(keep)
