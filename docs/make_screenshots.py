"""Render the README pictures: the real window, offscreen, in a few teaching states.

Run with ``.venv/bin/python docs/make_screenshots.py [OUTDIR]`` (``make screenshots``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from softmax_lab.app.controller import Controller
from softmax_lab.app.main_window import TAB_BATCH, TAB_LOSS, TAB_OVERFLOW, TAB_STEPS, MainWindow
from softmax_lab.app.session import LoadedBatch, Session


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    app = QApplication.instance() or QApplication([])
    session = Session()
    controller = Controller(session)
    window = MainWindow(session, controller)
    controller.start()
    window.resize(1400, 900)
    window.show()

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(out / name))
        print(out / name)

    window.tabs.setCurrentIndex(TAB_STEPS)
    session.temperature = 0.5
    shot("window.png")
    session.temperature = 1.0
    session.set_vector([1000.0, 999.0, 998.0])
    window.tabs.setCurrentIndex(TAB_OVERFLOW)
    shot("overflow.png")
    session.set_vector([2.0, 1.0, 0.1])
    session.label_smoothing = 0.1
    window.tabs.setCurrentIndex(TAB_LOSS)
    shot("cross_entropy.png")
    rng = np.random.default_rng(0)
    data = rng.normal(0, 2, size=(64, 10)).astype(np.float32)
    session.batch = LoadedBatch(data, Path("example_batch.npy"), targets=rng.integers(0, 10, 64))
    window.tabs.setCurrentIndex(TAB_BATCH)
    shot("batch.png")
    session.batch_dim = 0
    shot("batch_dim0.png")
    session.batch = None
    window.editor.apply_preset("vocab50k")
    window.tabs.setCurrentIndex(TAB_STEPS)
    shot("vocab.png")
    # Presenter mode on the built-in lecture's overflow scene, as a 1280x720 projector shows it.
    lectures = window.lecture_actions
    lectures.open_builtin_lecture()
    lectures.go_to(6)  # "Large logits overflow a naive exp"
    lectures.enter_presenter()
    presenter = lectures.presenter
    presenter.showNormal()
    presenter.resize(1280, 720)
    for _ in range(5):
        app.processEvents()
    presenter.grab().save(str(out / "presenter.png"))
    print(out / "presenter.png")
    lectures.leave_presenter()
    window.close()
    window.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
