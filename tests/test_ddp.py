"""Two CPU processes (gloo) train with DistributedDataParallel and end with equal weights."""

import socket

import pytest
import torch
import torch.multiprocessing as mp

from train_fixtures import make_preprocessed, train_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, cfg, out_dir):
    import os

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "OMP_NUM_THREADS": "1"})
    torch.set_num_threads(1)
    from deepetpicker.train.job import train

    events = []
    result = train(cfg, progress=events.append)
    params = {k: v.detach().clone() for k, v in result.model.named_parameters()}
    torch.save({"params": params, "history": result.history,
                "n_events": len(events), "last": str(result.last_checkpoint)},
               out_dir / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_gloo_processes_end_with_equal_weights(tmp_path):
    pre, _ = make_preprocessed(tmp_path / "data", n_tomos=2, n_particles=5)
    cfg = train_config(pre, "0-1", "1", dset_name="ddp", max_epochs=2, batch_size=2)
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), cfg, out), nprocs=2, join=True)
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    assert r0["params"].keys() == r1["params"].keys()
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), name
    # the weights moved away from their initial values (training happened)
    torch.manual_seed(0)
    from deepetpicker.model import ResUNet3D
    init = dict(ResUNet3D(f_maps=cfg.f_maps).named_parameters())
    assert not torch.equal(init["head.weight"], r0["params"]["head.weight"])

    # 10 particle patches over 2 processes, batch 2: 3 steps per process per epoch
    assert [row["epoch"] for row in r0["history"]] == [1, 2]
    assert "f1" in r0["history"][0] and "f1" not in r1["history"][0]  # rank 0 validates
    assert r0["history"][0]["train_loss"] == r1["history"][0]["train_loss"]  # averaged
    assert r0["n_events"] > 0 and r1["n_events"] == 0  # rank 0 reports for the run
    assert r1["last"] == "None"  # only rank 0 writes files
    run = cfg.run_dir
    assert sorted(p.name for p in run.iterdir()) == ["best.pth", "last.pth", "metrics.csv",
                                                     "metrics.json"]
