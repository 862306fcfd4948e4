"""Naming rules: object names of classes, copick's name rule, and RELION tomogram names.

Formats that hold one object per file (box, copick, ndjson) name the object
``class_names[k - 1]`` or, without a name, ``class-<k>``. copick refuses object names with
spaces, underscores, control characters or ``<>:"/\\|?*`` (``copick.util.escape``); such a
name is an error, not a file. Reading maps object names back to class ids: a name in
``class_names`` gets its id, ``class-<k>`` gets ``k``, and any other name gets the next free
id and is added to the list (pass a list to see the names found).

The tomogram names RELION 4/5 files hold (``rlnTomoName``) relate to ours through
:class:`TomoNames`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.format_specs import format_names
from deepetpicker.io.formats.text import read_text
from deepetpicker.io.picks import Picks

TomoNameSpec = Union[None, str, os.PathLike, Mapping[str, str], Sequence[str], "TomoNames"]

NAMED_FORMATS = format_names(lambda spec: spec.one_object_per_file)

# copick's rule for object names, user ids and session ids (copick.util.escape.sanitize_name):
# these characters are replaced by '-', and leading/trailing '-' are stripped.
_COPICK_INVALID = re.compile(r'[<>:"/\\|?*\x00-\x1F\x7F\s_]')
# Characters that cannot be part of a file name here (box and ndjson object names).
_FILE_INVALID = re.compile(r"[/\\\x00-\x1F\x7F]")


def class_name(cls_id: int, class_names: Optional[Sequence[str]] = None) -> str:
    """The object name of class ``cls_id`` in one-object-per-file formats."""
    if class_names and 1 <= cls_id <= len(class_names):
        return str(class_names[cls_id - 1])
    return f"class-{int(cls_id)}"


def class_from_name(name: str, class_names: Optional[Sequence[str]] = None) -> Optional[int]:
    """The class id for an object name written by :func:`class_name` (None if unknown)."""
    if class_names and name in class_names:
        return list(class_names).index(name) + 1
    match = re.fullmatch(r"class-(\d+)", name)
    return int(match.group(1)) if match and int(match.group(1)) >= 1 else None


# --------------------------------------------------------------------------------------------
# Object names
# --------------------------------------------------------------------------------------------
def copick_name_problem(name: str) -> Optional[str]:
    """Why copick would refuse ``name`` as a pickable object name (None when it is valid).

    copick's models check ``name == sanitize_name(name)``, where ``sanitize_name`` replaces
    ``<>:"/\\|?*``, control characters, whitespace and ``_`` by ``-`` and strips leading and
    trailing ``-`` (copick ``src/copick/util/escape.py``, ``PickableObject.validate_name``).
    """
    if not name:
        return "is empty"
    bad = sorted(set(_COPICK_INVALID.findall(name)))
    if bad:
        shown = ", ".join("space" if c == " " else repr(c) for c in bad)
        return f"contains {shown}"
    if name != name.strip("-"):
        return "starts or ends with '-'"
    return None


def copick_safe_name(name: str) -> str:
    """``name`` as copick's ``sanitize_name`` would clean it (invalid characters -> '-')."""
    return _COPICK_INVALID.sub("-", name).strip("-")


def check_class_names(class_names: Optional[Sequence[str]], fmt: Optional[str] = None) -> None:
    """Raise unless ``class_names`` (one per class id from 1) can name the objects of format
    ``fmt``: unique non-empty text always; usable in a file name for box, copick and ndjson;
    a valid copick object name for copick."""
    if not class_names:
        return
    if isinstance(class_names, str):
        raise DeepETPickerError(
            f"Class names must be a list with one name per class, not the text "
            f"{class_names!r}.")
    seen: dict[str, int] = {}
    for k, name in enumerate(class_names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise DeepETPickerError(
                f"Class name {k} is {name!r}; give one non-empty name per class, e.g. "
                f"--class-names ribosome proteasome.")
        if name in seen:
            raise DeepETPickerError(
                f"Class names {seen[name]} and {k} are both {name!r}; each class needs its own "
                f"name.")
        seen[name] = k
        if fmt == "copick":
            problem = copick_name_problem(name)
            if problem:
                safe = copick_safe_name(name) or f"class-{k}"
                raise DeepETPickerError(
                    f"Class name {name!r} (class {k}) is not a valid copick object name: it "
                    f"{problem}. copick refuses spaces, underscores, control characters, "
                    f"<>:\"/\\|?* and a leading or trailing '-', so the file is not written. "
                    f"Rename the class, e.g. --class-names ... {safe!r} ...")
        elif fmt in NAMED_FORMATS and _FILE_INVALID.search(name):
            raise DeepETPickerError(
                f"Class name {name!r} (class {k}) holds a path separator or control character, "
                f"so it cannot be part of a {fmt} file name; rename the class.")


class ClassIds:
    """Object names -> class ids while reading box, copick and ndjson files.

    ``names`` (the caller's list when one is given) holds the name of class ``k`` at
    ``k - 1``; slots of classes met only by number hold ``class-<k>``. A name not in the list
    takes the id its file gives when that slot is free, else the next id, and is added.
    """

    def __init__(self, names: Optional[Sequence[str]] = None) -> None:
        self.names: list = names if isinstance(names, list) else list(names or [])
        self.used: set[int] = set()

    def _pad(self, k: int) -> None:
        while len(self.names) < k:
            self.names.append(f"class-{len(self.names) + 1}")

    def _free(self, k: int) -> bool:
        return k > len(self.names) or (self.names[k - 1] == f"class-{k}" and k not in self.used)

    def id_for(self, name: Optional[str] = None, number: Optional[int] = None) -> int:
        if name and name in self.names:
            k = self.names.index(name) + 1
        elif name and class_from_name(name) is not None:
            k = class_from_name(name)
            self._pad(k)
        elif name:
            if number is not None and number >= 1 and self._free(number):
                k = number
                self._pad(k)
                self.names[k - 1] = name
            else:
                k = len(self.names) + 1
                while not self._free(k):
                    k += 1
                self._pad(k)
                self.names[k - 1] = name
        elif number is not None and number >= 1:
            k = number
            self._pad(k)
        else:
            k = 1
        self.used.add(k)
        return k


def _object_suffix(cls_id: int, class_names: Optional[Sequence[str]]) -> str:
    """``_class-<k>`` or ``_class-<k>-<name>``: the id and name of a box/ndjson file's object,
    unambiguous whatever the tomogram is called."""
    name = class_name(cls_id, class_names)
    default = f"class-{int(cls_id)}"
    return f"_{default}" if name == default else f"_{default}-{name}"


def split_object_stem(stem: str, ids: ClassIds,
                      tomo_names: Iterable[str] = ()) -> tuple[str, int, Optional[str]]:
    """``<tomo>_<object>`` file stem -> (tomogram, class id, object name or None).

    ``_class-<k>[-<name>]`` suffixes are recognised whatever the names; otherwise a known
    object name or a known tomogram name splits the stem; else it is all tomogram, class 1.
    """
    match = re.fullmatch(r"(.+)_class-(\d+)(?:-(.+))?", stem)
    if match and int(match.group(2)) >= 1:
        name = match.group(3)
        return match.group(1), ids.id_for(name, int(match.group(2))), name
    for name in sorted((n for n in ids.names if n), key=len, reverse=True):
        if stem.endswith("_" + name) and len(stem) > len(name) + 1:
            return stem[: -len(name) - 1], ids.id_for(name), name
    for tomo in sorted(set(tomo_names), key=len, reverse=True):
        if stem.startswith(tomo + "_") and len(stem) > len(tomo) + 1:
            name = stem[len(tomo) + 1:]
            return tomo, ids.id_for(name), name
    return stem, ids.id_for(None, 1), None


def per_object(table: Picks, class_names: Optional[Sequence[str]]) -> list[tuple[str, Picks]]:
    """(file-name suffix, rows) per class; a table of unnamed class 1 alone needs no suffix."""
    ids = sorted(set(table.classes.tolist())) or [1]
    if ids == [1] and class_name(1, class_names) == "class-1":
        return [("", table)]
    return [(_object_suffix(k, class_names), table.of_class(k)) for k in ids]


def write_object_files(tables: Iterable[Picks], out_dir: Path,
                       class_names: Optional[Sequence[str]], suffix: str,
                       line_of: Callable[[Sequence[float]], str]) -> list[Path]:
    """One text file per tomogram and object (``<tomogram><object suffix><suffix>``), a line
    per pick made by ``line_of(xyz)``: the box and ndjson writers."""
    from deepetpicker.io.atomic import write_text_atomic

    written = []
    for table in tables:
        for object_suffix, rows in per_object(table, class_names):
            path = out_dir / f"{table.tomo_name}{object_suffix}{suffix}"
            write_text_atomic(path, "".join(line_of(xyz) + "\n" for xyz in rows.xyz))
            written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Tomogram names in RELION 4/5 files
# --------------------------------------------------------------------------------------------
class TomoNames:
    """How RELION's ``rlnTomoName`` relates to DeepETPicker's tomogram names (file stems).

    * a template with ``{stem}`` gives rlnTomoName from our name: ``"TS_{stem}"`` writes
      tomogram ``01`` as ``TS_01``;
    * a template with ``{name}`` says what our tomograms are called given rlnTomoName:
      ``"rec_{name}"`` for RELION 5's own reconstructions ``rec_<rlnTomoName>.mrc``, so picks of
      ``rec_TS_01`` are written as ``TS_01``;
    * a mapping from our names to RELION names (``{"rec_TS_01": "TS_01"}``).

    Reading applies the same relation backwards, so a RELION file reads back under our names.
    """

    def __init__(self, template: Optional[str] = None,
                 mapping: Optional[Mapping[str, str]] = None, source: str = "") -> None:
        self.template, self.source = template, source
        self.mapping = dict(mapping or {})
        self.field = None
        if template is not None:
            fields = re.findall(r"\{([^{}]*)\}", template)
            if len(fields) != 1 or fields[0] not in ("stem", "name") \
                    or template.count("{") != 1 or template.count("}") != 1:
                raise DeepETPickerError(
                    f"Tomogram name template {template!r} must hold {{stem}} (our tomogram "
                    f"name, e.g. 'TS_{{stem}}') or {{name}} (rlnTomoName, e.g. 'rec_{{name}}' for "
                    f"RELION 5 tomograms rec_<rlnTomoName>.mrc) exactly once.")
            self.field = fields[0]
            head, tail = template.split("{" + self.field + "}")
            self._pattern = re.compile(re.escape(head) + "(.+)" + re.escape(tail))
        inverse: dict[str, str] = {}
        for stem, name in self.mapping.items():
            if name in inverse:
                raise DeepETPickerError(
                    f"{self._where()}Tomograms {inverse[name]!r} and {stem!r} are both mapped to "
                    f"rlnTomoName {name!r}; each tomogram needs its own name.")
            inverse[name] = stem
        self._inverse = inverse

    def _where(self) -> str:
        return f"{self.source}: " if self.source else ""

    def describe(self) -> str:
        if self.template is not None:
            return f"--tomo-name {self.template!r}"
        return f"the tomogram name mapping{' in ' + self.source if self.source else ''}"

    def relion(self, stem: str) -> str:
        """Our tomogram name -> rlnTomoName."""
        if self.field == "stem":
            return self.template.replace("{stem}", stem)
        if self.field == "name":
            match = self._pattern.fullmatch(stem)
            if not match:
                raise DeepETPickerError(
                    f"Tomogram '{stem}' does not match {self.describe()}, so its rlnTomoName is "
                    f"unknown. Use a template that fits all tomograms, or STEM=NAME pairs.")
            return match.group(1)
        if stem not in self.mapping:
            raise DeepETPickerError(
                f"Tomogram '{stem}' has no entry in {self.describe()} (it names "
                f"{', '.join(sorted(self.mapping)) or 'no tomogram'}). Add '{stem}=NAME'.")
        return self.mapping[stem]

    def stem(self, name: str, source: str = "") -> str:
        """rlnTomoName -> our tomogram name."""
        where = f"{source}: " if source else ""
        if self.field == "name":
            return self.template.replace("{name}", name)
        if self.field == "stem":
            match = self._pattern.fullmatch(name)
            if not match:
                raise DeepETPickerError(
                    f"{where}rlnTomoName '{name}' does not match {self.describe()}. Use a "
                    f"template that fits the file's names, or STEM=NAME pairs.")
            return match.group(1)
        if name not in self._inverse:
            raise DeepETPickerError(
                f"{where}rlnTomoName '{name}' is not among the names of {self.describe()} "
                f"({', '.join(sorted(self._inverse)) or 'none'}). Add 'STEM={name}'.")
        return self._inverse[name]


def tomo_names(spec: TomoNameSpec) -> Optional[TomoNames]:
    """A :class:`TomoNames` from a template (``'rec_{name}'``, ``'TS_{stem}'``), a mapping,
    ``STEM=NAME`` strings, or a text file of ``STEM NAME`` lines (``#`` comments)."""
    if spec is None or isinstance(spec, TomoNames):
        return spec
    if isinstance(spec, Mapping):
        return TomoNames(mapping={str(k): str(v) for k, v in spec.items()})
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not items:
        return None
    if len(items) == 1 and "{" in str(items[0]):
        return TomoNames(template=str(items[0]))
    if all("=" in str(item) for item in items):
        pairs = {}
        for item in items:
            stem, name = (part.strip() for part in str(item).split("=", 1))
            if not stem or not name:
                raise DeepETPickerError(
                    f"Tomogram name pair {item!r}: expected STEM=NAME, e.g. rec_TS_01=TS_01.")
            pairs[stem] = name
        return TomoNames(mapping=pairs)
    if len(items) == 1 and Path(items[0]).is_file():
        return TomoNames(mapping=_read_name_map(Path(items[0])), source=str(items[0]))
    raise DeepETPickerError(
        f"Tomogram names {' '.join(map(str, items))!r}: give a template with {{stem}} or "
        f"{{name}} (e.g. 'rec_{{name}}'), STEM=NAME pairs, or a file of 'STEM NAME' lines.")


def _read_name_map(path: Path) -> dict[str, str]:
    mapping = {}
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.split("=", 1) if "=" in text else text.split()
        tokens = [t.strip() for t in tokens]
        if len(tokens) != 2 or not all(tokens):
            raise DeepETPickerError(
                f"{path}, line {lineno}: expected 'STEM NAME' (our tomogram name, then its "
                f"rlnTomoName), got {line.strip()!r}.")
        mapping[tokens[0]] = tokens[1]
    if not mapping:
        raise DeepETPickerError(f"{path} maps no tomogram names; write one 'STEM NAME' per line.")
    return mapping
