#!/usr/bin/env python
"""fp32 against bf16 prediction on trainings that ``bench_accuracy.py`` finished.

For each run folder given (``OUT/CASE/seedN/data/runs/NAME``, a ``best.pth`` inside), the two
held-out tomograms are picked twice, with ``precision="fp32"`` and ``"bf16"`` (the
checkpoint's thresholds both times), one after the other in this process: the scan times, the
localisation F1 and each class's F1 by the occupancy rule, and how far each bf16 pick lies
from its fp32 pick (picks matched by class and nearest position). Prints one row per run and
the largest differences; names the CPU's bfloat16 flags.

    python scripts/bench_precision.py OUT/shared_label/seed0/data/runs/pretrained_300 ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_accuracy  # noqa: E402  (the benchmark whose trainings these are)


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f" {f}" in text]
    return ", ".join(found) or "no native bf16 flag"


def compare(run_dir: Path) -> dict:
    from scipy.spatial import cKDTree

    from deepetpicker.io.picks import read_picks
    from deepetpicker.predict.job import predict

    _, pre, names = bench_accuracy.finished_training(run_dir)
    held_out = names[3:]
    row, picks = {}, {}
    for precision in ("fp32", "bf16"):
        out = run_dir / f"precision_{precision}"
        started = time.monotonic()
        result = predict(None, run_dir / "best.pth", tomograms=held_out, out=out,
                         precision=precision, overwrite=True, force=True)
        seconds = time.monotonic() - started
        tables = [read_picks(p) for p in result.outputs]
        scored = bench_accuracy.score_held_out(pre, tables, int(pre.num_cls))
        row[precision] = dict(seconds=round(seconds, 2), f1=round(scored.f1, 4),
                              per_class=[round(c.f1 or 0.0, 4) for c in scored.per_class],
                              picks=sum(len(t) for t in tables))
        picks[precision] = tables
    shift = 0.0
    for a, b in zip(picks["fp32"], picks["bf16"]):
        if len(a) and len(b):
            distance, _ = cKDTree(b.xyz).query(a.xyz)
            shift = max(shift, float(distance.max()))
    row["largest_shift_voxels"] = round(shift, 3)
    row["speed_up"] = round(row["fp32"]["seconds"] / row["bf16"]["seconds"], 2)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(f"CPU bfloat16 flags: {cpu_flags()}")
    record = {}
    for run_dir in args.runs:
        name = bench_accuracy.finished_training(run_dir)[0]
        record[name] = compare(run_dir)
        print(name, json.dumps(record[name]), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_flags(), "runs": record}, indent=1))
    print("| run | fp32 F1 | bf16 F1 | largest class F1 change | picks fp32 / bf16 | "
          "largest shift (voxels) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, r in record.items():
        change = max(abs(a - b) for a, b in zip(r["fp32"]["per_class"], r["bf16"]["per_class"]))
        print(f"| {name} | {r['fp32']['f1']:.3f} | {r['bf16']['f1']:.3f} | {change:.3f} | "
              f"{r['fp32']['picks']} / {r['bf16']['picks']} | {r['largest_shift_voxels']:.2f} "
              f"| {r['speed_up']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
