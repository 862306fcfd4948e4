"""Validation during training: the loss on validation patches, then the validation
tomograms picked as ``predict`` picks them and scored against their particles (one-to-one
within a particle radius), with the detection thresholds tuned on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deepetpicker.matching import DistanceResult

if TYPE_CHECKING:
    from deepetpicker.train.job import Trainer

#: Particles whose patches give the validation loss (spread evenly over the val tomograms).
VAL_LOSS_PATCHES = 64
#: A pick matches a validation particle when it lies within this fraction of its radius.
MATCH_FRACTION = 1.0


def validate(trainer: Trainer, epoch: int) -> dict:
    """Validation loss on particle patches, then pick the validation tomograms with the
    network :attr:`Trainer.eval_net` and score the picks: precision, recall, F1 overall and
    per class, and the scores under the detection thresholds tuned on them.

    A validation tomogram with a mask is picked as ``predict --mask`` picks it (tiles
    outside the mask skipped, picks outside dropped), and scored against its particles
    inside the mask."""
    from deepetpicker.io.tomogram import load_tomogram
    from deepetpicker.matching import evaluate_distance, pool_distance
    from deepetpicker.picking.mask import TileFilter, load_mask, picks_in_mask
    from deepetpicker.picking.settings import PickSettings, picks_from_scores
    from deepetpicker.picking.tiling import scan

    cfg = trainer.cfg
    k = int(cfg.num_cls)
    row: dict = {}
    if len(trainer.val_set):
        total, count = 0.0, 0
        for images, targets in trainer.loader(trainer.val_set, 0, False):
            trainer.report.check()
            logits = trainer._eval_logits(images)
            total += float(trainer.objective(logits, targets.to(trainer.device))) * len(images)
            count += len(images)
        row["val_loss"] = total / count
    else:
        row["val_loss"] = None
    results, n_picks, tables = [], 0, []
    settings = PickSettings.from_config(cfg)
    for entry in trainer.val_entries:
        volume = load_tomogram(entry.data_path, mmap=True).data
        region = (None if entry.mask_path is None else
                  load_mask(entry.mask_path, entry.shape, entry.data_path))
        scores = scan(volume, trainer.predict_scores, cfg.patch_size, cfg.padding_size,
                      cfg.batch_size, report=trainer.report, num_classes=k, stage="validate",
                      item=f"epoch {epoch + 1} {entry.stem}",
                      keep_tile=None if region is None else TileFilter(region,
                                                                       cfg.patch_size))
        picks = picks_from_scores(scores, cfg.ocp_diameter, settings, tomo_name=entry.stem,
                                  label_diameters=cfg.class_label_diameters())
        del scores
        truth = entry.picks
        if region is not None:
            picks, truth = picks_in_mask(picks, region), picks_in_mask(truth, region)
        n_picks += len(picks)
        tables.append((picks, truth))
        results.append(evaluate_distance(picks, truth,
                                         radii=[d / 2.0 for d in cfg.ocp_diameter],
                                         fraction=MATCH_FRACTION, num_cls=k))
    pooled = pool_distance(results)
    for c in pooled.per_class:
        row.update({f"precision_{c.class_id}": c.precision,
                    f"recall_{c.class_id}": c.recall, f"f1_{c.class_id}": c.f1})
        row.update(spread_over_tomograms(results, c.class_id))
    row["precision"], row["recall"] = pooled.precision, pooled.recall
    row["f1"] = pooled.macro_f1 or 0.0    # mean over the classes that have particles
    row["n_picks"] = n_picks
    row.update(tuned_scores(tables, [d / 2.0 for d in cfg.ocp_diameter], k))
    return row


def tuned_scores(tables: list, radii: list, num_cls: int) -> dict:
    """The validation scores under the detection thresholds tuned on these tomograms (what
    prediction uses): per class the threshold (``min_score_<k>``), the localisation F1 with
    them and with every pick kept (``loc_f1``, ``loc_f1_all``: a particle found by a pick of
    any class counts), and the class F1 of the picks they keep (``class_f1`` and per class
    ``class_f1_<k>``: a pick must name the particle's class)."""
    from deepetpicker.matching import best_detection_thresholds, evaluate_distance, pool_distance
    from deepetpicker.picking.settings import apply_min_score

    preds, truths = [p for p, _ in tables], [t for _, t in tables]
    choices = best_detection_thresholds(preds, truths, radii=radii, num_cls=num_cls,
                                        fraction=MATCH_FRACTION)
    thresholds = [choice.threshold for choice in choices]
    row: dict = {f"min_score_{c.class_id}": c.threshold for c in choices}
    row["loc_f1"], row["loc_f1_all"] = choices[0].f1, choices[0].f1_all
    kept = [apply_min_score(p, thresholds, num_cls) for p in preds]
    pooled = pool_distance([evaluate_distance(p, t, radii=radii, fraction=MATCH_FRACTION,
                                              num_cls=num_cls) for p, t in zip(kept, truths)])
    row.update({f"class_f1_{c.class_id}": c.f1 for c in pooled.per_class})
    row["class_f1"] = pooled.macro_f1 or 0.0
    row["n_picks_tuned"] = int(sum(len(p) for p in kept))
    return row


def spread_over_tomograms(results: list[DistanceResult], class_id: int) -> dict:
    """How class ``class_id``'s F1 varies over the validation tomograms that hold particles
    of it: ``f1_<k>_min`` and ``f1_<k>_std`` (0 with one tomogram; None with none)."""
    scores = [pc.f1 for r in results for pc in r.per_class
              if pc.class_id == class_id and pc.n_truth]
    if not scores:
        return {f"f1_{class_id}_min": None, f"f1_{class_id}_std": None}
    return {f"f1_{class_id}_min": float(min(scores)),
            f"f1_{class_id}_std": float(np.std(scores))}
