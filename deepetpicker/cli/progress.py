"""Running a job from the command line: the progress display, Ctrl+C, config warnings.

:class:`ProgressPrinter` shows a job's progress events; :func:`run_job` runs a job with one and
turns Ctrl+C into a request to stop (:class:`Interrupted`); :func:`config_warnings_as_lines`
shows each config warning as one line and :func:`say` writes a line on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from deepetpicker.progress import describe_progress

if TYPE_CHECKING:
    from deepetpicker.progress import CancelToken

INTERRUPTED = "Interrupted; finished outputs were kept, nothing half-written."


# --------------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------------
class ProgressPrinter:
    """Shows job progress events as one updating bar per stage (a terminal) or as log lines.

    On a terminal the current stage's bar is redrawn in place (at most every ``redraw``
    seconds, cut to the terminal's width) and a finished stage leaves its bar; elsewhere (CI,
    a pipe, a log file) a line is printed when a stage completes and at most every
    ``interval`` seconds in between. Events marked ``keep`` (a finished epoch) and messages
    without a count always get a line of their own that no bar overwrites. Writing never
    fails a job: when the stream is gone (a closed pipe) the printer falls silent.
    """

    def __init__(self, stream=None, interval: float = 10.0, width: int = 28,
                 redraw: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.width = width
        self.redraw = redraw
        self._last_print = float("-inf")   # the first event is always shown
        self._last_draw = float("-inf")
        self._drawn = None                 # (stage, item) of the bar on screen
        self._open_line = False
        self._silent = False

    def __call__(self, event) -> None:
        if event.keep and event.message:
            self._line(event.message)
            return
        if not event.total:
            if event.message:
                self._line(event.message)
            return
        now = time.monotonic()
        finished = event.done >= event.total
        if self.tty:
            key = (event.stage, event.item)
            if finished or key != self._drawn or now - self._last_draw >= self.redraw:
                self._write("\r\033[K" + self._fit(self._bar_text(event))
                            + ("\n" if finished else ""))
                self._open_line = not finished
                self._drawn = None if finished else key
                self._last_draw = now
        elif finished or now - self._last_print >= self.interval:
            self._write(self._bar_text(event) + "\n")
            self._last_print = now

    def _bar_text(self, event) -> str:
        return describe_progress(event, bar_width=self.width)

    def _fit(self, text: str) -> str:
        """Cut a bar to the terminal's width (a wrapped bar could not be redrawn in place)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return text
        if columns < 20:            # unknown (a terminal that reports no size)
            return text
        return text if len(text) < columns else text[:columns - 1]

    def _line(self, text: str) -> None:
        """A permanent line; on a terminal it takes the place of an open bar."""
        if self._open_line and self.tty:
            self._write("\r\033[K" + text + "\n")
        else:
            self._write(text + "\n")
        self._open_line = False
        self._drawn = None

    def close(self) -> None:
        """End an open bar line, so that what follows starts on a line of its own."""
        if self._open_line:
            self._write("\n")
            self._open_line = False
            self._drawn = None

    def notice(self, text: str) -> None:
        """A line written from a signal handler: straight to the file descriptor, since the
        handler may run while the stream's own buffer is in the middle of a write."""
        data = ("\n" if self._open_line else "") + text + "\n"
        self._open_line = False
        self._drawn = None
        try:
            os.write(self.stream.fileno(), data.encode("utf-8", "replace"))
        except (AttributeError, OSError, ValueError):
            self._write(data)

    def _write(self, text: str) -> None:
        if self._silent:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # the reader went away; the job goes on
            self._silent = True


# --------------------------------------------------------------------------------------------
# Running a job: Ctrl+C, config warnings
# --------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """The user stopped a job (Ctrl+C); ``partial`` is what it had finished, when it says."""

    def __init__(self, partial=None) -> None:
        super().__init__(INTERRUPTED)
        self.partial = partial


@contextmanager
def ctrl_c_cancels(token: CancelToken, printer: ProgressPrinter) -> Iterator[None]:
    """While the block runs, the first Ctrl+C sets ``token`` (the job stops at its next check
    and keeps what it finished) and the second raises KeyboardInterrupt (stops at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        printer.notice("Stopping after the current step; press Ctrl+C again to stop at once.")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        # once stopping, a further Ctrl+C has nothing left to stop: the command is reporting
        # what it finished and exits with 130. Ignored by the system, not by a Python
        # handler, so that one arriving while the interpreter shuts down (when Python puts
        # the default action back) cannot kill the process before its last words are out;
        # main puts the handler back for callers from Python.
        signal.signal(signal.SIGINT, signal.SIG_IGN if token.cancelled else previous)


def run_job(job: Callable[..., Any], *args, **kwargs) -> Any:
    """Run a job function with a progress printer; Ctrl+C cancels it through its token.

    Raises :class:`Interrupted` (with the job's partial result, when it gives one) when the
    user stopped it.
    """
    from deepetpicker.progress import Cancelled, CancelToken

    token = CancelToken()
    printer = ProgressPrinter()
    try:
        with ctrl_c_cancels(token, printer):
            return job(*args, progress=printer, cancel=token, **kwargs)
    except KeyboardInterrupt:
        token.cancel()
        raise Interrupted() from None
    except Cancelled as exc:
        raise Interrupted(exc.partial) from None
    except Exception:
        if token.cancelled:     # a failure caused by the interruption, e.g. a data-loader
            raise Interrupted() from None   # worker that the terminal's Ctrl+C also hit
        raise
    finally:
        printer.close()


@contextmanager
def config_warnings_as_lines() -> Iterator[None]:
    """Show each ConfigWarning as its one readable line on stderr (not Python's format with
    a source file and line of ours); other warnings are shown as before."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        from deepetpicker.config import ConfigWarning, warning_line

        if issubclass(category, ConfigWarning):
            say(warning_line(message))
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = original


def say(text: str) -> None:
    """A line on stderr that never raises (stderr may be a closed pipe)."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def summary_of(result: object) -> str:
    """What a job's result says it did (its ``summary``), or "" when it says nothing."""
    summary = getattr(result, "summary", None)
    if callable(summary):
        return summary()
    return summary if isinstance(summary, str) else ""
