"""Reading the text of pick files: the helpers every reader of a text format shares."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import parse_numbers


def read_text(path: Path) -> str:
    """The text of a pick file (UTF-8, a leading byte-order mark dropped); a file that is not
    text is an error naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeepETPickerError(
            f"{path} is not a text file (byte {exc.start} is not UTF-8). Check that it is the "
            f"pick file and not a tomogram or an archive.") from exc


def row_numbers(path: Path, lineno: int, tokens: Sequence[str], what: str,
                columns: Optional[Sequence[int]] = None) -> list[float]:
    """Parse ``tokens`` (1-based column numbers ``columns``) as finite floats."""
    numbers = columns or range(1, len(tokens) + 1)
    return parse_numbers(path, lineno, tokens, [f"{what} column {i}" for i in numbers])
