"""Small preprocessed datasets for the training tests: dark balls in noise, run through the
real preprocessing job, a training config for a tiny network, and a tiny two-class network
with its config (a fixture)."""

import numpy as np
import pytest

from deepetpicker.config import PreprocessConfig, TrainConfig
from deepetpicker.io.picks import Picks, write_picks
from deepetpicker.io.tomogram import write_tomogram
from deepetpicker.preprocess.job import preprocess
from deepetpicker.preprocess.labels import paint_labels

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


def tiny_picker(tmp, shape=(24, 40, 40), diameter=6, steps=60):
    """A tiny network trained for a few seconds on dark balls in noise (saved as
    ``tmp/tiny.pth``), its training config, and a held-out raw volume (not normalised) with
    the centres (z, y, x) of its particles."""
    import torch

    from deepetpicker.model import ResUNet3D, save_checkpoint

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    volumes, labels = [], []
    for _ in range(2):
        centres = place(rng, shape, 8, diameter, margin=4)
        volumes.append(toy_volume(rng, shape, centres, diameter))
        picks = Picks(np.ones(len(centres), int), centres[:, ::-1].astype(float))
        labels.append(paint_labels(shape, picks, diameter, "gaussian").astype(np.float32))
    model = ResUNet3D(num_classes=1, f_maps=(4, 8, 8, 8))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    n = 16
    model.train()
    for _ in range(steps):
        xs, ys = [], []
        for _ in range(4):
            i = rng.integers(2)
            z, y, x = (rng.integers(0, s - n + 1) for s in shape)
            xs.append(volumes[i][z:z + n, y:y + n, x:x + n])
            ys.append(labels[i][z:z + n, y:y + n, x:x + n])
        x, y = torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    weights = save_checkpoint(tmp / "tiny.pth", model, diameters=[diameter])
    centres = place(rng, shape, 8, diameter, margin=4)
    volume = toy_volume(rng, shape, centres, diameter) * 40.0 + 500.0
    pre = PreprocessConfig(dset_name="toy", base_path=str(tmp), coord_path=str(tmp),
                           tomo_path=str(tmp), num_cls=1, label_diameter=diameter,
                           ocp_diameter=[diameter])
    config = TrainConfig.from_preprocess(pre, "0", "0", patch_size=16, padding_size=4,
                                         f_maps=[4, 8, 8, 8], device="cpu")
    return dict(weights=weights, config=config, volume=volume, centres=centres)


@pytest.fixture
def tiny_two_class(tmp_path):
    """A tiny untrained-but-fixed two-class network (the point is the plumbing) and its
    training config: its scores still give picks after a low threshold."""
    import torch

    from deepetpicker.config import PreprocessConfig, TrainConfig
    from deepetpicker.model import ResUNet3D, save_checkpoint

    torch.manual_seed(0)
    model = ResUNet3D(num_classes=2, f_maps=(4, 8, 8, 8)).eval()
    weights = save_checkpoint(tmp_path / "tiny.pth", model, diameters=[24, 16])
    pre = PreprocessConfig(dset_name="toy", base_path=str(tmp_path), coord_path=str(tmp_path),
                           tomo_path=str(tmp_path), num_cls=2, label_diameter=9,
                           label_diameters=[15, 9], ocp_diameter=[24, 16])
    cfg = TrainConfig.from_preprocess(pre, "0", "0", patch_size=32, padding_size=4,
                                      f_maps=[4, 8, 8, 8], device="cpu")
    return cfg, weights
