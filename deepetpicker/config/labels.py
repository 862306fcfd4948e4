"""The label-size rule: how wide the weak labels are for particles of given diameters, when
one label diameter serves every class and when each class needs its own, and the folder the
labels are painted into.
"""

from __future__ import annotations

from typing import Any, Optional

from deepetpicker.config.grammar import format_int_list, is_int


def label_folder_name(label_type: str, label_diameter: int,
                      label_diameters: Optional[list] = None) -> str:
    """Folder name of the weak labels, ``<label_type><label_diameter>`` (e.g. ``gaussian9``);
    with one label diameter per class, ``<label_type><d1>-<d2>-...`` (e.g. ``gaussian5-11-9``),
    so labels painted with other diameters never share a folder."""
    if label_diameters is not None:
        return f"{label_type}{'-'.join(str(int(d)) for d in label_diameters)}"
    return f"{label_type}{label_diameter}"


#: A particle more than this many times wider than its weak label draws a warning. Measured
#: with the light network: 18-voxel rings or globules with 5-voxel labels (3.6 x) collapsed to
#: predicting background, and a 20-voxel ring with the 7-voxel label of a 10-voxel globule
#: (2.9 x) was never found in one of three benchmark seeds (found with its own 13-voxel label).
LABEL_SIZE_WARNING_RATIO = 2.5


def label_diameters_if_needed(diameters: list) -> tuple[int, Optional[list[int]]]:
    """``(label_diameter, label_diameters)`` for classes of these particle diameters: one
    label (about 60 % of the smallest particle) when it suits every class, and one per class
    (:func:`suggested_label_diameters`) only when some class is more than
    :data:`LABEL_SIZE_WARNING_RATIO` times wider than that label."""
    labels = suggested_label_diameters(diameters)
    single = min(labels)
    return single, (labels if too_wide_for_label(diameters, single) else None)


def too_wide_for_label(diameters: list, label_diameter: float) -> list[tuple[int, Any]]:
    """``(class, diameter)`` of the classes (numbered from 1) whose particles are more than
    :data:`LABEL_SIZE_WARNING_RATIO` times wider than a weak label of ``label_diameter``."""
    limit = LABEL_SIZE_WARNING_RATIO * float(label_diameter)
    return [(k, d) for k, d in enumerate(diameters, start=1) if float(d) > limit]


def suggested_label_diameters(diameters: list) -> list[int]:
    """A weak-label diameter for each particle diameter (voxels): about 60 % of it, odd, at
    least 3. A label this size covers the particle's body, not only its centre (which is
    empty in a hollow particle such as a ring)."""
    out = []
    for diameter in diameters:
        d = int(0.6 * float(diameter))
        d += d % 2 == 0
        out.append(max(3, d))
    return out


def label_diameters_example(ocp_diameter: Any) -> str:
    """``label_diameters`` suggested from the particle diameters, for messages."""
    diam = ocp_diameter
    if isinstance(diam, list) and diam and all(is_int(d) and d > 0 for d in diam):
        return format_int_list(suggested_label_diameters(diam))
    return "13,9,11"
