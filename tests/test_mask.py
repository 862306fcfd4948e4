"""Region-of-interest masks: tiles outside are not run, picks outside are dropped, masks are
matched to tomograms by name and their shape is checked."""

import json

import numpy as np
import pytest
import torch

from deepetpicker.cli import main
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io.picks import Picks, read_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.picking.mask import TileFilter, load_mask, mask_paths, picks_in_mask
from deepetpicker.picking.tiling import plan_tiles, scan
from deepetpicker.predict.job import predict

from train_fixtures import tiny_picker

SHAPE = (20, 30, 40)


def cube(tile, patch):
    """The voxels under a tile's cube (clipped to the volume)."""
    return tuple(slice(max(s, 0), s + patch) for s in tile.start)


def test_tiles_outside_the_mask_are_not_run_and_score_zero():
    volume = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, np.uint8)
    mask[2:6, 3:9, 30:36] = 1                      # one small region near a corner
    calls = []

    def predict_fn(batch):
        calls.append(len(batch))
        return torch.ones((len(batch), 1) + tuple(batch.shape[2:]))

    tiles = plan_tiles(SHAPE, 16, 4)
    inside = [t for t in tiles if mask[cube(t, 16)].any()]
    assert 0 < len(inside) < len(tiles)
    keep = TileFilter(mask, 16)
    scores = scan(volume, predict_fn, 16, 4, batch_size=1, num_classes=1, keep_tile=keep)
    assert sum(calls) == len(inside) == keep.run
    assert keep.skipped == len(tiles) - len(inside)
    covered = np.zeros(SHAPE, bool)
    for t in inside:
        covered[t.keep] = True
    assert (scores[0][covered] == 1).all() and (scores[0][~covered] == 0).all()
    # without a mask every tile runs
    calls.clear()
    scan(volume, predict_fn, 16, 4, batch_size=1, num_classes=1)
    assert sum(calls) == len(tiles)
    # a mask with nothing in it runs no tile at all
    calls.clear()
    scores = scan(volume, predict_fn, 16, 4, batch_size=2, num_classes=1,
                  keep_tile=TileFilter(np.zeros(SHAPE, np.uint8), 16))
    assert calls == [] and scores.shape == (1,) + SHAPE and not scores.any()


def test_picks_outside_the_mask_are_dropped():
    mask = np.zeros(SHAPE, np.uint8)
    mask[:, :, :20] = 1                            # keep x < 20
    picks = Picks([1, 2, 1, 1], [(3.0, 4, 5), (19.4, 10, 10), (19.6, 10, 10), (35, 2, 2)],
                  [0.9, 0.8, 0.7, 0.6], tomo_name="t")
    picks.meta["class_confidence"] = np.array([0.1, 0.2, 0.3, 0.4])
    kept = picks_in_mask(picks, mask)
    assert kept.xyz[:, 0].tolist() == [3.0, 19.4]
    assert kept.classes.tolist() == [1, 2] and kept.scores.tolist() == [0.9, 0.8]
    assert kept.meta["class_confidence"].tolist() == [0.1, 0.2] and kept.tomo_name == "t"


def test_a_mask_of_another_shape_is_a_clear_error(tmp_path):
    path = write_tomogram(tmp_path / "roi.mrc", np.ones((10, 15, 20), np.float32))
    with pytest.raises(DeepETPickerError, match=r"The mask .*roi.mrc has shape \(10, 15, 20\) "
                                                r"\(z, y, x\) but the tomogram .*t.mrc has shape "
                                                r"\(20, 30, 40\)"):
        load_mask(path, SHAPE, tmp_path / "t.mrc")
    assert load_mask(path, (10, 15, 20)).shape == (10, 15, 20)


def test_a_folder_of_masks_is_matched_by_name(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    tomos = [tmp_path / "a.mrc", tmp_path / "b.rec", tmp_path / "c.mrc"]
    for name in ("a_mask.mrc", "b.mrc", "c.mask.mrc", "d.mrc"):
        write_tomogram(masks / name, np.ones((4, 4, 4), np.float32))
    found = mask_paths(masks, tomos)
    assert {t.name: m.name for t, m in found.items()} == {
        "a.mrc": "a_mask.mrc", "b.rec": "b.mrc", "c.mrc": "c.mask.mrc"}
    # beside its tomogram: the tomogram is never its own mask
    write_tomogram(tmp_path / "a.mrc", np.ones((4, 4, 4), np.float32))
    write_tomogram(tmp_path / "a-mask.mrc", np.ones((4, 4, 4), np.float32))
    assert mask_paths(tmp_path, [tmp_path / "a.mrc"])[tmp_path / "a.mrc"].name == "a-mask.mrc"
    with pytest.raises(DeepETPickerError, match=r"The mask folder .*masks has no mask for "
                                                r"e.mrc, f.mrc\. Name each mask like its "
                                                r"tomogram"):
        mask_paths(masks, tomos + [tmp_path / "e.mrc", tmp_path / "f.mrc"])
    # one mask file serves every tomogram
    single = masks / "d.mrc"
    assert set(mask_paths(single, tomos).values()) == {single}
    with pytest.raises(DeepETPickerError, match="Mask not found: .*nope.mrc"):
        mask_paths(tmp_path / "nope.mrc", tomos)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mask_predict")
    run = tiny_picker(tmp)
    (tmp / "tomos").mkdir()
    run["tomo"] = write_tomogram(tmp / "tomos" / "held.mrc", run["volume"], 10.0)
    return run


def test_predict_with_a_mask_keeps_the_picks_inside_and_runs_fewer_tiles(tiny_run, tmp_path):
    shape = tiny_run["volume"].shape
    full = predict(tiny_run["config"], tiny_run["weights"], tomograms=[tiny_run["tomo"]],
                   out=tmp_path / "full")
    all_picks = read_picks(full.outputs[0])
    mask = np.zeros(shape, np.uint8)
    mask[:, :, :20] = 1                                      # the half with x < 20
    write_tomogram(tmp_path / "roi.mrc", mask)
    masked = predict(tiny_run["config"], tiny_run["weights"], tomograms=[tiny_run["tomo"]],
                     out=tmp_path / "masked", mask=tmp_path / "roi.mrc")
    picks = read_picks(masked.outputs[0])
    inside = np.rint(all_picks.xyz[:, 0]) < 20
    assert 0 < inside.sum() < len(all_picks)
    # the same particles inside, placed as without the mask; none outside
    order = np.lexsort(picks.xyz.T)
    expected = all_picks.select(inside)
    expected_order = np.lexsort(expected.xyz.T)
    np.testing.assert_allclose(picks.xyz[order], expected.xyz[expected_order], atol=1e-4)
    np.testing.assert_allclose(picks.scores[order], expected.scores[expected_order], atol=1e-4)
    sidecar = json.loads((tmp_path / "masked" / "held.coords.json").read_text())
    tiles = plan_tiles(shape, 16, 4)
    outside = sum(1 for t in tiles if not mask[cube(t, 16)].any())
    assert outside > 0 and sidecar["tiles_skipped"] == outside
    assert sidecar["mask"] == str(tmp_path / "roi.mrc")
    # another mask is another result: not skipped as done
    mask[:] = 0
    mask[:, :, 20:] = 1
    write_tomogram(tmp_path / "roi.mrc", mask)
    again = predict(tiny_run["config"], tiny_run["weights"], tomograms=[tiny_run["tomo"]],
                    out=tmp_path / "masked", mask=tmp_path / "roi.mrc", overwrite=True)
    assert again.skipped == []
    other = read_picks(again.outputs[0])
    assert len(other) == (~inside).sum()
    assert (np.rint(other.xyz[:, 0]) >= 20).all()


def test_predict_command_takes_a_folder_of_masks(tiny_run, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    shape = tiny_run["volume"].shape
    write_tomogram(masks / "held_mask.mrc", np.zeros(shape, np.uint8))
    args = ["predict", "--weights", str(tiny_run["weights"]),
            "--tomograms", str(tiny_run["tomo"].parent), "--out", str(tmp_path / "out")]
    assert main(args + ["--mask", str(masks)]) == 0
    assert len(read_picks(tmp_path / "out" / "held.coords")) == 0       # nothing is inside
    sidecar = json.loads((tmp_path / "out" / "held.coords.json").read_text())
    assert sidecar["tiles_skipped"] == sidecar["tiles"] and sidecar["mask"].endswith(
        "held_mask.mrc")
    # a mask of the wrong shape fails that tomogram with the reason
    write_tomogram(masks / "held_mask.mrc", np.ones((4, 5, 6), np.uint8))
    capsys.readouterr()
    assert main(args + ["--mask", str(masks), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "held_mask.mrc has shape (4, 5, 6) (z, y, x) but the tomogram" in err
    assert "Traceback" not in err
