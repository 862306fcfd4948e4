"""The one exception type for failures a user can fix.

Its message says what was wrong (the file, the key or line, the value) and what to do.
The CLI prints it without a traceback and exits non-zero; the GUI shows it in a dialog.
"""

from typing import Iterable


class DeepETPickerError(Exception):
    """A problem with the user's input, files or settings, explained in the message."""


def listed(items: Iterable[object], limit: int = 5) -> str:
    """The first ``limit`` items, then how many more: ``a, b, c and 4 more``; for messages
    naming files or names without flooding the screen."""
    items = [str(item) for item in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
