"""The value grammar of config files: tomogram id lists, number lists and the names each
setting accepts (with their aliases), and how they are written back.

The original program stores lists as strings: ``ocp_diameter`` ``"7,7,9"`` (one diameter per
class), ``gpu_ids`` ``"0,1"``, tomogram ids ``"0,2,5"`` or inclusive ranges ``"0-7"``. The
parsers here turn each into a list of ints and the formatters give the original's string
back. Names (label types, normalisations, losses, ...) are matched case-insensitively against
their aliases and brought to one canonical spelling.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Optional

from deepetpicker.errors import DeepETPickerError

#: Weak-label shapes: the original's names, each with the names it is also known by.
LABEL_TYPES = {
    "gaussian": ("gaussian", "tball", "truncated_ball", "truncated-ball", "truncatedball"),
    "sphere": ("sphere", "ball"),
    "cubic": ("cubic", "cube"),
}
NORM_TYPES = {
    "standardization": ("standardization", "standardisation", "standardize", "zscore",
                        "z-score", "std"),
    "normalization": ("normalization", "normalisation", "normalize", "minmax", "min-max",
                      "norm"),
}
OCP_TYPES = {"sphere": ("sphere", "ball")}
#: Training losses: config name -> (label shown in the GUI, other spellings accepted).
LOSS_NAMES = {"dice": ("Dice", ()), "mse": ("MSE", ()), "focal": ("Focal", ()),
              "iou": ("IoU", ())}
LOSSES = {name: (name, *aliases) for name, (_, aliases) in LOSS_NAMES.items()}
MODEL_NAMES = {"ResUNet": ("resunet", "resunet3d", "res_unet")}


class ConfigWarning(UserWarning):
    """A config file holds something we keep but do not use (an unknown key, a repeated key).

    The message names the file, the key and its value, and what happens to it.
    """


def warning_line(message: Any) -> str:
    """The line a person reads for a :class:`ConfigWarning`; the CLI prints it and the GUI
    shows it: ``warning: <file>: unknown key 'x' = 1 is kept ...``."""
    return "warning: " + " ".join(str(message).split())


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Value parsers
# ---------------------------------------------------------------------------------------------
def config_name(source: Optional[str]) -> str:
    return str(source) if source else "config"


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


#: What a text field may hold while it is typed (a validator's pattern; the value is then read
#: by the parser named): ids such as ``0-7, 9`` (:func:`parse_ids`), whole numbers such as
#: ``7, 7, 9`` (:func:`parse_int_list`), and a dataset name (no path separators).
IDS_TYPING_PATTERN = r"\s*(\d+(\s*-\s*\d+)?)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*,?\s*"
INT_LIST_TYPING_PATTERN = r"\s*\d+(\s*,\s*\d+)*\s*,?\s*"
NAME_PATTERN = r"[^/\\]+"


def parse_ids(value: Any, *, key: str = "ids", source: Optional[str] = None) -> list[int]:
    """Tomogram ids from ``"0-7"`` (inclusive range), ``"0,2,5"``, ``"0-3,7"``, an int or a list.

    Repeated ids are dropped; the order given is kept. An empty string gives ``[]``.
    Raises :class:`DeepETPickerError` naming ``key`` and ``source`` for anything else.
    """
    def bad(why: str) -> DeepETPickerError:
        return DeepETPickerError(
            f"{config_name(source)}: key '{key}' = {value!r}: {why}. Expected tomogram ids such as "
            f"\"0-7\" (an inclusive range), \"0,2,5\", \"0-3,7\" or a list of ints.")

    if is_int(value):
        items: list = [int(value)]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        if items == [""]:
            return []
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise bad(f"a {type(value).__name__} is not an id list")

    ids: list[int] = []
    for item in items:
        if is_int(item):
            new = [int(item)]
        elif isinstance(item, str):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
            if not match:
                raise bad(f"'{item}' is neither an id nor a range 'first-last'")
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            if last < first:
                raise bad(f"the range '{item}' runs backwards; write it as '{last}-{first}'")
            new = list(range(first, last + 1))
        else:
            raise bad(f"{item!r} is not an id")
        for i in new:
            if i < 0:
                raise bad(f"id {i} is negative; ids count tomograms from 0")
            if i not in ids:
                ids.append(i)
    return ids


_INT_LIST_EXAMPLES = {"gpu_ids": "0,1", "f_maps": "8,16,24,36", "label_diameters": "13,9,11"}


def parse_int_list(value: Any, *, key: str = "value",
                   source: Optional[str] = None) -> list[int]:
    """Integers from ``"7,7,9"`` (commas and/or spaces), an int or a list of ints.

    Raises :class:`DeepETPickerError` naming ``key`` and ``source`` for anything else.
    """
    def bad(why: str) -> DeepETPickerError:
        example = _INT_LIST_EXAMPLES.get(key, "7,7,9")
        return DeepETPickerError(
            f"{config_name(source)}: key '{key}' = {value!r}: {why}. Expected whole numbers "
            f"separated by commas, e.g. \"{example}\", or a list of ints.")

    if is_int(value):
        return [int(value)]
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise bad(f"a {type(value).__name__} is not a list of numbers")
    out = []
    for part in parts:
        if is_int(part):
            out.append(int(part))
        elif isinstance(part, str) and re.fullmatch(r"[+-]?\d+", part):
            out.append(int(part))
        else:
            raise bad(f"{part!r} is not a whole number")
    return out


def format_ids(ids: list[int]) -> str:
    """The original's string form of an id list: runs of three or more become ``first-last``."""
    parts, i = [], 0
    ids = [int(v) for v in ids]
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{ids[i]}-{ids[j]}")
            i = j + 1
        else:
            parts.append(str(ids[i]))
            i += 1
    return ",".join(parts)


def format_int_list(values: list[int]) -> str:
    """The original's string form of a number list, e.g. ``"7,7,9"``."""
    return ",".join(str(int(v)) for v in values)


def canonical_name(value: Any, names: dict, key: str, source: Optional[str]) -> str:
    """Map a name or alias (case-insensitive) to its canonical spelling."""
    if isinstance(value, str):
        low = value.strip().lower()
        for canon, aliases in names.items():
            if low == canon.lower() or low in aliases:
                return canon
    choices = ", ".join(f"'{c}'" for c in names)
    raise DeepETPickerError(f"{config_name(source)}: key '{key}' = {value!r} is not known; "
                            f"expected one of {choices}.")


def canonical_label_type(name: Any) -> str:
    """``'gaussian'`` (TBall), ``'sphere'`` (Ball) or ``'cubic'`` (Cube) for any accepted name."""
    return canonical_name(name, LABEL_TYPES, "label_type", None)

