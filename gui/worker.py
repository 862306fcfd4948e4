"""Run any job function in a background thread and turn what it reports into Qt signals.

A job is a plain function ``job(*args, progress=..., cancel=..., **kwargs)`` from the core
(see :mod:`deepetpicker.progress`). :class:`JobWorker` calls it in a :class:`QThread`, hands it a
progress callback and a :class:`~deepetpicker.progress.CancelToken`, and emits

- ``progress(Progress)`` for the job's events (plain count updates are thinned to at most
  one every ``min_interval`` seconds so a chatty job cannot flood the window),
- exactly one of ``finished(result)``, ``failed(message, details)`` or ``stopped()``,
- ``ended()`` once the thread has been left, whatever the outcome.

``failed`` carries the core's message for a :class:`DeepETPickerError` (``details`` empty);
for any other exception a short message and the traceback in ``details`` (also logged).
:meth:`JobWorker.stop` only sets the token: the job stops at its next check and unwinds
through its own clean-up, so threads are never killed.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable, Optional

from PyQt5.QtCore import QObject, QThread, pyqtSignal

from deepetpicker.errors import DeepETPickerError
from deepetpicker.progress import Cancelled, CancelToken, Progress

log = logging.getLogger("deepetpicker.gui")


class _Thread(QThread):
    """The thread that executes one worker's job."""

    def __init__(self, worker: "JobWorker") -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:  # noqa: D401 - Qt entry point
        self._worker._execute()


class JobWorker(QObject):
    """Runs ``job(*args, progress=cb, cancel=token, **kwargs)`` once, in its own thread."""

    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str, str)
    stopped = pyqtSignal()
    ended = pyqtSignal()

    def __init__(self, job: Callable[..., Any], *args: Any, name: str = "",
                 min_interval: float = 0.05, parent: Optional[QObject] = None,
                 **kwargs: Any) -> None:
        super().__init__(parent)
        self.job = job
        self.args = args
        self.kwargs = kwargs
        self.name = name or getattr(job, "__name__", "job")
        self.token = CancelToken()
        self.min_interval = float(min_interval)
        self.outcome: Optional[str] = None  # "finished" | "failed" | "stopped" once known
        self.partial: Any = None            # a stopped job's result so far, when it gives one
        self._last_emit = 0.0
        self._last_key: Optional[tuple] = None
        self._thread = _Thread(self)
        self._thread.finished.connect(self._on_thread_finished)

    # -- control, from the GUI thread ------------------------------------------------------
    def start(self) -> None:
        """Start the job in its thread (a worker runs once)."""
        if self._thread.isRunning() or self.outcome is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop; it stops at its next cancellation check."""
        self.token.cancel()

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, msecs: int = 5000) -> bool:
        """Block until the thread ends or ``msecs`` pass; True when it has ended."""
        return self._thread.wait(int(msecs))

    def _on_thread_finished(self) -> None:
        self._thread.wait()  # the thread is at its very end; make sure it is gone
        self.ended.emit()

    # -- inside the thread -----------------------------------------------------------------
    def _report(self, event: Progress) -> None:
        key = (event.stage, event.total)
        now = time.monotonic()
        significant = (key != self._last_key or event.message or event.metrics
                       or (event.total and event.done >= event.total))
        if significant or now - self._last_emit >= self.min_interval:
            self._last_key = key
            self._last_emit = now
            self.progress.emit(event)

    def _execute(self) -> None:
        try:
            result = self.job(*self.args, progress=self._report, cancel=self.token,
                              **self.kwargs)
        except Cancelled as exc:
            self.outcome = "stopped"
            self.partial = exc.partial
            self.stopped.emit()
        except DeepETPickerError as exc:
            self.outcome = "failed"
            self.failed.emit(str(exc), "")
        except MemoryError:
            self.outcome = "failed"
            log.exception("%s ran out of memory", self.name)
            self.failed.emit(f"{self.name} ran out of memory. Close other programs or use "
                             f"smaller settings (batch size, patch size) and try again.",
                             traceback.format_exc())
        except Exception as exc:  # anything unexpected: report, log, keep the app alive
            self.outcome = "failed"
            log.exception("%s failed", self.name)
            self.failed.emit(f"{self.name} stopped on an unexpected error: "
                             f"{type(exc).__name__}: {exc}. The full report is in the log.",
                             traceback.format_exc())
        else:
            self.outcome = "finished"
            self.finished.emit(result)
