"""A hollow particle needs a weak label that reaches its body: with a label of about 0.6 x
its diameter a small network finds rings; a label much smaller than the ring would sit in
its empty centre, which looks like the background ice."""

import pytest

from deepetpicker.config import PreprocessConfig, TrainConfig, load_preprocess_config
from deepetpicker.io.tomogram import load_tomogram
from deepetpicker.preprocess.job import preprocess
from deepetpicker.simulate import simulate_dataset
from deepetpicker.train.job import train

RING = {"name": "ring", "shape": "ring", "diameter": 18}


@pytest.mark.slow
def test_a_small_model_finds_rings_with_a_label_per_class(tmp_path):
    path = simulate_dataset(tmp_path / "rings", n=2, shape=(32, 64, 64), classes=[RING],
                            seed=0, n_particles=6, snr=1.0, n_gold=0, n_vesicles=0)
    simulated = load_preprocess_config(path)
    assert (simulated.label_diameter, simulated.label_diameters) == (11, None)  # 0.6 x 18, odd
    # label_diameter as a dataset with a small class would set it (0.6 x its 8 voxels), and
    # a per-class diameter for the rings: they are painted with the latter
    data = {**simulated.to_dict(), "label_diameter": 5, "label_diameters": [11]}
    pre = PreprocessConfig.from_dict(data)
    assert pre.label_name == "gaussian11"
    preprocess(pre)
    labels = load_tomogram(pre.label_dir / "sim_00.mrc", mmap=False).data
    assert labels.max() == 1 and (labels == 1).sum() > 3 * 1203   # whole 11-voxel labels

    cfg = TrainConfig.from_preprocess(
        pre, "0", "1", f_maps=[4, 8, 12, 16], patch_size=24, padding_size=4, batch_size=4,
        max_epochs=32, val_every=8, lr=0.01, ema_decay=0.0, init="scratch", num_workers=0,
        device="cpu", seed=0)
    result = train(cfg)
    validated = [row for row in result.history if row.get("f1_1") is not None]
    assert [row["epoch"] for row in validated] == [8, 16, 24, 32]
    assert validated[-1]["f1_1"] >= 0.8, [row["f1_1"] for row in validated]
    assert result.best_f1 >= 0.8
