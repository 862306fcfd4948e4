#!/usr/bin/env python
"""Write the accuracy benchmark's tables into docs/accuracy.md and README.md: after each line
``<!-- table: NAME.json -->`` the table that ``bench_accuracy.py --table
docs/benchmarks/NAME.json`` prints, after ``<!-- accuracy summary -->`` one row per case of
the 300-step pretrained runs, this version and the one before (old tables there are
replaced). ``--check`` only says whether every table is up to date (exit 1 when not)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "accuracy.md"
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- table: (\S+\.json) -->$")
SUMMARY = "<!-- accuracy summary -->"
#: The cases of the README's summary: words for the kinds and labels, then where this
#: version's and the previous version's runs are (file, variant).
SUMMARY_CASES = (
    ("4 kinds, 10-22 voxels, one shared 9-voxel label", ("shared_label.json", "pretrained"),
     ("shared_label.json", "pretrained:before")),
    ("4 kinds, 10-20 voxels, one label per kind", ("class_labels.json", "pretrained"),
     ("accuracy.json", "pretrained")),
    ("4 kinds, 14-20 voxels, one shared 9-voxel label", ("similar.json", "pretrained"),
     ("similar.json", "pretrained:before")),
    ("8 kinds, 8-24 voxels, one label per kind (2 seeds)", ("many.json", "pretrained"),
     ("many.json", "pretrained:before")))


@functools.lru_cache(maxsize=None)
def _bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "scripts" /
                                                  "bench_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(name: str) -> str:
    """The table of ``docs/benchmarks/NAME``, as ``--table`` prints it."""
    bench = _bench()
    record = json.loads((ROOT / "docs" / "benchmarks" / name).read_text())
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        bench.print_table(bench.merge_records([record]))
    return text.getvalue().strip()


def summary() -> str:
    """One row per case and version: localisation and class F1 after 300 steps from the
    pretrained start (mean ± sd over seeds) and the lowest kind's class F1."""
    import statistics

    bench = _bench()
    rows = ["| case | version | localisation F1 | class F1 | lowest kind |",
            "|---|---|---|---|---|"]
    for words, *versions in SUMMARY_CASES:
        for (name, variant), version in zip(versions[::-1], ("before", "this")):
            runs = json.loads((ROOT / "docs" / "benchmarks" / name).read_text())["runs"]
            chosen = [r for r in runs if r["variant"] == variant and r["steps"] == 300
                      and not r["tta"]]
            if not chosen:
                continue
            loc = [r["f1"] for r in chosen]
            cls = [bench._class_f1(r) for r in chosen]
            kinds = [statistics.fmean(r["per_class"][k] or 0.0 for r in chosen)
                     for k in range(len(chosen[0]["per_class"]))]
            rows.append(f"| {words} | {version} | {statistics.fmean(loc):.3f} ± "
                        f"{statistics.pstdev(loc):.3f} | {statistics.fmean(cls):.3f} ± "
                        f"{statistics.pstdev(cls):.3f} | {min(kinds):.2f} |")
    return "\n".join(rows)


def render(page: str) -> str:
    """``page`` with the table after each marker made anew."""
    lines, out, i = page.split("\n"), [], 0
    while i < len(lines):
        out.append(lines[i])
        match = MARKER.match(lines[i])
        i += 1
        if match or out[-1] == SUMMARY:
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            out.extend((table(match.group(1)) if match else summary()).split("\n"))
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for path in (PAGE, README):
        page = path.read_text()
        new = render(page)
        if new != page:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"{', '.join(map(str, stale))}: tables out of date; run "
              f"scripts/accuracy_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
