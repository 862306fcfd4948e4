"""The one protocol for long work: typed progress events and cooperative cancellation.

A job is a plain function ``job(config, progress=None, cancel=None, **options)``. It calls
``progress(Progress(...))`` as it goes and calls ``cancel.check()`` at least once a second;
``check`` raises :class:`Cancelled` once :meth:`CancelToken.cancel` was called, so the job
unwinds through its ``finally`` blocks and leaves only complete outputs behind.

The CLI renders the events as progress bars; the GUI runs the same function in a QThread and
forwards each event as a Qt signal. Nothing here knows about either.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


class Cancelled(Exception):
    """Raised inside a job when its cancel token was set.

    ``partial``: what the job had finished before it stopped, in the form of its usual result
    (e.g. the tomograms already picked), when it can say; None otherwise.
    """

    def __init__(self, *args: Any, partial: Any = None) -> None:
        super().__init__(*args)
        self.partial = partial


@dataclass(frozen=True)
class Progress:
    """One progress event.

    ``stage`` names the step ("normalise", "train", "validate", ...), ``done``/``total`` count
    its units (``total`` 0 when unknown), ``message`` is a line for a log, ``metrics`` holds
    numbers worth plotting (loss, F1, ...), ``item`` names the file or epoch being worked on.
    """

    stage: str
    done: int = 0
    total: int = 0
    message: str = ""
    metrics: dict = field(default_factory=dict)
    item: str = ""
    eta_s: Optional[float] = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], Any]


class CancelToken:
    """A thread-safe flag a job polls; set it from any thread to stop the job."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class Reporter:
    """What a job holds: sends events, checks the token, estimates time left per stage."""

    def __init__(self, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        self._progress = progress
        self.token = cancel if cancel is not None else CancelToken()
        self._stage_start: dict[str, tuple[float, int]] = {}

    def check(self) -> None:
        self.token.check()

    def __call__(self, stage: str, done: int = 0, total: int = 0, message: str = "",
                 item: str = "", **metrics: Any) -> None:
        """Report progress of ``stage`` and check for cancellation."""
        now = time.monotonic()
        start = self._stage_start.get(stage)
        if start is None or done < start[1]:
            self._stage_start[stage] = start = (now, done)
        eta = None
        if total and done > start[1]:
            rate = (now - start[0]) / (done - start[1])
            eta = rate * (total - done)
        if self._progress is not None:
            self._progress(Progress(stage=stage, done=done, total=total, message=message,
                                    metrics=dict(metrics), item=item, eta_s=eta))
        self.token.check()

    def log(self, message: str, stage: str = "log") -> None:
        """A message with no progress count."""
        if self._progress is not None:
            self._progress(Progress(stage=stage, message=message))
