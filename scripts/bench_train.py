#!/usr/bin/env python
"""Training-speed benchmark: one step of the training job vs the bare network work.

In one run, on one machine: simulates a small dataset, preprocesses it, then times

* job step: the training job's step as it runs in training - waiting for the next batch from
  the DataLoader (patch sampling, memory-mapped reads, augmentation in the workers), the
  forward and backward passes, the optimiser and schedule step;
* bare step: forward, loss, backward and optimiser step of the same network on one batch
  already on the device (no data work at all);

and prints both, their ratio (target <= 1.15: data loading and augmentation are hidden behind
the network's work) and the peak resident memory of this process and its workers.

    python scripts/bench_train.py                       # CPU or the first GPU, light network
    python scripts/bench_train.py --device cuda --patch 72 --batch 8 --f-maps 24,48,72,108
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--patch", type=int, default=32, help="patch edge (multiple of 8)")
    p.add_argument("--batch", type=int, default=4, help="patches per step")
    p.add_argument("--f-maps", default="8,16,24,36", help="channels per level")
    p.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    p.add_argument("--steps", type=int, default=8, help="timed steps of each kind")
    p.add_argument("--shape", default="64,128,128", help="simulated tomogram shape z,y,x")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: on the CPU, the cores left over by the workers)")
    p.add_argument("--workdir", help="folder for the simulated data (default: a temp folder)")
    return p.parse_args(argv)


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its finished children (workers)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan"), float("nan")
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0  # kB on Linux, B on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return own, children


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from deepetpicker.config import TrainConfig, load_preprocess_config
    from deepetpicker.preprocess.job import preprocess
    from deepetpicker.runtime import resolve_device
    from deepetpicker.simulate import simulate_dataset
    from deepetpicker.train.job import Trainer

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train_"))
    shape = tuple(int(v) for v in args.shape.split(","))
    print(f"simulating 2 tomograms {shape} in {work} ...", flush=True)
    pre = load_preprocess_config(simulate_dataset(work / "sim", n=2, shape=shape, seed=0))
    pre.base_path = str(work / "dataset")
    preprocess(pre)
    f_maps = [int(v) for v in args.f_maps.split(",")]
    cfg = TrainConfig.from_preprocess(
        pre, "0-1", "1", patch_size=args.patch, padding_size=min(12, args.patch // 4),
        batch_size=args.batch, f_maps=f_maps, num_workers=args.workers, device=args.device,
        max_epochs=1, seed=0)
    device = resolve_device(args.device, cfg.gpu_ids)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device.type == "cpu":  # workers prepare batches on their own cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers))
    trainer = Trainer(cfg, device)
    n_needed = (args.steps + 2) * args.batch
    if len(trainer.train_set) < n_needed:
        print(f"note: {len(trainer.train_set)} patches per epoch; epochs are chained to reach "
              f"{args.steps} timed steps")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def batches():
        epoch = 0
        while True:
            yield from trainer.loader(trainer.train_set, epoch, shuffle=True)
            epoch += 1

    stream = batches()
    images, targets = next(stream)
    trainer.train_step(images, targets)  # warm-up: worker start, allocator, kernels
    sync()

    job_times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        images, targets = next(stream)
        trainer.train_step(images, targets)
        sync()
        job_times.append(time.perf_counter() - t0)

    model, loss_fn, optimizer = trainer.model, trainer.loss_fn, trainer.optimizer
    x = images.to(device)
    y = targets.to(device)
    amp = trainer.amp
    bare_times = []
    for i in range(args.steps + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(x)
        loss = loss_fn(logits, y)
        trainer.scaler.scale(loss).backward()
        trainer.scaler.step(optimizer)
        trainer.scaler.update()
        float(loss.detach())
        sync()
        if i:  # the first is a warm-up
            bare_times.append(time.perf_counter() - t0)

    job = sorted(job_times)[len(job_times) // 2]
    bare = sorted(bare_times)[len(bare_times) // 2]
    own, children = peak_rss_mb()
    print(f"device {device}, network f_maps {f_maps}, patch {args.patch}^3, batch {args.batch}, "
          f"{args.workers} worker(s), torch threads {torch.get_num_threads()}")
    print(f"job step (data + augmentation + train): {job * 1000:9.1f} ms  (median of "
          f"{args.steps}; mean {sum(job_times) / len(job_times) * 1000:.1f} ms)")
    print(f"bare forward+backward+optimiser step:   {bare * 1000:9.1f} ms  (median of "
          f"{args.steps}; mean {sum(bare_times) / len(bare_times) * 1000:.1f} ms)")
    print(f"ratio job / bare: {job / bare:.3f}  (target <= 1.15)")
    print(f"peak RSS: {own:.0f} MB (this process), {children:.0f} MB (largest finished child)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
