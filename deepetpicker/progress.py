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
from collections import deque
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
    ``eta_s`` is the estimated time left for the stage (None until it can be estimated).
    ``keep`` marks an event whose ``message`` is a record to keep, such as the summary of a
    finished epoch: a terminal prints it as a permanent line, not in a progress bar that the
    next event redraws.
    """

    stage: str
    done: int = 0
    total: int = 0
    message: str = ""
    metrics: dict = field(default_factory=dict)
    item: str = ""
    eta_s: Optional[float] = None
    keep: bool = False

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], Any]


def format_seconds(seconds: Optional[float]) -> str:
    """``'0:42'``, ``'1:05'``, ``'2:03:04'``; empty for None (or a negative or NaN value)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def counted(n: int, noun: str, plural: Optional[str] = None) -> str:
    """``'1 pick'``, ``'2 picks'``, ``'0 picks'``: a count with its noun in the right number
    (``plural`` where adding an s is wrong)."""
    n = int(n)
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def describe_outcome(outcome: str, overall: Optional[Progress] = None,
                     seconds: Optional[float] = None) -> str:
    """The last status of a job: ``outcome`` ("done", "failed", "stopped") with the job's
    overall count (``overall``: its last event of the stage that counts the whole job, such
    as ``predict`` per tomogram) and, when done, the time it took: ``'1 / 1 done in 0:03'``,
    ``'failed at 0 / 1'``, ``'stopped'``. The count of an inner stage (a slab, a tile) at
    the moment a job ended says nothing about the job, so it is never shown here."""
    count = f"{overall.done} / {overall.total}" if overall is not None and overall.total else ""
    took = format_seconds(seconds)
    if outcome == "done":
        text = f"{count} done" if count else "done"
        return f"{text} in {took}" if took else text
    return f"{outcome} at {count}" if count else outcome


def describe_progress(event: Progress, bar_width: int = 0, max_metrics: int = 4) -> str:
    """One status line for an event, as the command line and the GUI show it:
    ``'train  3/10  ETA 0:42  tomo_01  loss=0.31'``; with ``bar_width`` the count is preceded
    by a text bar of that many characters (``[#####-----] 3/10``)."""
    parts = [event.stage]
    if event.total:
        count = f"{event.done}/{event.total}"
        if bar_width:
            filled = int(round(min(1.0, event.done / event.total) * bar_width))
            count = f"[{'#' * filled}{'-' * (bar_width - filled)}] {count}"
        parts.append(count)
    eta = format_seconds(event.eta_s) if event.total and event.done < event.total else ""
    if eta:
        parts.append(f"ETA {eta}")
    if event.item:
        parts.append(event.item)
    numbers = [f"{k}={v:.4g}" for k, v in event.metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    parts.extend(numbers[:max_metrics])
    return "  ".join(parts)


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


class StageClock:
    """Estimates the time left in one stage from its recent pace.

    The pace is the (lower) median time per unit over the last :attr:`WINDOW` intervals
    between events (at least two), so neither a slow first step (warm-up, caches,
    compilation) nor an occasional long interval moves it. Once the pace rests on
    :attr:`SETTLED` intervals, an interval longer than :attr:`PAUSE` times the pace is a pause
    (training stops for validation and checkpoints, say). Pauses that recur are part of the
    work: from the second pause on, the time they added beyond the pace is spread over the
    units between the first and the last pause and expected again at that rate, so a run that
    validates every epoch counts its validations. A single delay changes nothing.
    """

    WINDOW = 15
    SETTLED = 3
    PAUSE = 3.0

    def __init__(self, now: float, done: int, total: int) -> None:
        self.total = total
        self.last_t, self.last_done = now, done
        self.per_unit: deque = deque(maxlen=self.WINDOW)
        self.first_pause_at: Optional[int] = None   # units done when the first pause ended
        self.last_pause_at: Optional[int] = None     # ... and the last one
        self.pause_s = 0.0                           # extra seconds of the later pauses

    def pace(self) -> Optional[float]:
        """Typical seconds per unit (None before the first interval)."""
        if not self.per_unit:
            return None
        ordered = sorted(self.per_unit)
        return ordered[(len(ordered) - 1) // 2]

    def update(self, now: float, done: int) -> Optional[float]:
        """Record an event at ``now`` with ``done`` units; return the seconds left."""
        if done > self.last_done:
            dt, dn = now - self.last_t, done - self.last_done
            typical = self.pace()
            if len(self.per_unit) >= self.SETTLED and dt > self.PAUSE * typical * dn:
                if self.first_pause_at is None:
                    self.first_pause_at = done
                else:
                    self.pause_s += dt - typical * dn
                self.last_pause_at = done
            self.per_unit.append(dt / dn)
            self.last_t, self.last_done = now, done
        left = max(self.total - done, 0)
        if not left:
            return 0.0
        if len(self.per_unit) < 2:      # one interval may be a warm-up: no guess yet
            return None
        per_unit = self.pace()
        if self.pause_s:
            per_unit += self.pause_s / max(self.last_pause_at - self.first_pause_at, 1)
        return left * per_unit


class Reporter:
    """What a job holds: sends events, checks the token, estimates time left per stage."""

    def __init__(self, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        self._progress = progress
        self.token = cancel if cancel is not None else CancelToken()
        self._clocks: dict[str, StageClock] = {}

    def check(self) -> None:
        self.token.check()

    def __call__(self, stage: str, done: int = 0, total: int = 0, message: str = "",
                 item: str = "", keep: bool = False, **metrics: Any) -> None:
        """Report progress of ``stage`` and check for cancellation.

        A stage starts again (its clock too) when ``done`` goes back or ``total`` changes,
        e.g. the tile scan of the next tomogram. ``keep``: see :class:`Progress`.
        """
        eta = None
        if total:
            now = time.monotonic()
            clock = self._clocks.get(stage)
            if clock is None or done < clock.last_done or total != clock.total:
                self._clocks[stage] = clock = StageClock(now, done, total)
            eta = clock.update(now, done)
        if self._progress is not None:
            self._progress(Progress(stage=stage, done=done, total=total, message=message,
                                    metrics=dict(metrics), item=item, eta_s=eta, keep=keep))
        self.token.check()

    def log(self, message: str, stage: str = "log") -> None:
        """A message with no progress count."""
        if self._progress is not None:
            self._progress(Progress(stage=stage, message=message))
