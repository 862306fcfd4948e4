"""The one exception type for failures a user can fix.

Its message says what was wrong (the file, the key or line, the value) and what to do.
The CLI prints it without a traceback and exits non-zero; the GUI shows it in a dialog.
"""


class DeepETPickerError(Exception):
    """A problem with the user's input, files or settings, explained in the message."""
