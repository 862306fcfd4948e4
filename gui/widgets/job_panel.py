"""The bottom part of every job tab: progress bar, step count and ETA, Stop button, log pane.

A :class:`JobPanel` runs one job at a time through a :class:`~gui.worker.JobWorker` and shows
what it reports. Errors from the core appear in a dialog (and the log); the panel stays usable.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtGui import QFont
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from deepetpicker.progress import Progress, describe_outcome, describe_progress, format_seconds
from gui.dialogs import show_error
from gui.form_terms import speak_form
from gui.worker import JobWorker

log = logging.getLogger("deepetpicker.gui")


class JobPanel(QWidget):
    """Progress bar, status line, Stop button and log for the jobs of one tab."""

    running_changed = pyqtSignal(bool)
    status_message = pyqtSignal(str)
    #: every progress event of the running job (tabs plot metrics from these)
    progress = pyqtSignal(object)

    def __init__(self, title: str, bar_stages: Optional[tuple] = None,
                 parent: Optional[QWidget] = None, job_stage: Optional[str] = None,
                 form: str = "") -> None:
        """``bar_stages``: the stages whose counts drive the progress bar (default: all);
        the others still update the status line. ``job_stage``: the stage that counts the
        whole job (e.g. ``predict``, one per tomogram; default the first bar stage), whose
        count the bar shows once the job has ended. ``form``: the form of the tab (see
        :mod:`gui.form_terms`) whose field labels the log and the errors name instead of the
        config keys and command-line options the job's messages name."""
        super().__init__(parent)
        self.title = title
        self.form = form
        self.bar_stages = tuple(bar_stages) if bar_stages else None
        self.job_stage = job_stage or (self.bar_stages[0] if self.bar_stages else None)
        self._overall: Optional[Progress] = None
        self.worker: Optional[JobWorker] = None
        self._on_success: Optional[Callable[[Any], None]] = None
        self._started = 0.0
        self.last_outcome: Optional[str] = None

        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)  # no count at rest
        self.label = QLabel("idle")
        self.label.setMinimumWidth(200)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running job; finished outputs are kept")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QFont("Monospace", 9))
        self.log_view.setPlaceholderText(f"The {title.lower()} log appears here.")

        row = QHBoxLayout()
        row.addWidget(self.bar, 3)
        row.addWidget(self.label, 2)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.log_view)

    # -- state -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def append_log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        for line in speak_form(str(text), self.form).splitlines() or [""]:
            self.log_view.appendPlainText(f"[{stamp}] {line}")

    # -- running a job ---------------------------------------------------------------------
    def run(self, job: Callable[..., Any], *args: Any,
            on_success: Optional[Callable[[Any], None]] = None, name: str = "",
            **kwargs: Any) -> Optional[JobWorker]:
        """Start ``job(*args, progress=, cancel=, **kwargs)``; None if one is already running."""
        if self.worker is not None:
            self.status_message.emit(f"{self.title}: a job is already running; stop it first.")
            return None
        worker = JobWorker(job, *args, name=name or self.title.lower(), parent=self, **kwargs)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.stopped.connect(self._on_stopped)
        worker.ended.connect(self._on_ended)
        self.worker = worker
        self._on_success = on_success
        self._started = time.monotonic()
        self.last_outcome = None
        self._overall = None
        self._set_bar_style(failed=False)
        self.bar.setFormat("%v / %m")
        self.bar.setTextVisible(True)
        self.bar.setRange(0, 0)  # busy until the first counted event
        self.label.setText("starting")
        self.stop_button.setEnabled(True)
        self.append_log(f"{worker.name} started")
        self.running_changed.emit(True)
        self.status_message.emit(f"{self.title}: running")
        worker.start()
        return worker

    def stop(self) -> None:
        """Ask the running job to stop (it stops within a second or two)."""
        if self.worker is not None:
            self.worker.stop()
            self.stop_button.setEnabled(False)
            self.label.setText("stopping...")
            self.append_log("stop requested")

    def wait(self, msecs: int = 10000) -> bool:
        """Block until the running job's thread has ended (True) or ``msecs`` pass."""
        return self.worker is None or self.worker.wait(msecs)

    # -- events ----------------------------------------------------------------------------
    def _set_bar_style(self, failed: bool) -> None:
        """Red bar and text for a failed job, so it never looks complete."""
        style = ("QProgressBar { color: #b00020; } QProgressBar::chunk { background: #d9534f; }"
                 if failed else "")
        self.bar.setStyleSheet(style)
        self.label.setStyleSheet("color: #b00020;" if failed else "")

    def _show_end(self, outcome: str) -> None:
        """The bar at the end of a job: the job's overall count (not an inner stage's) and
        the outcome, e.g. ``1 / 1 done``; a failed or stopped job's bar is not full unless
        its count says so."""
        text = describe_outcome(outcome, self._overall)
        if self._overall is not None:
            self.bar.setRange(0, int(self._overall.total))
            self.bar.setValue(min(int(self._overall.done), int(self._overall.total)))
        elif self.bar.maximum() == 0:   # no count came: an empty bar for a failure
            self.bar.setRange(0, 1)
            self.bar.setValue(1 if outcome == "done" else 0)
        elif outcome == "done":
            self.bar.setValue(self.bar.maximum())
        self.bar.setFormat(text.replace("%", "%%"))

    def _on_progress(self, event: Progress) -> None:
        if event.total and event.stage == self.job_stage:
            self._overall = event
        if event.total:
            if self.bar_stages is None or event.stage in self.bar_stages:
                self.bar.setRange(0, int(event.total))
                self.bar.setValue(min(int(event.done), int(event.total)))
            self.label.setText(describe_progress(event))
        if event.message:
            self.append_log(event.message)
        self.progress.emit(event)

    def _on_finished(self, result: Any) -> None:
        self.last_outcome = "finished"
        self._show_end("done")
        elapsed = format_seconds(time.monotonic() - self._started)
        self.label.setText(f"done in {elapsed}")
        self.append_log(f"finished in {elapsed}")
        self.status_message.emit(f"{self.title}: finished in {elapsed}")
        self._show_result(result)

    def _show_result(self, result: Any) -> None:
        if self._on_success is not None:
            try:
                self._on_success(result)
            except Exception as exc:  # showing a result must not take the window down
                log.exception("showing the %s result failed", self.title)
                show_error(self, f"{self.title}", f"The job finished but its result could not "
                           f"be shown: {type(exc).__name__}: {exc}")

    def _on_failed(self, message: str, details: str) -> None:
        self.last_outcome = "failed"
        self._show_end("failed")
        self._set_bar_style(failed=True)
        self.label.setText("failed")
        self.append_log(f"ERROR: {message}")
        if details:
            self.append_log(details)
        self.status_message.emit(f"{self.title}: failed")
        show_error(self, f"{self.title} failed", speak_form(message, self.form))

    def _on_stopped(self) -> None:
        self.last_outcome = "stopped"
        self._show_end("stopped")
        self.label.setText("stopped")
        self.append_log("stopped; outputs finished before the stop are kept")
        self.status_message.emit(f"{self.title}: stopped")
        partial = getattr(self.worker, "partial", None)
        if partial is not None:         # e.g. the tomograms picked before the stop
            self._show_result(partial)

    def _on_ended(self) -> None:
        worker, self.worker = self.worker, None
        self.stop_button.setEnabled(False)
        self.running_changed.emit(False)
        if worker is not None:
            worker.deleteLater()
