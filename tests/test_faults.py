"""Faults of the machine: a full disk is a message naming the folder (never a crash halfway
through a file), and processes writing into one folder keep each other's records."""

import errno
import json
import multiprocessing as mp
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.atomic import write_text_atomic
from deepetpicker.io.outputs import MANIFEST_NAME, OutputGuard, stale_note
from deepetpicker.io.picks import read_picks, read_sidecar
from deepetpicker.io.tomogram import create_tomogram, write_tomogram
from deepetpicker.predict.job import predict

PICK_ALL = {"t_seg": 0.0, "t_lm": 0.0, "min_score": 0.0}


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 600 KB file system of its own (tmpfs), unmounted afterwards."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_score_maps_on_a_full_disk_are_a_message_and_the_picks_stay(small_disk, tmp_path,
                                                                      tiny_two_class):
    cfg, weights = tiny_two_class
    tomogram = tmp_path / "big.mrc"
    rng = np.random.default_rng(0)
    write_tomogram(tomogram, rng.normal(size=(48, 128, 128)).astype(np.float32), 10.0)
    with pytest.raises(DeepETPickerError) as caught:
        predict(cfg, weights, tomograms=[tomogram], out=small_disk, picking=PICK_ALL,
                save_scores=True, device="cpu")
    message = str(caught.value)
    # the first class's map (1.6 MB in float16) does not fit the 600 KB disk
    assert f"The disk of {small_disk} is full: big_scores_class1.mrc could not be" in message
    assert "It needs 1.6 MB" in message and "choose an output folder on another disk" in message
    assert _leftovers(small_disk) == []
    picks = read_picks(small_disk / "big.coords")         # written before, complete
    assert len(picks) and read_sidecar(small_disk / "big.coords")["picks"] == "big.coords"
    assert not (small_disk / "big_scores_class1.mrc").exists()


def test_a_small_file_on_a_full_disk_is_a_message_and_the_old_file_stays(small_disk):
    keep = small_disk / "notes.txt"
    write_text_atomic(keep, "the earlier version\n")
    (small_disk / "filler").write_bytes(b"\0" * 500_000)
    with pytest.raises(DeepETPickerError, match=r"The disk of .* is full: notes.txt could not"):
        write_text_atomic(keep, "x" * 400_000)
    assert keep.read_text() == "the earlier version\n"
    assert _leftovers(small_disk) == []


def test_every_large_output_takes_its_space_before_it_is_mapped(tmp_path, monkeypatch):
    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room)
    with pytest.raises(DeepETPickerError, match=r"volume.mrc could not be written. It needs "
                                                r"4.2 MB"):
        create_tomogram(tmp_path / ".volume.part.mrc", (16, 256, 256),
                        final_name=tmp_path / "volume.mrc")


def test_a_full_quota_is_said_like_a_full_disk(tmp_path, monkeypatch):
    def over_quota(self, *args, **kwargs):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(Path, "write_text", over_quota)
    with pytest.raises(DeepETPickerError, match="is full: run.json could not be written"):
        write_text_atomic(tmp_path / "run.json", "{}")
    assert _leftovers(tmp_path) == []


def _record_many(folder: str, name: str, count: int) -> None:
    for i in range(count):
        path = Path(folder) / f"{name}_{i:03d}.coords"
        path.write_text(f"1\t{i}\t2\t3\n")
        OutputGuard(folder).record([path])


def test_two_processes_writing_into_one_folder_keep_each_others_records(tmp_path):
    context = mp.get_context("spawn")
    workers = [context.Process(target=_record_many, args=(str(tmp_path), name, 60))
               for name in ("first", "second")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    files = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    written = sorted(p.name for p in tmp_path.glob("*.coords"))
    assert len(written) == 120 and sorted(files) == written
    guard = OutputGuard(tmp_path)
    assert all(guard.written_by_us(tmp_path / name) for name in written)


def _write_and_hang(path: str, ready: str) -> None:
    from deepetpicker.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text("half of it")
        Path(ready).write_text("writing")
        import time

        time.sleep(60)


def test_a_killed_write_leaves_no_file_under_its_name_and_the_next_run_sweeps_it(tmp_path):
    from deepetpicker.io.atomic import remove_stale_parts

    target, ready = tmp_path / "picks.coords", tmp_path / "ready"
    context = mp.get_context("spawn")
    writer = context.Process(target=_write_and_hang, args=(str(target), str(ready)))
    writer.start()
    for _ in range(600):
        if ready.exists():
            break
        writer.join(0.05)
    parts = [p for p in tmp_path.iterdir() if ".part" in p.name]
    assert len(parts) == 1
    assert remove_stale_parts(tmp_path) == []          # a write in progress is left alone
    writer.kill()
    writer.join(10)
    assert not target.exists() and parts[0].exists()    # killed: nothing under the name
    guard = OutputGuard(tmp_path)                        # the next command sweeps it
    assert guard.stale_removed == parts and not parts[0].exists()
    assert stale_note(guard.stale_removed) == (f"removed 1 unfinished file(s) that an "
                                               f"interrupted run left: {parts[0]}")
    assert (tmp_path / "ready").read_text() == "writing"   # other files are not touched
