"""Preprocessing: intensity normalisation, weak labels, occupancy maps and the job that makes
them for a whole dataset."""

from deepetpicker.preprocess.job import PreprocessResult, preprocess, read_num_name
from deepetpicker.preprocess.labels import paint_labels, paint_occupancy, weak_label_mask
from deepetpicker.preprocess.normalize import (VolumeStats, apply_normalization, chunked_stats,
                                               normalize_to_file)

__all__ = ["PreprocessResult", "preprocess", "read_num_name", "weak_label_mask",
           "paint_labels", "paint_occupancy", "VolumeStats", "chunked_stats",
           "apply_normalization", "normalize_to_file"]
