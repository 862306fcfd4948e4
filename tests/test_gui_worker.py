"""The job worker and the job panel: progress signals, results, errors, stop within 2 s."""

import logging
import threading
import time

from deepetpicker.errors import DeepETPickerError
from deepetpicker.progress import Reporter, describe_progress, format_seconds
from gui.widgets.job_panel import JobPanel
from gui.worker import JobWorker


def counting_job(n, progress=None, cancel=None, delay=0.0):
    report = Reporter(progress, cancel)
    for i in range(1, n + 1):
        if delay:
            time.sleep(delay)
        report("count", i, n, message="half way" if i == n // 2 else "", value=i * 10)
    return {"total": n, "thread": threading.get_ident()}


def endless_job(progress=None, cancel=None, steps_done=None):
    report = Reporter(progress, cancel)
    i = 0
    while True:
        time.sleep(0.02)
        i += 1
        steps_done.append(i)
        report("loop", i, 0)


def bad_input_job(progress=None, cancel=None):
    raise DeepETPickerError("settings.py: key 'num_cls' = 0: must be at least 1")


def buggy_job(progress=None, cancel=None):
    return {}["missing"]


def run_worker(qtbot, worker, signal_name, timeout=5000):
    with qtbot.waitSignal(worker.ended, timeout=timeout):
        worker.start()
    return worker


def test_worker_emits_progress_and_result_from_another_thread(qtbot):
    events, results = [], []
    worker = JobWorker(counting_job, 5, min_interval=0.0)
    worker.progress.connect(events.append)
    worker.finished.connect(results.append)
    run_worker(qtbot, worker, "finished")
    assert [e.done for e in events] == [1, 2, 3, 4, 5]
    assert events[-1].metrics == {"value": 50}
    assert events[1].message == "half way"
    assert results[0]["total"] == 5
    assert results[0]["thread"] != threading.get_ident()
    assert worker.outcome == "finished" and not worker.running


def test_worker_thins_plain_count_events_but_keeps_the_last(qtbot):
    events = []
    worker = JobWorker(counting_job, 400, min_interval=10.0)
    worker.progress.connect(events.append)
    run_worker(qtbot, worker, "finished")
    dones = [e.done for e in events]
    # every event has metrics here, so nothing may be dropped ...
    assert len(dones) == 400
    # ... while pure counts are thinned
    def plain(n, progress=None, cancel=None):
        report = Reporter(progress, cancel)
        for i in range(1, n + 1):
            report("plain", i, n)
    events.clear()
    worker = JobWorker(plain, 400, min_interval=10.0)
    worker.progress.connect(events.append)
    run_worker(qtbot, worker, "finished")
    assert [e.done for e in events] == [1, 400]


def test_stop_ends_a_running_job_within_two_seconds(qtbot):
    steps, stopped = [], []
    worker = JobWorker(endless_job, steps_done=steps)
    worker.stopped.connect(lambda: stopped.append(True))
    worker.start()
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=3000)
    t0 = time.monotonic()
    with qtbot.waitSignal(worker.ended, timeout=2000):
        worker.stop()
    assert time.monotonic() - t0 < 2.0
    assert stopped == [True] and worker.outcome == "stopped"
    n = len(steps)
    time.sleep(0.1)
    assert len(steps) == n  # the job really ended


def test_user_error_and_unexpected_error_are_reported(qtbot, caplog):
    failures = []
    worker = JobWorker(bad_input_job)
    worker.failed.connect(lambda m, d: failures.append((m, d)))
    run_worker(qtbot, worker, "failed")
    assert failures == [("settings.py: key 'num_cls' = 0: must be at least 1", "")]
    assert worker.outcome == "failed" and not worker.running

    failures.clear()
    with caplog.at_level(logging.ERROR, logger="deepetpicker.gui"):
        worker = JobWorker(buggy_job, name="inference")
        worker.failed.connect(lambda m, d: failures.append((m, d)))
        run_worker(qtbot, worker, "failed")
    message, details = failures[0]
    assert message.startswith("inference stopped on an unexpected error: KeyError")
    assert "Traceback" in details and "buggy_job" in details
    assert "inference failed" in caplog.text


def test_panel_shows_progress_error_dialog_and_stays_usable(qtbot, dialogs):
    panel = JobPanel("Preprocessing")
    qtbot.addWidget(panel)
    results, events, messages, outcomes = [], [], [], []
    panel.progress.connect(events.append)
    panel.status_message.connect(messages.append)
    with qtbot.waitSignal(panel.running_changed, timeout=5000,
                          check_params_cb=lambda running: not running):
        worker = panel.run(counting_job, 6, on_success=results.append)
        assert isinstance(worker, JobWorker) and worker is panel.worker
        assert worker.name == "preprocessing" and worker.args == (6,)
        assert panel.running and panel.stop_button.isEnabled()
        worker.finished.connect(lambda _result: outcomes.append(worker.outcome))
    assert outcomes == ["finished"] and panel.worker is None and not panel.running
    assert [(e.stage, e.done, e.total) for e in events] == [("count", i, 6) for i in range(1, 7)]
    assert [e.metrics["value"] for e in events] == [10, 20, 30, 40, 50, 60]
    assert panel.bar.maximum() == 6 and panel.bar.value() == 6
    assert results[0]["total"] == 6 and results[0]["thread"] != threading.get_ident()
    assert messages[0] == "Preprocessing: running"
    assert messages[-1].startswith("Preprocessing: finished in 0:0")
    log_lines = [line.split("] ", 1)[1] for line in panel.log_view.toPlainText().splitlines()]
    assert log_lines[:2] == ["preprocessing started", "half way"]
    assert log_lines[-1].startswith("finished in 0:0") and not panel.stop_button.isEnabled()
    assert "half way" in panel.log_view.toPlainText()
    assert panel.label.text().startswith("done in")

    with qtbot.waitSignal(panel.running_changed, timeout=5000,
                          check_params_cb=lambda running: not running):
        panel.run(bad_input_job)
    assert dialogs.kinds() == ["critical"]
    assert dialogs.shown[0][1] == "Preprocessing failed"
    assert dialogs.texts()[0] == "settings.py: key 'num_cls' = 0: must be at least 1"
    assert "key 'num_cls' = 0" in dialogs.texts()[0]
    assert panel.label.text() == "failed" and messages[-1] == "Preprocessing: failed"
    assert "ERROR: settings.py" in panel.log_view.toPlainText()
    assert not panel.running and panel.last_outcome == "failed"


def test_panel_runs_one_job_at_a_time_and_stop_button_stops(qtbot, dialogs):
    panel = JobPanel("Training")
    qtbot.addWidget(panel)
    steps, messages, stopped = [], [], []
    panel.status_message.connect(messages.append)
    worker = panel.run(endless_job, steps_done=steps)
    assert isinstance(worker, JobWorker) and worker is panel.worker
    assert worker.name == "training" and worker.kwargs == {"steps_done": steps}
    worker.stopped.connect(lambda: stopped.append(worker.outcome))
    assert panel.stop_button.isEnabled()
    assert panel.run(endless_job, steps_done=steps) is None
    assert panel.worker is worker  # the first job keeps running
    assert "already running" in messages[-1]
    assert messages == ["Training: running",
                        "Training: a job is already running; stop it first."]
    qtbot.waitUntil(lambda: len(steps) > 2, timeout=3000)
    with qtbot.waitSignal(panel.running_changed, timeout=2000):
        panel.stop_button.click()
    assert panel.last_outcome == "stopped" and panel.label.text() == "stopped"
    assert stopped == ["stopped"] and messages[-1] == "Training: stopped"
    log_text = panel.log_view.toPlainText()
    assert "stop requested" in log_text
    assert "stopped; outputs finished before the stop are kept" in log_text
    assert dialogs.shown == []


def test_progress_text_helpers():
    from deepetpicker.progress import Progress
    assert format_seconds(65) == "1:05" and format_seconds(3723) == "1:02:03"
    assert format_seconds(None) == ""
    text = describe_progress(Progress("train", 3, 10, item="tomo_01", eta_s=42,
                                      metrics={"loss": 0.3125}))
    assert text == "train  3/10  ETA 0:42  tomo_01  loss=0.3125"


def predict_like_job(progress=None, cancel=None, fail=False):
    """One tomogram: its inner stages count slabs and tiles, the job counts tomograms."""
    report = Reporter(progress, cancel)
    report("predict", 0, 1, item="sim_00")
    for i in (1, 2):
        report("statistics", i, 2, item="sim_00")
    for i in (1, 2, 3):
        report("scan", i, 3, item="sim_00")
    if fail:
        raise DeepETPickerError("sim_00.mrc: the disk is full")
    report("predict", 1, 1, item="sim_00", message="sim_00.mrc: 1 pick", picks=1)
    return {}


def test_panel_texts_at_rest_done_and_failed(qtbot, dialogs):
    panel = JobPanel("Inference", bar_stages=("scan",), job_stage="predict")
    qtbot.addWidget(panel)
    # at rest: no "0 / 1", only "idle"
    assert not panel.bar.isTextVisible() and panel.label.text() == "idle"
    with qtbot.waitSignal(panel.running_changed, timeout=5000,
                          check_params_cb=lambda running: not running):
        panel.run(predict_like_job)
    # the end shows the job's count (tomograms), not the last inner stage's
    assert panel.bar.isTextVisible() and panel.bar.text() == "1 / 1 done"
    assert panel.bar.value() == panel.bar.maximum() == 1
    assert panel.label.text().startswith("done in")
    assert "sim_00.mrc: 1 pick" in panel.log_view.toPlainText()

    with qtbot.waitSignal(panel.running_changed, timeout=5000,
                          check_params_cb=lambda running: not running):
        panel.run(predict_like_job, fail=True)
    # a failure never looks complete: not a full bar, the word failed, in red
    assert panel.bar.text() == "failed at 0 / 1"
    assert panel.bar.value() < panel.bar.maximum()
    assert panel.label.text() == "failed" and "#b00020" in panel.label.styleSheet()
    assert "#d9534f" in panel.bar.styleSheet()
    # the next run starts plain again
    with qtbot.waitSignal(panel.running_changed, timeout=5000,
                          check_params_cb=lambda running: not running):
        panel.run(predict_like_job)
    assert panel.bar.text() == "1 / 1 done" and panel.bar.styleSheet() == ""
