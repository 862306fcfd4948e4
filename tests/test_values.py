"""Per-class values: one rule for diameters, merge distances, score radii and radii."""

import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.values import per_class


def test_one_value_a_list_or_a_mapping_become_one_value_per_class():
    assert per_class(5, 3, "d") == [5.0, 5.0, 5.0]
    assert per_class([5], 3, "d") == [5.0, 5.0, 5.0]
    assert per_class([5, 6, 7], 3, "d") == [5.0, 6.0, 7.0]
    assert per_class({1: 5, 2: 6}, 2, "d") == [5.0, 6.0]
    assert per_class(None, 2, "d", default=[1, 2]) == [1.0, 2.0]
    assert per_class([5, 6, 7], 2, "d") == [5.0, 6.0]          # classes beyond 2 not present


def test_wrong_counts_missing_classes_and_non_positive_values_are_named():
    with pytest.raises(DeepETPickerError, match=r"d has 2 value\(s\) \(5, 6\) for 3"):
        per_class([5, 6], 3, "d")
    with pytest.raises(DeepETPickerError, match=r"d has 3 value\(s\).*for 2"):
        per_class([5, 6, 7], 2, "d", exact=True)
    with pytest.raises(DeepETPickerError, match="d has no value for class 2"):
        per_class({1: 5}, 2, "d")
    with pytest.raises(DeepETPickerError, match="d is required"):
        per_class(None, 2, "d")
    with pytest.raises(DeepETPickerError, match="d: class 2 has -1"):
        per_class([5, -1], 2, "d", positive=True)
