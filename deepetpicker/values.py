"""Per-class settings: one number for every class, one per class, or a mapping by class id.

:func:`per_class` is the one place that turns such a value into a list with one entry per
class (diameters, merge distances, score radii, evaluation radii).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from deepetpicker.errors import DeepETPickerError

#: What :func:`per_class` accepts: None, one number, one per class or a mapping by class id.
PerClassValue = Union[None, float, Sequence[float], dict[int, float]]


def per_class(value: PerClassValue, num_cls: int, name: str,
              default: Optional[Sequence[float]] = None,
              exact: bool = False, positive: bool = False) -> list[float]:
    """``value`` as a list of ``num_cls`` floats (class 1 first).

    ``value``: None (then ``default``, or an error when there is none), one number (every
    class), a sequence (one entry per class; a single entry serves every class; with
    ``exact`` the length must be ``num_cls``, otherwise extra entries for classes beyond
    ``num_cls`` are ignored) or a mapping from class id. ``positive`` refuses values <= 0.
    Errors name the setting, the values given and what is expected.
    """
    if value is None:
        if default is None:
            raise DeepETPickerError(
                f"{name} is required: give one value per class ({num_cls} class(es)), in "
                f"voxels.")
        values = [float(v) for v in default]
    elif isinstance(value, dict):
        try:
            values = [float(value[c]) for c in range(1, num_cls + 1)]
        except KeyError as exc:
            raise DeepETPickerError(f"{name} has no value for class {exc.args[0]}; give one "
                                    f"per class 1..{num_cls}.") from None
    elif np.ndim(value) == 0:
        values = [float(value)] * num_cls
    else:
        values = [float(v) for v in value]
        if len(values) == 1:
            values = values * num_cls
        elif len(values) < num_cls or (exact and len(values) != num_cls):
            shown = ", ".join(f"{v:g}" for v in values)
            raise DeepETPickerError(
                f"{name} has {len(values)} value(s) ({shown}) for {num_cls} class(es); give "
                f"one value per class.")
        values = values[:num_cls]
    if positive:
        for c, v in enumerate(values, start=1):
            if not v > 0:
                raise DeepETPickerError(f"{name}: class {c} has {v:g}; give positive numbers "
                                        f"of voxels.")
    return values
