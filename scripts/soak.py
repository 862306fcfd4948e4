#!/usr/bin/env python
"""Fault campaigns against the real commands: kills, a full disk, two writers, hostile files.

* ``kill``: ``preprocess``, ``train`` and ``predict`` on a small simulated dataset, each
  killed (SIGKILL) at a random moment of its run, many times. After each kill every file under
  its real name in the output folders must be whole (MRC volumes, picks, JSON, CSV and
  checkpoints read back), and running the same command again (``train --resume`` from the
  last checkpoint) must finish with the result of an uninterrupted run: the same volumes, the
  same picks, the same loss curve.
* ``disk``: ``predict --save-scores`` into a small file system of its own (tmpfs, needs root)
  of several sizes: a message naming the folder and exit status 2, no temporary file left, the
  files written before whole.
* ``writers``: two ``predict`` runs of different tomograms into one folder at the same time,
  many times: the folder's record lists every file both wrote, and it always parses.
* ``fuzz``: the property-based tests of every reader (``tests/test_fuzz.py``) in their long
  profile.

Prints one row per campaign: cases tried, survived, and anything lost (must be 0). The
budget (``--seconds``) is shared among the campaigns chosen.

    python scripts/soak.py --seconds 600
    python scripts/soak.py --campaigns kill --seconds 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAMPAIGNS = ("kill", "disk", "writers", "fuzz")
TINY = dict(f_maps=[4, 8, 12, 16], patch_size=32, padding_size=4, batch_size=4, max_epochs=3,
            val_every=1, device="cpu", num_workers=0, init="scratch", seed=0)


def child_env() -> dict:
    """The environment of the commands tried: one thread each, this checkout's package."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "deepetpicker", *args]


def run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=child_env(), cwd=ROOT)


def killed_at(args: list[str], after: float) -> int:
    """Start ``args``, kill it (SIGKILL) after ``after`` seconds; its exit status (-9 when
    killed, its own when it finished first)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=child_env(), cwd=ROOT)
    try:
        return proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait()


# -- the dataset ---------------------------------------------------------------------------
def make_dataset(work: Path) -> dict:
    """A small simulated dataset, its preprocess and training configs, a reference run of
    each command and how long each took."""
    from dataclasses import replace

    from deepetpicker.config import TrainConfig, load_preprocess_config, save_config
    from deepetpicker.simulate import simulate_dataset

    pre_path = simulate_dataset(work / "data", n=3, shape=(48, 96, 96), seed=5,
                                classes=[dict(name="globule", shape="globule", diameter=10),
                                         dict(name="barrel", shape="barrel", diameter=14)])
    pre = load_preprocess_config(pre_path)
    timings = {}
    t0 = time.monotonic()
    done = run(command("preprocess", str(pre_path)))
    assert done.returncode == 0, done.stderr
    timings["preprocess"] = time.monotonic() - t0
    train = TrainConfig.from_preprocess(pre, [0], [1], dset_name="reference", **TINY)
    train_path = save_config(train, work / "train_reference.py")
    t0 = time.monotonic()
    done = run(command("train", str(train_path)))
    assert done.returncode == 0, done.stderr
    timings["train"] = time.monotonic() - t0
    weights = Path(train.run_dir) / "best.pth"
    tomograms = sorted(Path(pre.tomo_path).glob("*.mrc"))
    t0 = time.monotonic()
    done = run(command("predict", str(train_path), "--weights", str(weights), "--tomograms",
                       *map(str, tomograms), "--out", str(work / "reference_picks")))
    assert done.returncode == 0, done.stderr
    timings["predict"] = time.monotonic() - t0
    return dict(pre=pre, pre_path=pre_path, train=train, weights=weights, tomograms=tomograms,
                timings=timings, replace=replace)


# -- checking what a kill left -------------------------------------------------------------
def whole(path: Path) -> bool:
    """Whether the file reads back as what its name says it is."""
    from deepetpicker.errors import DeepETPickerError

    suffix = path.suffix.lower()
    try:
        if suffix == ".mrc":
            import mrcfile

            with mrcfile.open(path, permissive=False) as mrc:
                np.asarray(mrc.data).max()       # every byte of the data read
        elif suffix == ".coords":
            from deepetpicker.io.picks import read_picks

            read_picks(path)
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".csv":
            path.read_text().splitlines()
        elif suffix == ".pth":
            from deepetpicker.model.checkpoint import read_checkpoint

            read_checkpoint(path, "cpu")
        return True
    except (OSError, ValueError, DeepETPickerError, EOFError, RuntimeError):
        return False


def broken_files(folder: Path) -> list[Path]:
    """Files under their real names in ``folder`` (recursively; temporary files of writes
    aside) that are not whole."""
    from deepetpicker.io.atomic import PART_NAME

    return [p for p in folder.rglob("*") if p.is_file() and not PART_NAME.match(p.name)
            and not whole(p)]


def same_volumes(a: Path, b: Path) -> bool:
    import mrcfile

    names = sorted(p.relative_to(a) for p in a.rglob("*.mrc"))
    if names != sorted(p.relative_to(b) for p in b.rglob("*.mrc")):
        return False
    for name in names:
        with mrcfile.open(a / name) as x, mrcfile.open(b / name) as y:
            if not np.array_equal(np.asarray(x.data), np.asarray(y.data)):
                return False
    return True


def kill_preprocess(data: dict, trial: Path, after: float) -> tuple[bool, str]:
    from deepetpicker.config import save_config

    pre = data["replace"](data["pre"], base_path=str(trial / "base"))
    config = save_config(pre, trial / "pre.py")
    data["killed"] += killed_at(command("preprocess", str(config)), after) == -signal.SIGKILL
    broken = broken_files(trial / "base")
    if broken:
        return False, f"half-written after the kill: {broken}"
    done = run(command("preprocess", str(config)))
    if done.returncode != 0:
        return False, f"the rerun failed: {done.stderr[-300:]}"
    reference = Path(data["pre"].base_path)
    for sub in (Path(data["pre"].data_dir).name, Path(data["pre"].ocp_dir).name,
                Path(data["pre"].label_dir).name):
        if not same_volumes(reference / sub, trial / "base" / sub):
            return False, f"{sub} differs from an uninterrupted run"
    return True, ""


def kill_train(data: dict, trial: Path, after: float) -> tuple[bool, str]:
    from deepetpicker.config import save_config
    from deepetpicker.train.run_files import read_metrics

    cfg = data["replace"](data["train"], dset_name=f"soak_{trial.name}")
    config = save_config(cfg, trial / "train.py")
    run_dir = Path(cfg.run_dir)
    data["killed"] += killed_at(command("train", str(config)), after) == -signal.SIGKILL
    broken = broken_files(run_dir) if run_dir.exists() else []
    if broken:
        return False, f"half-written after the kill: {broken}"
    last = run_dir / "last.pth"
    again = command("train", str(config), *(["--resume", str(last)] if last.exists() else []))
    done = run(again)
    if done.returncode != 0:
        return False, f"the rerun failed: {done.stderr[-300:]}"
    ours = [round(r["train_loss"], 5) for r in read_metrics(run_dir)]
    reference = [round(r["train_loss"], 5) for r in read_metrics(data["train"].run_dir)]
    shutil.rmtree(run_dir, ignore_errors=True)
    if ours != reference:
        return False, f"loss curve {ours} differs from an uninterrupted run's {reference}"
    return True, ""


def kill_predict(data: dict, trial: Path, after: float) -> tuple[bool, str]:
    args = command("predict", str(trial / "train.py"), "--weights", str(data["weights"]),
                   "--tomograms", *map(str, data["tomograms"]), "--out", str(trial / "picks"))
    from deepetpicker.config import save_config

    save_config(data["train"], trial / "train.py")
    data["killed"] += killed_at(args, after) == -signal.SIGKILL
    if (trial / "picks").exists():
        broken = broken_files(trial / "picks")
        if broken:
            return False, f"half-written after the kill: {broken}"
    done = run(args)
    if done.returncode != 0:
        return False, f"the rerun failed: {done.stderr[-300:]}"
    for reference in sorted((data["reference_picks"]).glob("*.coords")):
        if (trial / "picks" / reference.name).read_bytes() != reference.read_bytes():
            return False, f"{reference.name} differs from an uninterrupted run"
    return True, ""


def campaign_kill(work: Path, seconds: float, rng: random.Random) -> dict:
    data = make_dataset(work / "kill")
    data["reference_picks"] = work / "kill" / "reference_picks"
    data["killed"] = 0
    jobs = {"preprocess": kill_preprocess, "train": kill_train, "predict": kill_predict}
    tried = survived = 0
    problems = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        name = rng.choice(sorted(jobs))
        trial = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=work / "kill"))
        after = rng.uniform(0.3, 1.1) * data["timings"][name]
        ok, why = jobs[name](data, trial, after)
        tried += 1
        survived += ok
        if not ok:
            problems.append(f"{name} killed after {after:.1f} s: {why}")
        shutil.rmtree(trial, ignore_errors=True)
    return dict(tried=tried, survived=survived, lost=tried - survived, problems=problems,
                killed_before_the_end=data["killed"])


# -- a full disk -----------------------------------------------------------------------------
def campaign_disk(work: Path, seconds: float, rng: random.Random) -> dict:
    if os.geteuid() != 0:
        return dict(skipped="mounting a small file system needs root")
    data = make_dataset(work / "disk")
    from deepetpicker.config import save_config

    config = save_config(data["train"], work / "disk" / "train.py")
    tried = survived = 0
    problems = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        size_kb = rng.choice([16, 64, 200, 400, 700, 1500])
        disk = Path(tempfile.mkdtemp(prefix=f"disk{size_kb}k_", dir=work / "disk"))
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                                  str(disk)], capture_output=True, text=True)
        if mounted.returncode != 0:
            return dict(skipped=f"cannot mount tmpfs: {mounted.stderr.strip()}")
        try:
            done = run(command("predict", str(config), "--weights", str(data["weights"]),
                               "--tomograms", *map(str, data["tomograms"]), "--out", str(disk),
                               "--save-scores", "--format", "star"))
            tried += 1
            leftovers = [p.name for p in disk.iterdir() if ".part" in p.name]
            broken = broken_files(disk)
            fine = (done.returncode == 0 or (done.returncode == 2 and "is full" in done.stderr
                                             and str(disk) in done.stderr))
            if fine and not leftovers and not broken and "Traceback" not in done.stderr:
                survived += 1
            else:
                problems.append(f"{size_kb} KB: exit {done.returncode}, left {leftovers}, "
                                f"broken {broken}: {done.stderr[-200:]}")
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    return dict(tried=tried, survived=survived, lost=tried - survived, problems=problems)


# -- two writers -----------------------------------------------------------------------------
def campaign_writers(work: Path, seconds: float, rng: random.Random) -> dict:
    data = make_dataset(work / "writers")
    from deepetpicker.config import save_config
    from deepetpicker.io.outputs import MANIFEST_NAME

    config = save_config(data["train"], work / "writers" / "train.py")
    env = child_env()
    tried = survived = 0
    problems = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        out = Path(tempfile.mkdtemp(prefix="two_", dir=work / "writers"))
        procs = [subprocess.Popen(command("predict", str(config), "--weights",
                                          str(data["weights"]), "--tomograms", str(tomogram),
                                          "--out", str(out)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                  cwd=ROOT, text=True)
                 for tomogram in data["tomograms"][:2]]
        codes = [p.wait() for p in procs]
        tried += 1
        try:
            listed = set(json.loads((out / MANIFEST_NAME).read_text())["files"])
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"the record does not parse: {exc}")
            continue
        written = {p.name for p in out.iterdir() if not p.name.startswith(".")}
        if codes == [0, 0] and written <= listed:
            survived += 1
        else:
            problems.append(f"exit {codes}; not recorded: {sorted(written - listed)}")
        shutil.rmtree(out, ignore_errors=True)
    return dict(tried=tried, survived=survived, lost=tried - survived, problems=problems)


# -- hostile files ---------------------------------------------------------------------------
def campaign_fuzz(work: Path, seconds: float, rng: random.Random) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", HYPOTHESIS_PROFILE="long",
               QT_QPA_PLATFORM="offscreen")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", "tests/test_fuzz.py"],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=max(60.0, seconds * 3))
    examples = sum(int(line.split("passing examples")[0].split()[-1])
                   for line in done.stdout.splitlines() if "passing examples" in line)
    failed = done.stdout.count("FAILED")
    return dict(tried=examples, survived=examples if done.returncode == 0 else examples - failed,
                lost=0 if done.returncode == 0 else failed,
                problems=[] if done.returncode == 0 else [done.stdout[-1500:]],
                seconds=round(time.monotonic() - started))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", nargs="+", choices=CAMPAIGNS, default=list(CAMPAIGNS))
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="the time budget, shared among the campaigns (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="deepetpicker-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    share = args.seconds / len(args.campaigns)
    runners = {"kill": campaign_kill, "disk": campaign_disk, "writers": campaign_writers,
               "fuzz": campaign_fuzz}
    rows = {}
    for name in args.campaigns:
        (work / name).mkdir(exist_ok=True)
        rows[name] = runners[name](work, share, rng)
        print(f"{name}: {json.dumps({k: v for k, v in rows[name].items() if k != 'problems'})}",
              flush=True)
        for problem in rows[name].get("problems", []):
            print(f"  {problem}", flush=True)
    print()
    print("| campaign | cases tried | survived | lost |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        if "skipped" in row:
            print(f"| {name} | skipped: {row['skipped']} | | |")
        else:
            print(f"| {name} | {row['tried']} | {row['survived']} | {row['lost']} |")
    lost = sum(row.get("lost", 0) for row in rows.values())
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
