#!/usr/bin/env python
"""Slice-viewer benchmark: a 1000 x 1000 x 400 tomogram opened memory-mapped in the GUI.

In one run, offscreen (``QT_QPA_PLATFORM=offscreen``), through the real widgets:

* writes a float32 MRC of 400 x 1000 x 1000 (z, y, x; 1.6 GB) in slabs under a temporary
  folder, or reuses ``--tomogram PATH``;
* opens it in the Particle Visualization tab the way "Open tomogram..." does (the file dialog
  answers with the path, the button is clicked) and times the click until the first (XY)
  slice is painted and until the ZY and XZ slices are painted too; first with the file's
  pages evicted from the page cache (``posix_fadvise(DONTNEED)``: a tomogram not read since
  boot; a ZY slice needs a value from every 4 KB page of the file, so all three views take
  the time the disk needs to read the whole file), then opened again with the file cached
  (a tomogram just written or read);
* scrolls 50 slices along z (Up key on the views), x and y (Right key on the x / y sliders),
  painting after every step, and prints the mean and worst time per step;
* prints how much the process's memory grew: the peak resident set (which also counts the
  file pages the memory map touched, shared with the page cache), the anonymous memory (a
  copy of the volume would show here) and the peak of numpy / Python allocations traced while
  opening again and scrolling (a whole-volume copy, even a short-lived one, would be 1.6 GB).

Targets: first slices < 2 s; a scroll step < 50 ms (smooth); traced allocations and
anonymous memory far below the file (< 10 % of it).

    python scripts/bench_viewer.py                       # write, measure, delete the file
    python scripts/bench_viewer.py --keep                # keep the file (path printed)
    python scripts/bench_viewer.py --tomogram big.mrc    # reuse a tomogram
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIRST_SLICE_TARGET_S = 2.0
STEP_TARGET_MS = 50.0
MEMORY_TARGET_FRACTION = 0.10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tomogram", help="an existing tomogram to open instead of writing one")
    p.add_argument("--shape", type=int, nargs=3, default=(400, 1000, 1000),
                   metavar=("Z", "Y", "X"), help="tomogram to write (default 400 1000 1000)")
    p.add_argument("--steps", type=int, default=50, help="slices scrolled per axis (50)")
    p.add_argument("--keep", action="store_true", help="keep the written tomogram")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# The tomogram
# --------------------------------------------------------------------------------------------
def write_big_tomogram(path: Path, shape, slab: int = 8, seed: int = 0) -> None:
    """Noise with a slow gradient, written ``slab`` z-planes at a time (memory stays small)."""
    import mrcfile
    import numpy as np

    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1.0, 1.0, nx, dtype=np.float32)[None, None, :]
    with mrcfile.new_mmap(str(path), shape=(nz, ny, nx), mrc_mode=2, overwrite=True) as mrc:
        mrc.voxel_size = 10.0
        for z0 in range(0, nz, slab):
            z1 = min(nz, z0 + slab)
            block = rng.standard_normal((z1 - z0, ny, nx), dtype=np.float32)
            block += ramp
            mrc.data[z0:z1] = block
            mrc.flush()
        # header statistics of the noise, without another pass over 1.6 GB
        mrc.header.dmin, mrc.header.dmax, mrc.header.dmean, mrc.header.rms = -6, 6, 0, 1.15


# --------------------------------------------------------------------------------------------
# Memory of this process
# --------------------------------------------------------------------------------------------
def proc_status() -> dict:
    """VmHWM, VmRSS, RssAnon, RssFile in bytes (Linux)."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def evict_from_page_cache(path: Path) -> bool:
    """Ask the kernel to drop the file's cached pages (no privileges needed); True if asked."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    finally:
        os.close(fd)


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


# --------------------------------------------------------------------------------------------
# Driving the viewer
# --------------------------------------------------------------------------------------------
class Viewer:
    def __init__(self, settings_dir: Path) -> None:
        from PyQt5.QtCore import QSettings
        from PyQt5.QtWidgets import QApplication

        from gui.main_window import MainWindow

        self.app = QApplication.instance() or QApplication(sys.argv[:1])
        settings = QSettings(str(settings_dir / "settings.ini"), QSettings.IniFormat)
        self.window = MainWindow(settings=settings)
        self.window.resize(1360, 860)
        self.window.show()
        self.tab = self.window.viewer_tab
        self.window.tabs.setCurrentWidget(self.tab)
        self.settle()

    def settle(self) -> None:
        for _ in range(3):
            self.app.processEvents()

    def paint(self) -> None:
        """Paint the views now (what the screen would show), synchronously."""
        self.app.processEvents()
        self.tab.views.viewport().repaint()

    def open_like_the_user(self, path: Path) -> tuple[float, float]:
        """Click "Open tomogram..." (the dialog answers ``path``); seconds until the first
        (XY) slice is painted and until all three are."""
        from PyQt5.QtCore import QEventLoop, Qt
        from PyQt5.QtTest import QTest

        from gui import dialogs

        original = dialogs.choose_tomogram_file
        dialogs.choose_tomogram_file = lambda *a, **k: str(path)
        views = self.tab.views
        try:
            start = time.perf_counter()
            QTest.mouseClick(self.tab.open_button, Qt.LeftButton)
            views.viewport().repaint()
            first = time.perf_counter() - start
            if views.views["xy"].image.image is None:
                raise SystemExit("the XY slice was not drawn when the click returned")
            while any(v.image.image is None for v in views.views.values()):
                self.app.processEvents(QEventLoop.AllEvents, 20)
                if time.perf_counter() - start > 120:
                    raise SystemExit("the ZY / XZ slices were not drawn within 2 minutes")
            views.viewport().repaint()
            every = time.perf_counter() - start
        finally:
            dialogs.choose_tomogram_file = original
        if self.tab.tomogram is None or self.tab.tomogram.path != Path(path):
            raise SystemExit(f"the viewer did not open {path}")
        return first, every

    def scroll(self, axis: str, steps: int) -> list[float]:
        """``steps`` single-slice steps along ``axis``; seconds per step including painting.

        z: the Up key on the views (as when reading through a tomogram); x, y: the Right key
        on that axis's slider (the slider's keyboard path).
        """
        from PyQt5.QtCore import Qt
        from PyQt5.QtTest import QTest

        tab = self.tab
        index = "xyz".index(axis)
        n = (tab.tomogram.shape[::-1])[index]
        start = max(0, min(n - 1 - steps, n // 2 - steps // 2))
        tab.views.set_position(*[start if i == index else p
                                 for i, p in enumerate(tab.views.position)])
        self.paint()
        if axis == "z":
            tab.views.setFocus()
            widget, key = tab.views, Qt.Key_Up
        else:
            widget, key = tab.sliders[axis], Qt.Key_Right
            widget.setFocus()
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            QTest.keyClick(widget, key)
            self.paint()
            times.append(time.perf_counter() - t0)
            if tab.views.position[index] != start + i + 1:
                raise SystemExit(f"{axis} did not step: at {tab.views.position[index]}, "
                                 f"expected {start + i + 1}")
        return times


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="bench_viewer_"))
    try:
        if args.tomogram:
            path = Path(args.tomogram)
        else:
            path = tmp / "big.mrc"
            t0 = time.perf_counter()
            write_big_tomogram(path, args.shape)
            print(f"wrote {path} ({' x '.join(map(str, args.shape))} z y x, "
                  f"{mb(path.stat().st_size)}) in {time.perf_counter() - t0:.1f} s")
        file_bytes = path.stat().st_size

        viewer = Viewer(tmp)
        before = proc_status()
        peak_reset = reset_peak_rss()
        rows = []
        extra = []
        if evict_from_page_cache(path):
            first, every = viewer.open_like_the_user(path)
            rows.append(("first slice, file not cached", first * 1000))
            extra.append(("all 3 views, file not cached", every * 1000))
        first, every = viewer.open_like_the_user(path)
        rows.append(("first slice, file cached", first * 1000))
        extra.append(("all 3 views, file cached", every * 1000))
        nz, ny, nx = viewer.tab.tomogram.shape
        print(f"\nopened {path.name}: {nx} x {ny} x {nz} (x, y, z), {mb(file_bytes)}, "
              f"memory-mapped")
        results = {}
        for axis in "zxy":
            times = np.array(viewer.scroll(axis, args.steps)) * 1000
            results[axis] = times
        after = proc_status()

        print(f"\n{'measure':<34}{'value':>12}   target")
        target = FIRST_SLICE_TARGET_S * 1000
        for name, value in rows:
            print(f"{name:<34}{value:>9.0f} ms   < {target:.0f} ms  {verdict(value < target)}")
        for name, value in extra:
            print(f"{name:<34}{value:>9.0f} ms   (the ZY slice reads every page of the file)")
        worst_all = 0.0
        for axis in "zxy":
            t = results[axis]
            worst_all = max(worst_all, float(t.max()))
            print(f"{axis} step, mean of {len(t):<19}{t.mean():>9.1f} ms   < "
                  f"{STEP_TARGET_MS:.0f} ms   {verdict(t.mean() < STEP_TARGET_MS)}")
            print(f"{axis} step, worst{'':<23}{t.max():>9.1f} ms   < "
                  f"{STEP_TARGET_MS:.0f} ms   {verdict(t.max() < STEP_TARGET_MS)}")

        # memory: resident set (incl. mapped file pages), anonymous part, traced allocations
        limit = MEMORY_TARGET_FRACTION * file_bytes
        anon = 0
        if before and after:
            peak = after["VmHWM"] - (before["VmRSS"] if peak_reset else before["VmHWM"])
            anon = after["RssAnon"] - before["RssAnon"]
            filed = after["RssFile"] - before["RssFile"]
            print(f"{'peak RSS increase':<34}{mb(peak):>12}   (of which mapped file pages "
                  f"now {mb(filed)}: the page cache, not copies)")
            print(f"{'anonymous memory increase':<34}{mb(anon):>12}   < {mb(limit)}   "
                  f"{verdict(anon < limit)}")
        import tracemalloc

        viewer.tab.views.set_volume(np.zeros((2, 2, 2), np.float32))  # let go of the map
        viewer.tab.document.tomogram = None
        tracemalloc.start()
        viewer.open_like_the_user(path)
        for axis in "zxy":
            viewer.scroll(axis, 5)
        _current, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{'peak traced allocations':<34}{mb(traced):>12}   < {mb(limit)}   "
              f"{verdict(traced < limit)}  (open again + 5 steps per axis; a copy of the "
              f"volume would be {mb(file_bytes)})")
        ok = (all(value < target for _, value in rows) and worst_all < STEP_TARGET_MS
              and traced < limit and anon < limit)
        print("\nall targets met" if ok else "\nsome targets MISSED")
        viewer.window.viewer_tab.model.undo_stack.setClean()
        viewer.window.close()
        return 0 if ok else 1
    finally:
        if args.keep and not args.tomogram:
            print(f"kept {tmp / 'big.mrc'}")
            for item in tmp.iterdir():
                if item.name != "big.mrc":
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
