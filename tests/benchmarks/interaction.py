"""Interaction latency: a temperature change -> the chart repainted, in the real window.

The window is built as ``app/gui.launch_window`` builds it (offscreen Qt): the
real Session, Controller, MainWindow and the app's ThreadPoolExecutor, so
vectors above ``INLINE_MAX_CLASSES`` are computed in the background exactly as
in the app. Each sample: move the temperature slider to a new position (its
``valueChanged`` path: readouts, then the throttled session write, whose
leading edge writes at once after a quiet spell), wait until the result for
that temperature is in the session (at once for inline vectors; the worker's
result delivered on the UI thread for background ones), then
``chart.plot_widget.repaint()`` (a synchronous paint of the chart). Between
samples the event loop idles 25 ms so the 16 ms throttle is quiet again, as
between two deliberate moves of a person's hand.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from tests.benchmarks.common import Figure, Report, percentile, ratio, scaled

SIZES = (10, 1_000, 50_257, 262_144)
# Slider positions that never give T = 1 (where the T = 1 reference is free).
POSITIONS = (-70, -45, -20, 20, 45, 70)
IDLE_MS = 25
TIMEOUT_S = 60.0


class _Loop:
    """Waits on the Qt event loop without spinning (a spinning loop starves the worker)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        # Wakes WaitForMoreEvents now and then to check the deadline; results arrive
        # as posted events, which wake it at once. Seldom, so the UI thread does not
        # compete with the worker for the interpreter.
        self.tick = QTimer()
        self.tick.setInterval(50)
        self.tick.start()

    def until(self, done, timeout: float = TIMEOUT_S) -> None:
        from PySide6.QtCore import QEventLoop
        from PySide6.QtWidgets import QApplication

        deadline = time.perf_counter() + timeout
        flags = (
            QEventLoop.ProcessEventsFlag.AllEvents | QEventLoop.ProcessEventsFlag.WaitForMoreEvents
        )
        while not done():
            if time.perf_counter() > deadline:
                raise TimeoutError("the window did not show the result in time")
            QApplication.processEvents(flags)

    def idle(self, ms: float) -> None:
        from PySide6.QtCore import QTimer

        end = time.perf_counter() + ms / 1e3
        QTimer.singleShot(int(ms) + 1, lambda: None)  # an event to wake up for
        self.until(lambda: time.perf_counter() >= end)


def build_window():
    """Session + Controller (real thread pool) + MainWindow, shown, as launch_window does."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from softmax_lab.app.controller import Controller
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session
    from softmax_lab.app.workers import ThreadPoolExecutor

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    app = QApplication.instance() or QApplication([])
    session = Session()
    executor = ThreadPoolExecutor()
    controller = Controller(session, background=executor)
    window = MainWindow(session, controller, False, "benchmark window: CUDA not offered")
    controller.start()
    window.show()
    return app, session, controller, executor, window


def close_window(controller, executor, window) -> None:
    import gc

    from PySide6.QtWidgets import QApplication

    gc.unfreeze()  # as launch_window does on the way out
    controller.stop()
    executor.shutdown()
    window.close()
    window.deleteLater()
    QApplication.processEvents()


# The other tabs that follow every tick while shown, measured at the largest size
# (the table above has the default tab, the steps table, in front).
OTHER_TABS = (("overflow lab", 1), ("cross-entropy", 2))


def run(report: Report, rounds: int) -> None:
    from softmax_lab.app.gui import settle_heap
    from softmax_lab.app.main_window import TAB_LOSS, TAB_OVERFLOW, TAB_STEPS
    from softmax_lab.widgets.temperature_control import position_to_temperature

    app, session, controller, executor, window = build_window()
    loop = _Loop()
    try:
        loop.until(lambda: window.isVisible() and session.analysis is not None)
        settle_heap()  # as launch_window does once the window is on screen
        slider = window.temperature.slider
        chart = window.chart.plot_widget
        rng = np.random.default_rng(0)
        positions = itertools.cycle(POSITIONS)
        leading_edge = True

        def computed() -> None:
            """Until the session's vector (as it is now) has its result, then paint it."""
            loop.until(
                lambda: (
                    session.analysis is not None
                    and session.analysis.request.logits is session.logits
                    and session.busy == ""
                )
            )
            chart.repaint()

        def show(n: int) -> None:
            session.set_vector(rng.normal(size=n) * 3.0)
            computed()

        def sample(count: int, latency: list, to_result: list, repaint: list) -> None:
            nonlocal leading_edge
            for i in range(count + 1):  # the first is a warm-up
                position = next(positions)
                if position == slider.value():
                    position = next(positions)
                expected = position_to_temperature(position)
                loop.idle(IDLE_MS)
                t0 = time.perf_counter()
                slider.setValue(position)
                leading_edge &= session.temperature == expected
                loop.until(
                    lambda expected=expected: (
                        session.analysis is not None
                        and session.analysis.request.temperature == expected
                        and session.analysis.request.logits is session.logits
                    )
                )
                t1 = time.perf_counter()
                chart.repaint()
                t2 = time.perf_counter()
                if i:
                    latency.append(t2 - t0)
                    to_result.append(t1 - t0)
                    repaint.append(t2 - t1)

        latency: dict[int, list[float]] = {n: [] for n in SIZES}
        to_result: dict[int, list[float]] = {n: [] for n in SIZES}
        repaint: dict[int, list[float]] = {n: [] for n in SIZES}
        # Two passes over the sizes, so slow spells of the shared machine spread over all.
        for half in (rounds // 2, rounds - rounds // 2):
            for n in SIZES:
                show(n)
                sample(half, latency[n], to_result[n], repaint[n])
        # The other tabs at the largest size, with a target (the loss tab shows its loss).
        tabs: dict[str, list[float]] = {name: [] for name, _ in OTHER_TABS}
        assert [index for _, index in OTHER_TABS] == [TAB_OVERFLOW, TAB_LOSS]
        show(SIZES[-1])
        session.target = 0
        for name, index in OTHER_TABS:
            window.tabs.setCurrentIndex(index)
            loop.idle(100)
            sample(rounds // 2, tabs[name], [], [])
        window.tabs.setCurrentIndex(TAB_STEPS)
        # A logit typed into the vocabulary-sized vector: a new vector, names kept.
        edits: list[float] = []
        model = window.editor.model
        for i in range(rounds // 2 + 1):
            loop.idle(IDLE_MS)
            t0 = time.perf_counter()
            model.setData(model.index(i % 7, 1), f"{0.25 * i:g}")
            computed()
            if i:
                edits.append(time.perf_counter() - t0)
    finally:
        close_window(controller, executor, window)
        loop.tick.stop()

    b = "interaction"
    for n in SIZES:
        ms = scaled(latency[n], 1e3)
        where = "inline" if n <= controller.inline_max_classes else "background"
        report.figures.append(
            Figure(
                b,
                f"{n:,} classes: T change -> chart repainted ({where})",
                "ms",
                ms,
                f"p95 {percentile(ms, 95):.1f} ms",
            )
        )
    # Where the time goes: until the result is in the session (compute, plus every
    # view's update from the session event), then the synchronous paint (which also
    # paints whatever else in the window is dirty: the steps table, the panels).
    for n in SIZES:
        report.figures.append(
            Figure(
                b,
                f"{n:,} classes: of which compute + views updated",
                "ms",
                scaled(to_result[n], 1e3),
            )
        )
        report.figures.append(
            Figure(b, f"{n:,} classes: of which repaint", "ms", scaled(repaint[n], 1e3))
        )
    for name, _ in OTHER_TABS:
        ms = scaled(tabs[name], 1e3)
        report.figures.append(
            Figure(
                b,
                f"{SIZES[-1]:,} classes, the {name} tab shown instead",
                "ms",
                ms,
                f"p95 {percentile(ms, 95):.1f} ms",
            )
        )
    ms = scaled(edits, 1e3)
    report.figures.append(
        Figure(
            b,
            f"{SIZES[-1]:,} classes: a logit typed into the table -> chart repainted",
            "ms",
            ms,
            f"p95 {percentile(ms, 95):.1f} ms",
        )
    )
    small, large = scaled(latency[SIZES[0]], 1e3), scaled(latency[SIZES[-1]], 1e3)
    report.ratios.append(
        ratio(b, "262,144 / 10 classes (median)", large, small, "<= 3", lambda v: v <= 3.0)
    )
    p95_ratio = percentile(large, 95) / percentile(small, 95)
    report.ratios.append(
        ratio(b, "262,144 / 10 classes (p95)", [percentile(large, 95)], [percentile(small, 95)])
    )
    worst_p95 = max(percentile(scaled(latency[n], 1e3), 95) for n in SIZES)
    report.notes.append(
        f"interaction: worst p95 over the sizes {worst_p95:.1f} ms (target <= 16 ms: "
        f"{'met' if worst_p95 <= 16 else 'not met'}); p95 ratio 262,144/10 = {p95_ratio:.1f}; "
        f"slider writes took the throttle's leading edge: {leading_edge}"
    )
    report.details["interaction"] = {
        "sizes": list(SIZES),
        "inline_max_classes": controller.inline_max_classes,
        "p95_ms": {str(n): percentile(scaled(latency[n], 1e3), 95) for n in SIZES},
        "leading_edge": leading_edge,
    }
