"""How good are the picks? Two matching rules, precision-recall curves, folder reports.

- :mod:`~deepetpicker.evaluate.occupancy`: the SHREC 2021 occupancy rule
  (:func:`evaluate_occupancy`, :class:`OccupancyResult`);
- :mod:`deepetpicker.matching` (shared with training validation): the distance rule of the CZII
  benchmark (:func:`evaluate_distance`, :class:`DistanceResult`);
- :mod:`~deepetpicker.evaluate.curves`: precision-recall curves (:func:`pr_curve`,
  :class:`PRCurve`);
- :mod:`~deepetpicker.evaluate.report`: text tables and the JSON file (:func:`format_report`);
- :mod:`~deepetpicker.evaluate.results`: what a folder evaluation found (:class:`FolderResult`,
  :class:`TomogramResult`) and its readable report;
- :mod:`~deepetpicker.evaluate.folder`: the folder job (:func:`evaluate_folder`).

Every result is a dataclass; its ``to_dict()`` is the JSON form the reports write.
"""

from deepetpicker.evaluate.curves import CurvePoint, PRCurve, pr_curve
from deepetpicker.evaluate.folder import OUTPUT_FILES, evaluate_folder
from deepetpicker.evaluate.occupancy import (
    OccupancyClassScores,
    OccupancyResult,
    dilate_occupancy,
    evaluate_occupancy,
    pool_occupancy,
)
from deepetpicker.evaluate.report import format_report
from deepetpicker.evaluate.results import FolderResult, TomogramResult
from deepetpicker.matching import (
    DistanceClassScores,
    DistanceResult,
    evaluate_distance,
    match_by_distance,
    pool_distance,
)

__all__ = ["CurvePoint", "DistanceClassScores", "DistanceResult", "FolderResult",
           "OUTPUT_FILES", "OccupancyClassScores", "OccupancyResult", "PRCurve",
           "TomogramResult", "dilate_occupancy", "evaluate_distance", "evaluate_folder",
           "evaluate_occupancy", "format_report", "match_by_distance", "pool_distance",
           "pool_occupancy", "pr_curve"]
