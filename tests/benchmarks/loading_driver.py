"""Loading driver: one fresh process per measurement, run by :mod:`tests.benchmarks.loading`.

``python -m tests.benchmarks.loading_driver FILE``: builds the real window (as
the interaction benchmark does, offscreen), then opens FILE the way the File
menu does (``window.open_path``: loaded in the background, then the batch
statistics in the background) and waits until the first heatmap is shown (the
first rows of a big batch, see app/controller.py ``preview_rows``: a result is in
the session and the heatmap has been painted, ``repaint()``, synchronous), then
until every row is. Prints one JSON line: the time, its parts
(``load_tensor``, ``batch_statistics``), and VmRSS/VmHWM from /proc/self/status.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class _Sampler(threading.Thread):
    """Peak anonymous and file-backed RSS, sampled every 5 ms (VmHWM mixes the two:
    pages of a memory-mapped file that were read count in RSS, yet they are page
    cache the kernel can drop, not memory the app allocated)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            for field in self.peak:
                self.peak[field] = max(self.peak[field], _status_kib(field))


def _timed(module, name: str, record: dict[str, float]) -> None:
    """Wrap ``module.name`` so its duration lands in ``record[name]`` (last call)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            record[name] = time.perf_counter() - t0

    setattr(module, name, wrapper)


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    path = Path(sys.argv[1])

    from softmax_lab.compute import batch, loaders
    from tests.benchmarks.interaction import _Loop, build_window

    _app, session, _controller, _executor, window = build_window()
    loop = _Loop()
    loop.until(lambda: window.isVisible() and session.analysis is not None)
    window.repaint()
    record: dict[str, float] = {}
    # The controller imports both at call time, so the wrappers are what it calls.
    _timed(loaders, "load_tensor", record)
    _timed(batch, "batch_statistics", record)

    rss_before = _status_kib("VmRSS")
    anon_before = _status_kib("RssAnon")
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    window.open_path(path)
    # The first heatmap: a big batch shows its first rows while the rest is computed
    # (app/controller.py preview_rows), a small one its full result.
    loop.until(lambda: session.batch_analysis is not None, timeout=300)
    t_result = time.perf_counter()
    window.batch.heatmap.repaint()
    t_shown = time.perf_counter()
    first_rows = session.batch_analysis.shape[0]
    loop.until(
        lambda: session.batch_analysis.shape[0] == session.batch.data.shape[0]
        and session.busy == "",
        timeout=300,
    )
    window.batch.heatmap.repaint()
    t_full = time.perf_counter()
    sampler.stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "file": path.name,
                "file_bytes": path.stat().st_size,
                "first_view_s": t_shown - t0,
                "first_view_rows": first_rows,
                "full_view_s": t_full - t0,
                "load_tensor_s": record.get("load_tensor"),
                "batch_statistics_s": record.get("batch_statistics"),
                "until_result_s": t_result - t0,
                "heatmap_paint_s": t_shown - t_result,
                "memory_mapped": bool(getattr(session.batch.data, "filename", None)),
                "heatmap_shape": list(session.batch_analysis.heatmap.shape),
                "vmrss_before_kib": rss_before,
                "vmhwm_kib": _status_kib("VmHWM"),
                "rss_anon_before_kib": anon_before,
                "rss_anon_peak_kib": sampler.peak["RssAnon"],
                "rss_file_peak_kib": sampler.peak["RssFile"],
            }
        ),
        flush=True,
    )
    os._exit(0)  # measured; teardown is not part of it


if __name__ == "__main__":
    main()
