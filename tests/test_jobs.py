"""The job protocol's time estimate: recent pace, stage restarts, pauses, the keep flag."""

from types import SimpleNamespace

import pytest

import deepetpicker.progress as jobs
from deepetpicker.progress import Progress, Reporter, StageClock


def etas(schedule, total, stage="train"):
    """Feed ``(time, done)`` events through a Reporter on a fake clock; the ETA of each."""
    now = [0.0]
    events = []
    reporter = Reporter(events.append)
    original = jobs.time
    jobs.time = SimpleNamespace(monotonic=lambda: now[0])
    try:
        for t, done in schedule:
            now[0] = t
            reporter(stage, done, total)
    finally:
        jobs.time = original
    return [e.eta_s for e in events]


def test_a_slow_first_step_does_not_inflate_the_estimate():
    # the first step takes a minute (warm-up), then 0.5 s per step; 100 steps
    schedule = [(0.0, 0), (60.0, 1)] + [(60.0 + 0.5 * i, 1 + i) for i in range(1, 40)]
    estimates = etas(schedule, 100)
    assert estimates[:2] == [None, None]          # one interval: no guess yet
    for (_t, done), eta in zip(schedule[2:], estimates[2:]):
        assert eta == pytest.approx(0.5 * (100 - done), rel=0.01), (done, eta)


def test_a_validation_pause_every_epoch_is_counted_but_never_blows_up():
    # 5 epochs of 20 steps at 0.5 s, 10 s of validation after each epoch: 100 s in all
    schedule, t = [], 0.0
    for epoch in range(5):
        for step in range(20):
            t += 0.5
            schedule.append((t, epoch * 20 + step + 1))
        t += 10.0
    end = t
    estimates = etas(schedule, 100)
    assert estimates[:2] == [None, None] and estimates[-1] == 0.0
    for (t, done), eta in zip(schedule[2:-1], estimates[2:-1]):
        steps_left = 0.5 * (100 - done)           # the steps alone, no validation
        assert steps_left * 0.999 <= eta <= (end - t) * 1.001, (done, eta)
    # once two validations were seen, an epoch boundary gives the true time left
    for (t, done), eta in zip(schedule, estimates):
        if done in (41, 61, 81):
            assert eta == pytest.approx(end - t, rel=0.05), (done, eta)


def test_a_single_delay_changes_nothing():
    schedule = [(0.1 * i, i) for i in range(1, 11)]
    schedule += [(61.0 + 0.1 * i, 10 + i) for i in range(1, 20)]   # a 60 s stall at step 11
    estimates = etas(schedule, 10_000)
    for (_t, done), eta in zip(schedule[2:], estimates[2:]):
        assert eta == pytest.approx(0.1 * (10_000 - done), rel=0.01), (done, eta)


def test_each_tomogram_scan_starts_its_own_clock():
    # tomogram A: 10 tiles at 1 s; then 300 s of other work; tomogram B: 10 tiles at 1 s
    schedule = [(float(i), i) for i in range(11)] + [(310.0 + i, i) for i in range(11)]
    estimates = etas(schedule, 10, stage="scan")
    assert estimates[10] == 0.0
    b = estimates[11:]
    assert b[:2] == [None, None]
    assert b[2:] == [pytest.approx(10.0 - i) for i in range(2, 11)]


def test_stage_clock_pace_is_a_median():
    clock = StageClock(0.0, 0, 10)
    for t, done in [(1, 1), (2, 2), (30, 3), (31, 4)]:
        clock.update(float(t), done)
    assert clock.pace() == 1.0


def test_keep_marks_a_line_to_keep():
    events = []
    report = Reporter(events.append)
    report("epoch", 1, 3, message="epoch 1/3: train loss 0.5", keep=True, loss=0.5)
    report("train", 1, 30)
    assert events[0].keep and events[0].metrics == {"loss": 0.5}
    assert not events[1].keep and Progress("x").keep is False


def test_counts_have_their_noun_in_the_right_number():
    assert [jobs.counted(n, "pick") for n in (0, 1, 2)] == ["0 picks", "1 pick", "2 picks"]
    assert jobs.counted(1, "class", "classes") == "1 class"
    assert jobs.counted(3, "class", "classes") == "3 classes"


def test_the_end_of_a_job_shows_its_overall_count_not_an_inner_stage():
    overall = Progress("predict", 1, 1)
    assert jobs.describe_outcome("done", overall, 3.2) == "1 / 1 done in 0:03"
    assert jobs.describe_outcome("done") == "done"
    assert jobs.describe_outcome("failed", Progress("predict", 0, 1)) == "failed at 0 / 1"
    assert jobs.describe_outcome("stopped") == "stopped"
