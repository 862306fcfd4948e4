"""Reading and writing config files; reading never runs the file.

A config file is one assignment, ``pre_config=`` (preprocessing) or ``train_configs=``
(training), followed by a dict literal. The original program writes the dict as JSON with one
key per line and reads it back with ``json.loads``; files written here use exactly that layout,
so each program loads the other's files.

The text after the ``=`` is parsed as JSON; when that fails the file is parsed as Python source
and accepted only if it is that single assignment of plain literals (numbers, strings,
True/False/None, lists, dicts; comments and trailing commas are fine), which is then read with
:func:`ast.literal_eval`. Anything else (a call, a name, an attribute, another statement) is
refused with an error before any value is looked at.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path
from typing import Any, Union

from deepetpicker.config.grammar import ConfigWarning, config_name, short_repr
from deepetpicker.config.keys import PRE_VAR, TRAIN_VAR
from deepetpicker.config.schema import PreprocessConfig, TrainConfig
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.types import PathLike

_MAX_FILE_BYTES = 1_000_000
_PREFIX_RE = re.compile(r"\A(?:[ \t\r]*(?:#[^\n]*)?\n)*[ \t]*(pre_config|train_configs)[ \t]*=")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DeepETPickerError(f"{path}: config file not found; check the path.")
    if path.is_dir():
        raise DeepETPickerError(f"{path}: is a folder; give the config file inside it "
                                f"(e.g. {path / 'configs' / 'name.py'}).")
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise DeepETPickerError(f"{path}: {path.stat().st_size} bytes is far too large for a "
                                f"config file; is this the right file?")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DeepETPickerError(f"{path}: not a text file (byte {err.start} is not UTF-8); "
                                f"give a config file written by DeepETPicker.") from None


def _warn_duplicates(pairs: list, where: str) -> dict:
    seen, result = set(), dict(pairs)
    for key, _ in pairs:
        if key in seen:
            warnings.warn(f"{where}: key '{key}' appears more than once; the last value "
                          f"({short_repr(result[key])}) is used.", ConfigWarning, stacklevel=5)
        seen.add(key)
    return result


def _describe(node: ast.AST, text: str) -> str:
    segment = ast.get_source_segment(text, node) or type(node).__name__
    segment = " ".join(segment.split())
    return segment if len(segment) <= 60 else segment[:57] + "..."


def _refuse(path: Path, node: ast.AST, text: str, what: str) -> DeepETPickerError:
    line = getattr(node, "lineno", "?")
    return DeepETPickerError(
        f"{path}, line {line}: {what} `{_describe(node, text)}` is not allowed. A config file "
        f"holds one assignment `pre_config={{...}}` or `train_configs={{...}}` of plain values "
        f"(numbers, strings, True/False/None, lists, dicts); nothing in the file was run.")


class _JsonNames(ast.NodeTransformer):
    """Turns the JSON words true/false/null into constants."""

    WORDS = {"true": True, "false": False, "null": None}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Constant(self.WORDS[node.id]), node)


def _parse_python(path: Path, text: str) -> tuple[str, dict]:
    where = str(path)
    try:
        tree = ast.parse(text, filename=where)
    except SyntaxError as err:
        raise DeepETPickerError(f"{path}, line {err.lineno}: cannot read the settings "
                                f"({err.msg}); expected `pre_config={{...}}` or "
                                f"`train_configs={{...}}` with a dict of plain values.") from None
    except (RecursionError, MemoryError, ValueError):
        raise DeepETPickerError(f"{path}: the settings are nested too deeply to be a "
                                f"config.") from None
    assignment = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            continue  # a docstring
        if (assignment is None and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id in (PRE_VAR, TRAIN_VAR)):
            assignment = stmt
            continue
        raise _refuse(path, stmt, text, "the statement")
    if assignment is None:
        raise DeepETPickerError(f"{path}: no `pre_config=` or `train_configs=` assignment; "
                                f"this is not a DeepETPicker config file.")
    value = assignment.value
    if not isinstance(value, ast.Dict):
        raise _refuse(path, value, text, "the value")
    for node in ast.walk(value):
        if isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Load)):
            if isinstance(node, ast.Dict) and any(k is None for k in node.keys):
                raise _refuse(path, node, text, "unpacking")
            continue
        if isinstance(node, ast.Constant):
            if node.value is None or type(node.value) in (bool, int, float, str):
                continue
            raise _refuse(path, node, text, "the value")
        if isinstance(node, ast.Name) and node.id in _JsonNames.WORDS:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) \
                and type(node.operand.value) in (int, float):
            continue
        if isinstance(node, (ast.USub, ast.UAdd)):
            continue
        what = {ast.Call: "the call", ast.Name: "the name", ast.Attribute: "the attribute"}
        raise _refuse(path, node, text, what.get(type(node), "the expression"))
    for node in ast.walk(value):
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    raise _refuse(path, key, text, "the key")
    keys = [k.value for k in value.keys]
    literal = ast.literal_eval(ast.fix_missing_locations(_JsonNames().visit(value)))
    _warn_duplicates([(k, literal.get(k)) for k in keys], where)
    return assignment.targets[0].id, _lists(literal)


def _lists(value: Any) -> Any:
    """Tuples become lists, as JSON would read them."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def read_config_dict(path: PathLike) -> tuple[str, dict]:
    """``(variable, settings)`` of a config file, ``variable`` being ``'pre_config'`` or
    ``'train_configs'``; the file is parsed, never run."""
    path = Path(path)
    text = _read_text(path)
    match = _PREFIX_RE.match(text)
    if match:
        try:
            data = json.loads(text[match.end():],
                              object_pairs_hook=lambda pairs: _warn_duplicates(pairs, str(path)))
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            return match.group(1), data
    return _parse_python(path, text)


def load_config(path: PathLike, check_paths: bool = False
                ) -> Union[PreprocessConfig, TrainConfig]:
    """Read a ``pre_config=`` file as :class:`PreprocessConfig` or a ``train_configs=`` file as
    :class:`TrainConfig`, validated (folders too with ``check_paths``)."""
    var, data = read_config_dict(path)
    cls = PreprocessConfig if var == PRE_VAR else TrainConfig
    cfg = cls.from_dict(data, source=path)
    if check_paths:
        cfg.validate(check_paths=True)
    return cfg


def load_preprocess_config(path: PathLike, check_paths: bool = False) -> PreprocessConfig:
    """Read a preprocessing config (``pre_config=``); a training config is refused."""
    cfg = load_config(path, check_paths=check_paths)
    if isinstance(cfg, TrainConfig):
        raise DeepETPickerError(f"{path}: is a training config (train_configs=); give the "
                                f"preprocessing config (pre_config=), usually "
                                f"<base_path>/configs/<name>.py saved by preprocessing.")
    return cfg


def load_train_config(path: PathLike, check_paths: bool = False) -> TrainConfig:
    """Read a training config (``train_configs=``); a preprocessing config is refused."""
    cfg = load_config(path, check_paths=check_paths)
    if not isinstance(cfg, TrainConfig):
        raise DeepETPickerError(f"{path}: is a preprocessing config (pre_config=); make a "
                                f"training config from it first, e.g. `deepetpicker "
                                f"train-config {path} --train-ids 0 --val-ids 0 -o train.py`.")
    return cfg


def written_by_save_config(path: PathLike) -> bool:
    """Whether a config file is exactly as :func:`save_config` writes it, so replacing it
    loses no hand edits (comments, layout)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Path(path).read_text(encoding="utf-8") == format_config(load_config(path))
    except (OSError, ValueError, DeepETPickerError):
        return False


def format_config(cfg: PreprocessConfig) -> str:
    """The file text: ``pre_config=``/``train_configs=`` and the dict as JSON, one key per line,
    exactly as the original program lays it out."""
    data = cfg.to_dict()
    indent = "\n" + " " * len(cfg.VAR + "={")
    items = []
    for key, value in data.items():
        try:
            items.append(json.dumps(key) + ": " + json.dumps(value, separators=(", ", ": "),
                                                             allow_nan=False))
        except (TypeError, ValueError):
            raise DeepETPickerError(f"{config_name(cfg.source)}: key '{key}' = {value!r} cannot be "
                                    f"written to a config file; use numbers, text, "
                                    f"true/false, null, lists or dicts.") from None
    return cfg.VAR + "={" + ("," + indent).join(items) + "}"


def save_config(cfg: PreprocessConfig, path: PathLike) -> Path:
    """Validate ``cfg`` and write it to ``path`` atomically in the original's format."""
    cfg.validate(check_paths=False)
    text = format_config(cfg)
    path = Path(path)
    write_text_atomic(path, text)
    return path
