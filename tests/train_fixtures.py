"""Small preprocessed datasets for the training tests: dark balls in noise, run through the
real preprocessing job, and a training config for a tiny network."""

import numpy as np

from deepetpicker.config import PreprocessConfig, TrainConfig
from deepetpicker.io.picks import Picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.preprocess.job import preprocess

TINY = [4, 8, 12, 16]


def place(rng, shape, n, diameter, margin):
    """``n`` centres (z, y, x) at least ``diameter + 2`` apart and ``margin`` from the faces."""
    centres = []
    tries = 0
    while len(centres) < n and tries < 10_000:
        tries += 1
        c = np.array([rng.integers(margin, s - margin) for s in shape])
        if all(np.linalg.norm(c - o) >= diameter + 2 for o in centres):
            centres.append(c)
    return np.array(centres, dtype=np.int64).reshape(-1, 3)


def toy_volume(rng, shape, centres, diameter, noise=0.4, classes=None):
    """Noise plus dark balls (class k darker with a bright core for k = 2, to tell them apart)."""
    zz, yy, xx = np.indices(shape)
    vol = rng.normal(0.0, noise, shape)
    classes = np.ones(len(centres), int) if classes is None else classes
    for c, k in zip(centres, classes):
        r2 = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2
        vol -= np.exp(-r2 / (2 * (diameter / 3.0) ** 2)) * 2.0
        if k == 2:
            vol += np.exp(-r2 / (2 * (diameter / 8.0) ** 2)) * 3.0
    return vol.astype(np.float32)


def make_preprocessed(root, n_tomos=2, shape=(24, 40, 40), n_particles=6, num_cls=1,
                      diameter=6, seed=0, noise=0.4):
    """Raw tomograms + picks under ``root/raw``, preprocessed into ``root/ds``."""
    rng = np.random.default_rng(seed)
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    truth = {}
    for t in range(n_tomos):
        centres = place(rng, shape, n_particles, diameter, margin=diameter // 2 + 1)
        classes = (np.arange(len(centres)) % num_cls) + 1
        write_tomogram(raw / f"tomo{t}.mrc",
                       toy_volume(rng, shape, centres, diameter, noise, classes), 10.0)
        picks = Picks(classes, centres[:, ::-1].astype(float))
        write_picks(raw / f"tomo{t}.coords", picks)
        truth[f"tomo{t}"] = picks
    pre = PreprocessConfig(dset_name="toy", base_path=str(root / "ds"), coord_path=str(raw),
                           tomo_path=str(raw), num_cls=num_cls, label_diameter=diameter,
                           ocp_diameter=[diameter] * num_cls)
    preprocess(pre)
    return pre, truth


def train_config(pre, train_ids="0", val_ids="1", **overrides):
    """A training config for a tiny, fast network on ``pre``'s dataset."""
    settings = dict(f_maps=list(TINY), patch_size=16, padding_size=2, batch_size=4,
                    max_epochs=2, lr=0.01, num_workers=0, device="cpu", seed=0)
    settings.update(overrides)
    return TrainConfig.from_preprocess(pre, train_ids, val_ids, **settings)
