"""The 3D-ResUNet: shapes, parameter counts, switches, checkpoints (ours and the original's)."""

import argparse
import importlib
import sys

import pytest
import torch

from deepetpicker.errors import DeepETPickerError
from deepetpicker.model import (
    ResUNet3D,
    count_parameters,
    load_checkpoint,
    probabilities,
    save_checkpoint,
)
from deepetpicker.model.resunet import append_coordinates

TINY = (4, 8, 12, 16)


def test_parameter_counts_match_the_paper_networks():
    # Worked out by hand from the layer list: 1,429,164 encoder + 1,000,656 decoder + 25 head.
    assert count_parameters(ResUNet3D()) == 2_429_845
    light = count_parameters(ResUNet3D(f_maps=(8, 16, 24, 36)))
    assert 250_000 < light < 300_000
    # Each switch removes input channels and therefore weights.
    plain = count_parameters(ResUNet3D(coord_conv=False, pyramid=False))
    no_pyramid = count_parameters(ResUNet3D(pyramid=False))
    assert plain < no_pyramid < 2_429_845
    # pyramid adds one input channel at encoder levels 1-3: 27 * (48 + 72 + 108) weights
    assert 2_429_845 - no_pyramid == 27 * (48 + 72 + 108)


@torch.no_grad()
def test_output_shapes_and_probabilities():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 24, 16)
    one = ResUNet3D(f_maps=TINY).eval()
    logits = one(x)
    assert logits.shape == (2, 1, 16, 24, 16)
    p = probabilities(logits)
    assert p.shape == (2, 1, 16, 24, 16)
    assert torch.allclose(p, torch.sigmoid(logits))

    three = ResUNet3D(num_classes=3, f_maps=TINY).eval()
    logits = three(x)
    assert logits.shape == (2, 4, 16, 24, 16)
    p = probabilities(logits)
    assert p.shape == (2, 3, 16, 24, 16)
    assert float(p.min()) >= 0.0 and float(p.sum(dim=1).max()) <= 1.0 + 1e-6
    background = torch.softmax(logits, dim=1)[:, 0]
    assert torch.allclose(p.sum(dim=1) + background, torch.ones_like(background), atol=1e-5)


@pytest.mark.parametrize("shape", [(20, 16, 16), (16, 16, 12), (16, 4, 16)])
def test_patch_edges_must_be_multiples_of_8(shape):
    model = ResUNet3D(f_maps=TINY)
    with pytest.raises(DeepETPickerError, match="multiple of 8") as info:
        model(torch.zeros(1, 1, *shape))
    assert str(list(shape)) in str(info.value)


def test_three_level_network_needs_multiples_of_4():
    model = ResUNet3D(f_maps=(4, 8, 12)).eval()
    assert model(torch.zeros(1, 1, 12, 12, 12)).shape == (1, 1, 12, 12, 12)


def test_coordinate_channels_are_x_y_z_in_minus_one_to_one():
    x = torch.zeros(2, 5, 3, 4, 6)
    out = append_coordinates(x)
    assert out.shape == (2, 8, 3, 4, 6)
    xx, yy, zz = out[0, 5], out[0, 6], out[0, 7]
    assert torch.allclose(xx[0, 0], torch.linspace(-1, 1, 6))
    assert torch.allclose(yy[0, :, 0], torch.linspace(-1, 1, 4))
    assert torch.allclose(zz[:, 0, 0], torch.linspace(-1, 1, 3))
    assert float(xx[:, :, 2].std()) == 0.0  # x constant across z and y


def test_coordconv_makes_output_depend_on_position():
    torch.manual_seed(1)
    model = ResUNet3D(f_maps=TINY, pyramid=False).eval()
    out = model(torch.zeros(1, 1, 16, 16, 16))
    # a constant input still gives a position-dependent output
    assert float(out.detach().std()) > 0
    plain = ResUNet3D(f_maps=TINY, coord_conv=False, pyramid=False).eval()
    out = plain(torch.zeros(1, 1, 16, 16, 16))
    centre = out[..., 4:12, 4:12, 4:12]
    assert float(centre.detach().std()) < 1e-5


def test_invalid_arguments():
    with pytest.raises(DeepETPickerError, match="f_maps"):
        ResUNet3D(f_maps=(8,))
    with pytest.raises(DeepETPickerError, match="num_cls 0"):
        ResUNet3D(num_classes=0)


def test_our_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model = ResUNet3D(num_classes=2, f_maps=TINY, pyramid=False)
    model.train()
    model(torch.randn(2, 1, 16, 16, 16))  # move BatchNorm statistics away from defaults
    model.eval()
    x = torch.randn(1, 1, 16, 16, 16)
    expected = model(x)
    path = save_checkpoint(tmp_path / "run" / "best.pth", model, epoch=7,
                           config={"num_cls": 2, "label_diameter": 9},
                           class_names=["ribo", "proteasome"], diameters=[9, 9])
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    loaded, meta = load_checkpoint(path)
    assert meta["source"] == "deepetpicker"
    assert meta["epoch"] == 7 and meta["class_names"] == ["ribo", "proteasome"]
    assert meta["model_args"] == {"in_channels": 1, "num_classes": 2, "f_maps": list(TINY),
                                  "coord_conv": True, "pyramid": False}
    assert not loaded.training
    assert torch.allclose(loaded(x), expected)


def _original_state_dict(f_maps, out_channels, gen):
    """Names and shapes the original program's ResidualUNet3D (CoordConv + pyramid) stores."""
    state = {}

    def conv_unit(prefix, cin, cout):
        state[f"{prefix}.conv.weight"] = torch.randn(cout, cin, 3, 3, 3, generator=gen) * 0.1
        state[f"{prefix}.conv.bias"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{prefix}.batchnorm.weight"] = torch.rand(cout, generator=gen) + 0.5
        state[f"{prefix}.batchnorm.bias"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{prefix}.batchnorm.running_mean"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{prefix}.batchnorm.running_var"] = torch.rand(cout, generator=gen) + 0.5
        state[f"{prefix}.batchnorm.num_batches_tracked"] = torch.tensor(100)

    def block(prefix, cin, cout):
        conv_unit(f"{prefix}.conv1", cin, cout)
        conv_unit(f"{prefix}.conv2", cout, cout)
        conv_unit(f"{prefix}.conv3", cout, cout)

    for i, f in enumerate(f_maps):
        cin = 1 + 3 if i == 0 else f_maps[i - 1] + 1 + 3
        block(f"model.encoders.{i}.basic_module", cin, f)
    rev = list(reversed(f_maps))
    for i in range(len(rev) - 1):
        state[f"model.decoders.{i}.upsampling.upsample.weight"] = \
            torch.randn(rev[i], rev[i + 1], 3, 3, 3, generator=gen) * 0.1
        state[f"model.decoders.{i}.upsampling.upsample.bias"] = \
            torch.randn(rev[i + 1], generator=gen)
        block(f"model.decoders.{i}.basic_module", rev[i + 1] + 3, rev[i + 1])
    state["model.final_conv.weight"] = torch.randn(out_channels, f_maps[0], 1, 1, 1, generator=gen)
    state["model.final_conv.bias"] = torch.randn(out_channels, generator=gen)
    return state


_FOREIGN = '''
class ModelCheckpoint:
    def __init__(self):
        self.best_model_score = 0.8
        self.monitor = "cls_f1"
'''


def test_original_lightning_checkpoint_loads(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(3)
    state = _original_state_dict([24, 48, 72, 108], 1, gen)
    assert sum(v.numel() for k, v in state.items()
               if "running" not in k and "num_batches" not in k) == 2_429_845
    # A class from a package that is not installed where the file is read (Lightning).
    (tmp_path / "fake_lightning_cb.py").write_text(_FOREIGN)
    monkeypatch.syspath_prepend(str(tmp_path))
    foreign = importlib.import_module("fake_lightning_cb")
    ckpt = {"epoch": 41, "global_step": 999, "pytorch-lightning_version": "1.4.9",
            "state_dict": state,
            "callbacks": {"ModelCheckpoint": foreign.ModelCheckpoint()},
            "hyper_parameters": {"args": argparse.Namespace(block_size=72, pad_size=[12],
                                                            f_maps=[24, 48, 72, 108],
                                                            num_classes=1, use_coord=True)}}
    path = tmp_path / "epoch=41.ckpt"
    torch.save(ckpt, path)
    del sys.modules["fake_lightning_cb"]
    (tmp_path / "fake_lightning_cb.py").unlink()

    model, meta = load_checkpoint(path)
    assert meta["source"] == "original"
    assert meta["epoch"] == 41 and meta["patch_size"] == 72 and meta["pad_size"] == 12
    assert meta["model_args"] == {"in_channels": 1, "num_classes": 1,
                                  "f_maps": [24, 48, 72, 108], "coord_conv": True,
                                  "pyramid": True}
    ours = model.state_dict()
    assert torch.equal(ours["head.weight"], state["model.final_conv.weight"])
    assert torch.equal(ours["decoders.2.up.weight"],
                       state["model.decoders.2.upsampling.upsample.weight"])
    assert torch.equal(ours["encoders.3.block.conv2.bn.running_var"],
                       state["model.encoders.3.basic_module.conv2.batchnorm.running_var"])
    assert model(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 1, 16, 16, 16)


def test_original_multiclass_bare_state_dict(tmp_path):
    gen = torch.Generator().manual_seed(4)
    state = _original_state_dict(list(TINY), 4, gen)  # 3 classes + background
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    model, meta = load_checkpoint(path)
    assert model.num_classes == 3 and model.out_channels == 4
    assert meta["model_args"]["f_maps"] == list(TINY)


def test_unreadable_and_foreign_checkpoints(tmp_path):
    with pytest.raises(DeepETPickerError, match="not found"):
        load_checkpoint(tmp_path / "nothing.pth")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(DeepETPickerError, match="junk.ckpt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": torch.nn.Linear(3, 2).state_dict()}, other)
    with pytest.raises(DeepETPickerError, match="3D-ResUNet"):
        load_checkpoint(other)
    gen = torch.Generator().manual_seed(5)
    state = _original_state_dict(list(TINY), 1, gen)
    state["model.paf_conv.weight"] = torch.zeros(1, 4, 1, 1, 1)
    variant = tmp_path / "paf.ckpt"
    torch.save({"state_dict": state}, variant)
    with pytest.raises(DeepETPickerError, match="paf_conv"):
        load_checkpoint(variant)


def test_cpu_layout_is_channels_last_and_gives_the_same_output():
    torch.manual_seed(0)
    a = ResUNet3D(num_classes=2, f_maps=(4, 8, 8, 8)).eval()
    b = ResUNet3D(num_classes=2, f_maps=(4, 8, 8, 8)).eval()
    b.load_state_dict(a.state_dict())
    b.to_device("cpu")
    weight = b.encoders[1].block.conv1.conv.weight
    assert b.channels_last and weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not weight.is_contiguous()
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_fusing_batch_norm_for_inference_keeps_the_scores():
    torch.manual_seed(0)
    net = ResUNet3D(num_classes=3, f_maps=(4, 8, 8, 8))
    net.train()
    with torch.no_grad():                 # move the running statistics away from 0 and 1
        for _ in range(3):
            net(torch.randn(2, 1, 16, 16, 16) * 3 + 1)
    net.eval()
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        before = probabilities(net(x))
        net.fuse_for_inference()
        after = probabilities(net(x))
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())
    assert torch.allclose(before, after, atol=1e-5)


def test_network_presets_are_defined_once():
    from deepetpicker.config import DEFAULT_F_MAPS, LIGHT_F_MAPS, NETWORK_PRESETS
    from deepetpicker.model import resunet

    assert list(resunet.DEFAULT_F_MAPS) == DEFAULT_F_MAPS == list(NETWORK_PRESETS["default"])
    assert list(resunet.LIGHT_F_MAPS) == LIGHT_F_MAPS == list(NETWORK_PRESETS["light"])
