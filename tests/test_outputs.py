"""The output guard: what a run may replace in its folder, and its manifest."""

import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.outputs import MANIFEST_NAME, OutputGuard
from deepetpicker.io.picks import write_sidecar


def test_listed_keeps_a_recorded_file_after_it_changed(tmp_path):
    out = tmp_path / "a.coords"
    out.write_text("1\t2\t3\t4\n")
    guard = OutputGuard(tmp_path)
    assert not guard.listed(out) and not guard.written_by_us(out)
    guard.record([out], tag="step 1")
    assert (tmp_path / MANIFEST_NAME).is_file()
    again = OutputGuard(tmp_path)          # read back from the manifest
    assert again.listed(out) and again.written_by_us(out, tag="step 1")
    assert not again.written_by_us(out, tag="step 2")
    out.write_text("1\t2\t3\t4\n1\t5\t5\t5\n")   # edited since: listed, no longer unchanged
    again = OutputGuard(tmp_path)
    assert again.listed(out) and not again.written_by_us(out)
    assert not again.listed(tmp_path / "b.coords")


def test_allow_lets_a_chosen_file_be_replaced_but_never_an_input(tmp_path):
    mine, other = tmp_path / "mine.star", tmp_path / "other.star"
    mine.write_text("my own file\n")
    other.write_text("another file of mine\n")
    guard = OutputGuard(tmp_path, option="folder (Save As)")
    with pytest.raises(DeepETPickerError, match="mine.star was not written by DeepETPicker"):
        guard.check([mine])
    guard.allow([mine])
    assert guard.check([mine]) == [mine]
    with pytest.raises(DeepETPickerError, match="other.star was not written by DeepETPicker"):
        guard.check([mine, other])
    source = tmp_path / "input.mrc"
    source.write_text("tomogram")
    guarded = OutputGuard(tmp_path, inputs=[source])
    guarded.allow([source])
    with pytest.raises(DeepETPickerError, match="input.mrc is an input of this run"):
        guarded.check([source])


def test_predictions_from_before_manifests_are_known_by_their_sidecar(tmp_path):
    picks = tmp_path / "t.coords"
    picks.write_text("1\t2\t3\t4\n")
    write_sidecar(picks, {"picks": "t.coords"})
    guard = OutputGuard(tmp_path)
    assert guard.written_by_us(picks) and guard.written_by_us(tmp_path / "t.coords.json")
    write_sidecar(picks, {"picks": "other.coords"})
    assert not guard.written_by_us(picks) and not guard.listed(picks)
