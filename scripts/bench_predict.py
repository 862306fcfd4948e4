#!/usr/bin/env python
"""Inference benchmark: the prediction job vs the bare network work, and its peak memory.

In one run, on one machine:

* end-to-end: ``deepetpicker.predict.job.predict`` on one tomogram file - load the weights,
  intensity statistics, the overlap-tile scan (memory-mapped reads, on-the-fly
  normalisation, stitching), peak picking, writing the picks and the sidecar;
* bare forward: the same network on exactly as many tiles as the scan needs, in batches of
  the same size, on a tensor already in memory (the lower bound);

prints both times and their ratio (target <= 1.10 on the CPU), then the peak resident memory
of a fresh process running ``predict`` on a larger tomogram (default 200 x 512 x 512
float32, 210 MB; target: under 1 GB above the process's footprint once the model is loaded).

The network is the default one (channels 24, 48, 72, 108; patch 72, pad 12) with seeded
random weights unless ``--weights`` names a checkpoint; the tomogram is noise with Gaussian
blobs, stored in raw (unnormalised) units.

    python scripts/bench_predict.py                    # ~2 min timing + the 200x512x512 RSS run
    python scripts/bench_predict.py --quick            # smaller volumes, a minute or two
    python scripts/bench_predict.py --device cuda --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=(96, 256, 256), metavar=("Z", "Y", "X"),
                   help="tomogram for the timing (default 96 256 256)")
    p.add_argument("--rss-shape", type=int, nargs=3, default=(200, 512, 512),
                   metavar=("Z", "Y", "X"), help="tomogram for the memory run (default 200 512 "
                                                  "512)")
    p.add_argument("--quick", action="store_true",
                   help="small volumes: timing 64 160 160, memory 100 256 256")
    p.add_argument("--skip-rss", action="store_true", help="only the timing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--batch-size", type=int, help="tiles per pass (default: the job's)")
    p.add_argument("--patch", type=int, default=72)
    p.add_argument("--pad", type=int, default=12)
    p.add_argument("--f-maps", default="24,48,72,108", help="channels per level")
    p.add_argument("--weights", help="a trained checkpoint instead of random weights")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--repeat", type=int, default=2,
                   help="timed runs of each kind, interleaved; the fastest counts (default 2)")
    p.add_argument("--workdir", help="folder for the files (default: a temporary folder)")
    p.add_argument("--rss-child", nargs=2, metavar=("CONFIG_JSON", "TOMOGRAM"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def peak_rss_mb() -> float:
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return float("nan")


def write_test_tomogram(path: Path, shape, seed: int = 0) -> Path:
    """Noise with Gaussian blobs, in raw units, written slab by slab (bounded memory)."""
    import numpy as np

    from deepetpicker.io.atomic import atomic_path
    from deepetpicker.io.tomogram import create_tomogram

    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    n_blobs = max(1, nz * ny * nx // 40000)
    centres = rng.uniform((0, 0, 0), (nz, ny, nx), size=(n_blobs, 3))
    yy, xx = np.mgrid[0:ny, 0:nx]
    with atomic_path(path) as tmp:
        mrc = create_tomogram(tmp, shape, voxel_size=10.0)
        try:
            for z0 in range(0, nz, 8):
                z = np.arange(z0, min(z0 + 8, nz))[:, None, None]
                block = rng.normal(0, 1, (len(z), ny, nx)).astype(np.float32)
                near = centres[np.abs(centres[:, 0] - z0 - 4) < 12]
                for cz, cy, cx in near:
                    r2 = (z - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2
                    block -= 2.0 * np.exp(-r2 / 18.0).astype(np.float32)
                mrc.data[z0:z0 + len(z)] = block * 40.0 + 300.0
        finally:
            mrc.close()
    return path


def make_setup(work: Path, args):
    """A training config and a checkpoint for the benchmark network."""
    import torch

    from deepetpicker.config import PreprocessConfig, TrainConfig
    from deepetpicker.model import ResUNet3D, save_checkpoint

    f_maps = [int(v) for v in args.f_maps.split(",")]
    pre = PreprocessConfig(dset_name="bench", base_path=str(work), coord_path=str(work),
                           tomo_path=str(work), num_cls=1, label_diameter=9, ocp_diameter=[13])
    cfg = TrainConfig.from_preprocess(pre, "0", "0", patch_size=args.patch,
                                      padding_size=args.pad, f_maps=f_maps, device=args.device)
    weights = args.weights
    if not weights:
        torch.manual_seed(0)
        model = ResUNet3D(num_classes=1, f_maps=f_maps)
        weights = save_checkpoint(work / "random.pth", model)
    return cfg, Path(weights)


def time_predict(cfg, weights: Path, tomo: Path, out: Path, batch_size):
    from deepetpicker.predict.job import predict

    start = time.perf_counter()
    result = predict(cfg, weights, tomograms=[tomo], out=out, batch_size=batch_size)
    return time.perf_counter() - start, result


def time_bare_forward(weights: Path, device, n_tiles: int, batch: int, patch: int) -> float:
    import torch

    from deepetpicker.model import load_checkpoint, probabilities

    model, _ = load_checkpoint(weights, device)
    model.fuse_for_inference()                       # as the job runs it
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, patch, patch, patch, generator=gen).to(device)
    use_amp = device.type == "cuda"
    n_batches = math.ceil(n_tiles / batch)
    last = n_tiles - (n_batches - 1) * batch

    def run(inputs):
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16,
                                                    enabled=use_amp):
            return probabilities(model(inputs).float())

    run(x[:1])                                       # warm-up (allocator, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for b in range(n_batches):
        y = run(x if b < n_batches - 1 else x[:last])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    del y
    return time.perf_counter() - start


def rss_child(config_json: str, tomogram: str) -> int:
    """Run predict once in this fresh process and print its memory figures as JSON."""
    from deepetpicker.config import TrainConfig  # noqa: F401  (import cost in the baseline)
    from deepetpicker.model import load_checkpoint
    from deepetpicker.predict.job import predict

    spec = json.loads(Path(config_json).read_text())
    args = parse_args(spec["argv"])
    work = Path(spec["work"])
    cfg, weights = make_setup(work, args)
    from deepetpicker.runtime import resolve_device

    model, _ = load_checkpoint(weights, resolve_device(args.device))
    model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2 ** 20
    del model
    baseline = current_rss_mb()
    start = time.perf_counter()
    result = predict(cfg, weights, tomograms=[tomogram], out=work / "rss_out",
                     batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_mb": peak_rss_mb(), "baseline_mb": baseline,
                      "model_mb": model_mb, "seconds": seconds,
                      "picks": sum(sum(c.values()) for c in result.counts.values())}))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rss_child:
        return rss_child(*args.rss_child)
    import torch

    from deepetpicker.picking.tiling import count_tiles
    from deepetpicker.runtime import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.shape, args.rss_shape = (64, 160, 160), (100, 256, 256)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_predict_"))
    work.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    cfg, weights = make_setup(work, args)
    shape = tuple(args.shape)
    tomo = write_test_tomogram(work / "timing.mrc", shape)
    n_tiles = count_tiles(shape, args.patch, args.pad)
    print(f"device {device}, torch threads {torch.get_num_threads()}, network "
          f"f_maps {args.f_maps}, patch {args.patch}, pad {args.pad}")
    print(f"timing tomogram {shape}: {n_tiles} tiles", flush=True)

    predict_times, bare_times = [], []
    for _ in range(max(1, args.repeat)):        # interleaved, so load changes hit both
        seconds, result = time_predict(cfg, weights, tomo, work / "out", args.batch_size)
        predict_times.append(seconds)
        batch = result.settings["batch_size"]
        bare_times.append(time_bare_forward(weights, device, n_tiles, batch, args.patch))
    predict_s, bare_s = min(predict_times), min(bare_times)
    ratio = predict_s / bare_s
    n_picks = sum(sum(c.values()) for c in result.counts.values())
    runs = lambda times: ", ".join(f"{t:.2f}" for t in times)  # noqa: E731
    print(f"end-to-end predict : {predict_s:8.2f} s  ({n_picks} picks, batch {batch}; runs "
          f"{runs(predict_times)})")
    print(f"bare forward       : {bare_s:8.2f} s  ({n_tiles} tiles; runs {runs(bare_times)})")
    print(f"ratio              : {ratio:8.3f}   (target <= 1.10 on the CPU)", flush=True)

    if not args.skip_rss:
        rss_shape = tuple(args.rss_shape)
        big = write_test_tomogram(work / "memory.mrc", rss_shape, seed=1)
        size_mb = big.stat().st_size / 2 ** 20
        spec = work / "rss_child.json"
        child_argv = [a for a in (argv if argv is not None else sys.argv[1:])]
        spec.write_text(json.dumps({"argv": child_argv, "work": str(work)}))
        print(f"memory run: predict on {rss_shape} ({size_mb:.0f} MB, "
              f"{count_tiles(rss_shape, args.patch, args.pad)} tiles) in a fresh process ...",
              flush=True)
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(spec), str(big)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
            return proc.returncode
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        extra = figures["peak_mb"] - figures["baseline_mb"]
        print(f"peak RSS           : {figures['peak_mb']:8.0f} MB  (predict took "
              f"{figures['seconds']:.0f} s, {figures['picks']} picks)")
        print(f"  before predict   : {figures['baseline_mb']:8.0f} MB  (Python, torch, model "
              f"weights {figures['model_mb']:.1f} MB)")
        print(f"  added by predict : {extra:8.0f} MB  (target < 1024 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
