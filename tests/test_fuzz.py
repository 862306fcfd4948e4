"""Hostile files: random and mutated versions of valid files go to every reader. The only
failure allowed is a DeepETPickerError whose message names the file; nothing else may be
raised, nothing may hang, and reading writes no file.

The default profile tries a few dozen files per reader (the test command runs it);
``HYPOTHESIS_PROFILE=long`` (``scripts/soak.py --fuzz``) tries many more."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.formats import read_any, write_format
from deepetpicker.io.picks import Picks

settings.register_profile("default", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SHAPE = (40, 60, 80)
VOXEL = 10.0


def _valid_picks() -> Picks:
    rng = np.random.default_rng(1)
    xyz = rng.uniform(5, 35, size=(6, 3))
    return Picks(np.array([1, 2, 1, 2, 1, 2]), xyz, rng.uniform(0.2, 1.0, 6),
                 tomo_name="tomo_01", voxel_size=VOXEL)


def _valid_files(folder: Path) -> dict:
    """One valid file of every pick format, written by our writers: format -> path."""
    files = {}
    for fmt in ("coords", "box", "star", "relion4", "relion5", "tbl", "copick", "ndjson"):
        out = folder / fmt
        written = write_format([_valid_picks()], fmt, out, voxel_size=VOXEL,
                               shapes={"tomo_01": SHAPE})
        files[fmt] = written[0]
    return files


@st.composite
def mutations(draw):
    """A list of edits of a file's bytes: flip, insert, delete, truncate, or a line
    replaced by random text."""
    kinds = st.sampled_from(["flip", "insert", "delete", "truncate", "line", "garbage"])
    return draw(st.lists(st.tuples(kinds, st.floats(0, 1), st.binary(min_size=1, max_size=12)),
                         min_size=1, max_size=4))


def mutate(data: bytes, edits) -> bytes:
    for kind, where, payload in edits:
        at = int(where * len(data)) if data else 0
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ (payload[0] | 1)]) + data[at + 1:]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(payload):]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "line":
            lines = data.split(b"\n")
            lines[min(int(where * len(lines)), len(lines) - 1)] = payload
            data = b"\n".join(lines)
        else:
            data = payload * (1 + int(where * 50))
    return data


def _only_named_errors(read, path: Path, folder: Path = None) -> None:
    """Call ``read()``: it may succeed or raise a DeepETPickerError naming ``path``; the folder
    (``path``'s, unless given) keeps exactly the files it had."""
    folder = folder or path.parent
    before = sorted(os.listdir(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read()
        except DeepETPickerError as exc:
            assert path.name in str(exc), f"the message does not name the file: {exc}"
    assert sorted(os.listdir(folder)) == before


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return _valid_files(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("fmt", ["coords", "box", "star", "relion4", "relion5", "tbl",
                                 "copick", "ndjson"])
@given(edits=mutations())
def test_mutated_pick_files_are_read_or_refused_by_name(fmt, edits, valid_files,
                                                         tmp_path_factory):
    source = valid_files[fmt]
    folder = tmp_path_factory.mktemp("mutated")
    path = folder / source.name
    path.write_bytes(mutate(source.read_bytes(), edits))
    _only_named_errors(lambda: read_any(path, shape={"tomo_01": SHAPE}, voxel_size=VOXEL,
                                        num_cls=2), path)
    _only_named_errors(lambda: read_any(path), path)


@given(edits=mutations(), kind=st.sampled_from(["pre", "train"]))
def test_mutated_config_files_are_read_or_refused_by_name(edits, kind, tmp_path_factory):
    from deepetpicker.config import load_config

    source = Path(__file__).resolve().parents[1] / "configs" / (
        "SHREC_2021_preprocess.py" if kind == "pre" else "SHREC_2021_train.py")
    path = tmp_path_factory.mktemp("config") / "config.py"
    path.write_bytes(mutate(source.read_bytes(), edits))
    _only_named_errors(lambda: load_config(path), path)


@pytest.fixture(scope="module")
def valid_mrc(tmp_path_factory):
    from deepetpicker.io.tomogram import write_tomogram

    path = tmp_path_factory.mktemp("mrc") / "tomo.mrc"
    write_tomogram(path, np.random.default_rng(0).normal(size=(8, 12, 16)).astype(np.float32),
                   VOXEL)
    return path


@given(edits=mutations())
def test_mutated_mrc_files_are_read_or_refused_by_name(edits, valid_mrc, tmp_path_factory):
    from deepetpicker.io.tomogram import check_finite, load_tomogram

    path = tmp_path_factory.mktemp("mrc_mutated") / "tomo.mrc"
    data = valid_mrc.read_bytes()
    # the header is where a damaged file hurts: mutate the first 1024 bytes most of the time
    header = mutate(data[:1024], edits)
    path.write_bytes(header + data[1024:])

    def read():
        tomo = load_tomogram(path)
        check_finite(tomo)
        np.asarray(tomo.data[:2])

    _only_named_errors(read, path)


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory):
    from deepetpicker.model import ResUNet3D, save_checkpoint

    net = ResUNet3D(num_classes=2, f_maps=(4, 8, 8, 8))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", net, diameters=[9, 13])


@given(edits=mutations())
@example(edits=[("flip", 0.96875, b"\x80")])      # a file name in the zip that is not UTF-8
def test_mutated_checkpoints_are_read_or_refused_by_name(edits, valid_checkpoint,
                                                         tmp_path_factory):
    from deepetpicker.model import load_checkpoint

    path = tmp_path_factory.mktemp("ckpt_mutated") / "tiny.pth"
    path.write_bytes(mutate(valid_checkpoint.read_bytes(), edits))
    _only_named_errors(lambda: load_checkpoint(path, "cpu"), path)


@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                        max_leaves=20),
       key=st.sampled_from([".zattrs", ".zarray"]))
def test_random_zarr_metadata_is_read_or_refused_by_name(doc, key, tmp_path_factory):
    from deepetpicker.io.tomogram import load_tomogram

    folder = tmp_path_factory.mktemp("zarr") / "tomo.zarr"
    folder.mkdir()
    (folder / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (folder / key).write_text(json.dumps(doc))

    def read():
        tomo = load_tomogram(folder)
        np.asarray(tomo.data[:1])

    _only_named_errors(read, folder, folder=folder)


def test_a_link_in_the_output_folder_is_never_followed_to_replace_a_file(tmp_path):
    from deepetpicker.io.atomic import write_text_atomic
    from deepetpicker.io.outputs import OutputGuard

    elsewhere = tmp_path / "elsewhere" / "precious.coords"
    elsewhere.parent.mkdir()
    elsewhere.write_text("1\t1\t2\t3\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tomo.coords").symlink_to(elsewhere)
    guard = OutputGuard(out, overwrite=True)
    with pytest.raises(DeepETPickerError, match="not written by DeepETPicker"):
        guard.check(["tomo.coords"])
    # and a writer handed the link replaces the link, never the file it points to
    write_text_atomic(out / "tomo.coords", "2\t4\t5\t6\n")
    assert elsewhere.read_text() == "1\t1\t2\t3\n"
    assert not (out / "tomo.coords").is_symlink()
