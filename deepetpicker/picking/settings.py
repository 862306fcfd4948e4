"""Score maps -> picks: the one rule that training validation and prediction share.

:class:`PickSettings` holds the picking thresholds with their defaults and checks them when it
is made, so a wrong value is refused before any tomogram is scanned. :func:`picks_from_scores`
turns the class score maps of one tomogram into picks with those settings; the training job
calls it to choose ``best.pth`` and the inference job calls it to pick, so a checkpoint is
chosen under the rule users run.

Defaults (the paper's): ``t_seg = 0.5``, ``t_lm = 0.1``, and picks closer than ``t_dist =
ceil(d / 2)`` voxels are one particle, ``d`` being each class's particle (occupancy)
diameter; two picks of different classes merge within the smaller of their two distances.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks

if TYPE_CHECKING:
    import torch

    from deepetpicker.config import TrainConfig

PerClass = Union[None, float, tuple]

#: How the score thresholds a checkpoint keeps were chosen: per class, for the best
#: localisation F1 (a particle found by a pick of any class counts). Prediction uses a
#: checkpoint's thresholds only when it names this rule.
THRESHOLD_RULE = "localisation"


def _per_class(name: str, value: object, check: Callable[[object], float],
               what: str) -> PerClass:
    """``value`` (None, one value or one per class), each item passed through ``check``, made
    hashable (a tuple for several)."""
    if value is None:
        return None
    many = isinstance(value, (list, tuple))
    items = list(value) if many else [value]
    if not items:
        raise DeepETPickerError(f"{name} is empty; give one {what}, or one per class.")
    checked = [check(item) for item in items]
    return tuple(checked) if many else checked[0]


def _distance_values(name: str, value: object, *, integer: bool = False,
                     allow_zero: bool = False) -> PerClass:
    """A distance in voxels (one, or one per class): positive (or 0 with ``allow_zero``)."""
    def check(item: object) -> float:
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise DeepETPickerError(f"{name} = {value!r} is not a number; give a number of "
                                    f"voxels (one, or one per class).") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
            raise DeepETPickerError(
                f"{name} = {item!r} is not allowed; it is a distance in voxels and must be "
                f"{'0 or more' if allow_zero else 'more than 0'} (leave it unset for the "
                f"default).")
        if integer and number != int(number):
            raise DeepETPickerError(f"{name} = {item!r} must be a whole number of voxels.")
        return int(number) if integer else number

    return _per_class(name, value, check, "number")


def _probability(name: str, value: object, hint: str) -> float:
    """``value`` as a number in [0, 1), or an error naming ``name`` and saying ``hint``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number < 1.0:
        raise DeepETPickerError(f"{name} = {value!r} is outside [0, 1); {hint}")
    return number


def _score_values(value: object) -> PerClass:
    """``min_score`` (one score in [0, 1), or one per class)."""
    def check(item: object) -> float:
        return _probability("min_score", item, "a pick's score is a probability, so give e.g. "
                                               "0.6 (or 0 to keep every pick).")

    return _per_class("min_score", value, check, "score")


def format_thresholds(values: Sequence[float]) -> str:
    """``class 1 >= 0.61, class 2 >= 0.43`` (0 keeps every pick of its class)."""
    return ", ".join(f"class {c} >= {float(v):.2f}" for c, v in enumerate(values, 1))


def apply_min_score(picks: Picks, min_score: PerClass, num_cls: int) -> Picks:
    """``picks`` without those scoring below their class's ``min_score``; the threshold of
    each class is recorded in ``meta["min_score"]``."""
    from deepetpicker.values import per_class

    if min_score is None:
        return picks
    limits = per_class(min_score, num_cls, "min_score", exact=True)
    if picks.scores is None or not len(picks):
        kept = picks
    else:
        floor = np.asarray(limits, np.float64)[np.clip(picks.classes, 1, num_cls) - 1]
        kept = picks.select(picks.scores >= floor)
    kept.meta["min_score"] = [float(v) for v in limits]
    return kept


def apply_min_class_confidence(picks: Picks, limit: Optional[float]) -> Picks:
    """``picks`` without those whose class confidence (``meta["class_confidence"]``) is below
    ``limit``; None keeps them all. The limit is recorded in ``meta``."""
    confidence = picks.meta.get("class_confidence")
    if limit is None or confidence is None:
        return picks
    kept = picks.select(np.asarray(confidence) >= float(limit))
    kept.meta["min_class_confidence"] = float(limit)
    return kept


@dataclass(frozen=True)
class PickSettings:
    """How picks are found in class score maps (all distances in voxels).

    ``t_seg``: a voxel can belong to a particle when its class score exceeds this.
    ``t_lm``: a local maximum of the smoothed score must exceed this.
    ``t_dist``: picks closer than this are one particle; one number, one per class, or None
    for ``ceil(d / 2)`` of each class's particle diameter.
    ``score_radius``: radius of the ball whose mean score is a pick's score (None: ``d / 4``).
    ``cross_class``: also merge close picks of different classes.
    ``refine``: sub-voxel positions (score-weighted centroid around the peak).
    ``localize``: ``"class"`` searches each class map on its own (the paper's rule);
    ``"foreground"`` finds peaks on the summed class maps and gives each the class most
    probable around it, so a particle whose probability is split over similar classes is
    still found.
    ``min_score``: picks of a class whose score (detection confidence: how sure the network
    is that a particle is there) is below this are dropped; one number, one per class, or None
    (keep all). Training tunes one per class on the validation tomograms for the best
    localisation F1 (a particle found counts whatever class it is given) and stores them in
    the checkpoint, where prediction takes them from unless given.
    ``min_class_confidence``: picks whose class confidence (their class's share of the class
    probabilities around them) is below this are dropped; None (the default) keeps them, so a
    particle found is never lost for an uncertain class.
    """

    t_seg: float = 0.5
    t_lm: float = 0.1
    t_dist: PerClass = None
    score_radius: PerClass = None
    cross_class: bool = True
    refine: bool = True
    localize: str = "foreground"
    min_score: PerClass = None
    min_class_confidence: Optional[float] = None

    def __post_init__(self) -> None:
        for name, example in (("t_seg", 0.5), ("t_lm", 0.1)):
            object.__setattr__(self, name, _probability(
                name, getattr(self, name),
                f"scores are probabilities, so use a threshold such as {example}."))
        object.__setattr__(self, "t_dist", _distance_values("t_dist", self.t_dist))
        object.__setattr__(self, "score_radius", _distance_values(
            "score_radius", self.score_radius, integer=True, allow_zero=True))
        from deepetpicker.picking.peaks import LOCALIZE

        if self.localize not in LOCALIZE:
            raise DeepETPickerError(
                f"localize = {self.localize!r}: choose 'class' (each class map on its own, the "
                f"paper's rule) or 'foreground' (find particles on all classes together, then "
                f"name their class).")
        object.__setattr__(self, "min_score", _score_values(self.min_score))
        if self.min_class_confidence is not None:
            object.__setattr__(self, "min_class_confidence", _probability(
                "min_class_confidence", self.min_class_confidence,
                "a class confidence is a share of probability, so give e.g. 0.5 (or leave it "
                "unset to keep every pick)."))
        for name in ("cross_class", "refine"):
            if not isinstance(getattr(self, name), bool):
                raise DeepETPickerError(f"{name} = {getattr(self, name)!r}: expected true or "
                                        f"false.")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, config: Optional[TrainConfig] = None, **overrides) -> "PickSettings":
        """The settings of a training config (``seg_thresh``, ``t_lm``, ``t_dist``) with
        ``overrides`` (None values ignored) on top; an unknown name is refused."""
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            raise DeepETPickerError(
                f"Unknown picking setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(cls.names())}.")
        values: dict = {}
        if config is not None:
            values.update(t_seg=config.seg_thresh, t_lm=config.t_lm, t_dist=config.t_dist,
                          localize=getattr(config, "localize", cls.localize))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def picks_from_scores(scores: Union[np.ndarray, torch.Tensor], diameters: Sequence[float],
                      settings: Optional[PickSettings] = None,
                      *, device: Union[None, str, torch.device] = None, tomo_name: str = "",
                      voxel_size: Optional[float] = None, report: Optional[Callable] = None,
                      label_diameters: Optional[Sequence[float]] = None) -> Picks:
    """Picks of one tomogram from its class score maps ``(K, z, y, x)``.

    ``diameters``: the particle diameter of each class in voxels (the config's
    ``ocp_diameter``); ``label_diameters``: the weak-label diameter of each class the network
    was trained on (the config's :meth:`class_label_diameters`), which sets the ball a pick's
    score is measured in unless ``score_radius`` is given. ``report(stage, done, total,
    item=...)`` is called while peaks are searched. The picks' ``meta`` records every setting used.
    """
    from deepetpicker.picking.peaks import find_picks

    settings = settings or PickSettings()
    picks = find_picks(scores, t_seg=settings.t_seg, t_lm=settings.t_lm, t_dist=settings.t_dist,
                      diameters=[float(d) for d in diameters], device=device,
                      score_radius=settings.score_radius, cross_class=settings.cross_class,
                      refine=settings.refine, tomo_name=tomo_name, voxel_size=voxel_size,
                      report=report, localize=settings.localize,
                      label_diameters=label_diameters)
    picks = apply_min_score(picks, settings.min_score, len(diameters))
    return apply_min_class_confidence(picks, settings.min_class_confidence)
