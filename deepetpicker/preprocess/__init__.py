"""Preprocessing: weak labels, occupancy maps and the job that normalises a whole dataset and
paints them (the normalisation itself is :mod:`deepetpicker.normalize`, which prediction uses
too)."""

from deepetpicker.preprocess.job import PreprocessResult, preprocess, read_num_name
from deepetpicker.preprocess.labels import paint_labels, paint_occupancy, weak_label_mask

__all__ = ["PreprocessResult", "preprocess", "read_num_name", "weak_label_mask",
           "paint_labels", "paint_occupancy"]
