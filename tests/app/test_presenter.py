"""Presenter mode (widgets/presenter_view.py, app/lecture_actions.py), driven from the keyboard.

The real window (Session + inline Controller + MainWindow with every feature
installed) opens the built-in lecture; F11, Page Down, arrows, + / − and Esc
are real key events sent to whatever widget has the keyboard focus. What is
checked is what the presenter displays: bar heights read back from its
BarGraphItem against torch.softmax, the heatmap's pixels against torch, the
scene counter, title, caption and the visible panel, and its fonts against
the normal window's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

from softmax_lab.app.lecture import builtin_lecture_path, load_lecture
from softmax_lab.app.lecture_actions import PANEL_TABS
from softmax_lab.app.session import Session
from softmax_lab.widgets.presenter_view import PresenterView, ScopedSession, temperature_step

LECTURE = load_lecture(builtin_lecture_path())
TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
RTOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-12}
WAIT_MS = 10_000


def reference(logits: Any, temperature: float, dtype: str, view: str = "probabilities", dim: int = -1) -> np.ndarray:
    x = torch.tensor(logits, dtype=TORCH_DTYPES[dtype]) / temperature
    out = torch.log_softmax(x, dim=dim) if view == "log-probabilities" else torch.softmax(x, dim=dim)
    return out.double().numpy()


def drawn(item: Any) -> np.ndarray:
    """Bar tops as drawn: y0 + height (see widgets/probability_chart.py)."""
    return np.asarray(item.opts["y0"], dtype=np.float64) + np.asarray(item.opts["height"], dtype=np.float64)


def press(qtbot: Any, key: Qt.Key, text: str = "") -> None:
    """A key press delivered where the keyboard focus is, as a person's would be."""
    target = QApplication.focusWidget() or QApplication.activeWindow()
    assert target is not None, "nothing has the keyboard focus"
    qtbot.keyClick(target, key)


def session_slot_counts(session: Session) -> dict[str, int]:
    counts = {name: len(signal) for name, signal in session.events.items()}
    counts["changed"] = len(session.changed)
    return counts


@pytest.fixture
def lectures(window: Any, qtbot: Any) -> Any:
    actions = window.lecture_actions
    yield actions
    actions.leave_presenter()  # a failing test must not leave the fullscreen window open


def enter_with_f11(window: Any, qtbot: Any) -> PresenterView:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    presenter = window.lecture_actions.presenter
    assert presenter is not None, "F11 did not open presenter mode"
    qtbot.waitUntil(lambda: presenter.isVisible() and QApplication.focusWidget() is presenter, timeout=WAIT_MS)
    return presenter


def check_scene(presenter: PresenterView, window: Any, index: int) -> None:
    scene = LECTURE.scenes[index]
    session = window.session
    where = f"scene {index + 1} {scene.title!r}"
    assert presenter.counter_label.text() == f"{index + 1} / {len(LECTURE)}", where
    assert presenter.title_label.text() == scene.title, where
    assert presenter.caption_label.text() == scene.caption and presenter.caption_label.isVisible(), where
    # The chart shows this scene's numbers, as torch computes them.
    expected = reference(list(scene.logits), scene.temperature, scene.dtype, scene.chart_view)
    np.testing.assert_allclose(drawn(presenter.chart.bars), expected, rtol=RTOL[scene.dtype], atol=1e-9, err_msg=where)
    # The scene's panel is the one on screen (and the normal window's tab follows).
    assert presenter.current_panel == scene.panel, where
    if scene.panel == "chart":
        assert not presenter.panel_stack.isVisible(), where
    else:
        panel = presenter.panels[scene.panel]
        assert panel.isVisible() and presenter.panel_stack.currentWidget() is panel, where
        assert window.tabs.currentIndex() == PANEL_TABS[scene.panel], where
    if scene.panel == "batch":
        batch = presenter.panels["batch"]
        image = np.asarray(batch.image.image, dtype=np.float64)
        want = reference(list(scene.batch), scene.temperature, scene.dtype, dim=scene.dim)
        np.testing.assert_allclose(image, want, rtol=1e-6, atol=1e-7, err_msg=where)
        assert session.batch_dim == scene.dim
    if scene.panel == "loss":
        loss = F.cross_entropy(
            torch.tensor([list(scene.logits)], dtype=TORCH_DTYPES[scene.dtype]) / scene.temperature,
            torch.tensor([scene.target]),
        ).item()
        shown = presenter.panels["loss"].loss_value.text()
        assert shown.startswith(f"{loss:.4g}") or shown.startswith(f"{loss:.3g}"), (where, shown, loss)
    if scene.panel == "overflow":
        table = presenter.panels["overflow"].table
        model = table.model()
        header = [model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) for c in range(model.columnCount())]
        naive = header.index("naive p = exp/Σ")
        x = torch.tensor(list(scene.logits), dtype=TORCH_DTYPES[scene.dtype])
        naive_torch = (torch.exp(x) / torch.exp(x).sum()).double().numpy()
        for row, value in enumerate(naive_torch):
            cell = model.index(row, naive).data(Qt.ItemDataRole.DisplayRole)
            assert (cell == "nan") == bool(np.isnan(value)), (where, row, cell, value)


def test_a_lecture_runs_end_to_end_from_the_keyboard(window, lectures, qtbot):
    session = window.session
    before = session_slot_counts(session)
    lectures.builtin_action.trigger()
    assert lectures.lecture == LECTURE and lectures.current == 0

    presenter = enter_with_f11(window, qtbot)
    assert presenter.isFullScreen() and presenter.windowState() & Qt.WindowState.WindowFullScreen
    assert lectures.present_action.isChecked()
    # Its own window: the main window's widgets are still the only ones found by name there.
    assert window.findChildren(QWidget, "probabilityChart") == [window.chart]
    check_scene(presenter, window, 0)

    # Every scene, with every "next" key a person or a clicker sends.
    next_keys = [Qt.Key.Key_PageDown, Qt.Key.Key_Right, Qt.Key.Key_Space, Qt.Key.Key_Down]
    for index in range(1, len(LECTURE)):
        press(qtbot, next_keys[index % len(next_keys)])
        check_scene(presenter, window, index)
    press(qtbot, Qt.Key.Key_PageDown)  # past the end: stays on the last scene
    check_scene(presenter, window, len(LECTURE) - 1)

    # Back, to the start, to the end.
    press(qtbot, Qt.Key.Key_PageUp)
    check_scene(presenter, window, len(LECTURE) - 2)
    press(qtbot, Qt.Key.Key_Left)
    check_scene(presenter, window, len(LECTURE) - 3)
    press(qtbot, Qt.Key.Key_Home)
    check_scene(presenter, window, 0)

    # + and − walk the temperature ladder; the chart follows.
    scene = LECTURE.scenes[0]
    for key, temperature in ((Qt.Key.Key_Plus, 1.25), (Qt.Key.Key_Plus, 1.6), (Qt.Key.Key_Minus, 1.25), (Qt.Key.Key_Minus, 1.0), (Qt.Key.Key_Minus, 0.8)):
        press(qtbot, key)
        assert session.temperature == pytest.approx(temperature)
        np.testing.assert_allclose(drawn(presenter.chart.bars), reference(list(scene.logits), temperature, "float32"), rtol=1e-6)
        assert f"T = {temperature:g}" in presenter.chart.plot_item.titleLabel.text
    press(qtbot, Qt.Key.Key_R)  # the scene as written again
    assert session.temperature == 1.0
    press(qtbot, Qt.Key.Key_End)
    check_scene(presenter, window, len(LECTURE) - 1)

    # Esc leaves presenter mode, and only that: the window is as it was.
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: lectures.presenter is None and not presenter.isVisible(), timeout=WAIT_MS)
    assert window.isVisible() and not lectures.present_action.isChecked()
    assert window.chart.isVisible() and window.tabs.isVisible() and window.editor.isVisible()
    assert window.tabs.currentIndex() == PANEL_TABS[LECTURE.scenes[-1].panel]
    assert lectures.lecture == LECTURE and lectures.current == len(LECTURE) - 1
    last = LECTURE.scenes[-1]
    np.testing.assert_allclose(drawn(window.chart.bars), reference(list(last.logits), 1.0, "float32"), rtol=1e-6)
    # Nothing of the presenter is left listening to the session.
    assert session_slot_counts(session) == before
    # And F11 brings it back at the same scene.
    presenter = enter_with_f11(window, qtbot)
    check_scene(presenter, window, len(LECTURE) - 1)
    qtbot.keyClick(presenter, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: lectures.presenter is None, timeout=WAIT_MS)


def font_points(widget: QWidget) -> float:
    return widget.font().pointSizeF()


def tick_points(chart_plot: Any, axis: str = "bottom") -> float:
    font = chart_plot.getAxis(axis).style["tickFont"]
    return font.pointSizeF() if font is not None else QApplication.font().pointSizeF()


def test_presenter_fonts_are_larger_everywhere(window, lectures, qtbot):
    lectures.builtin_action.trigger()
    presenter = enter_with_f11(window, qtbot)
    normal, big = window.chart.plot_item, presenter.chart.plot_item
    # Chart text pyqtgraph draws itself: ticks, axis label, title, value labels, legend.
    for axis in ("bottom", "left"):
        assert tick_points(big, axis) > tick_points(normal, axis)
        assert float(big.getAxis(axis).labelStyle["font-size"].rstrip("pt")) > float(
            normal.getAxis(axis).labelStyle["font-size"].rstrip("pt")
        )
    assert float(big.titleLabel.opts["size"].rstrip("pt")) > float(normal.titleLabel.opts["size"].rstrip("pt"))
    normal_labels = [label.textItem.font().pointSizeF() for label in window.chart.value_labels if label.isVisible()]
    big_labels = [label.textItem.font().pointSizeF() for label in presenter.chart.value_labels if label.isVisible()]
    assert big_labels and normal_labels and min(big_labels) > max(normal_labels)
    assert float(presenter.chart.legend.opts["labelTextSize"].rstrip("pt")) > float(window.chart.legend.opts["labelTextSize"].rstrip("pt"))
    # The caption, under the chart, against the same caption in the scene list.
    assert font_points(presenter.caption_label) > 1.5 * font_points(lectures.scene_list.caption)
    # Tables: the steps table and the overflow table (whose model sets its own bold font).
    press(qtbot, Qt.Key.Key_PageDown)  # scene 2: the steps panel
    assert font_points(presenter.panels["steps"].view) > font_points(window.steps.view)
    press(qtbot, Qt.Key.Key_End)
    lectures.go_to(6)  # an overflow scene
    table = presenter.panels["overflow"].table
    assert font_points(table) > font_points(window.overflow.table)
    bold = table.model().index(0, 2).data(Qt.ItemDataRole.FontRole)  # a failed (inf) cell, bold
    assert bold is not None and bold.pointSizeF() == font_points(table)
    header = table.model().headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole)
    assert header.pointSizeF() == font_points(table)
    # A widget that sets a new font of its own later is scaled again (the loss panel does).
    lectures.go_to(9)
    loss_label = presenter.panels["loss"].loss_value
    assert font_points(loss_label) > font_points(window.loss.loss_value)
    # The readout's numbers.
    lectures.go_to(0)
    assert font_points(presenter.readout.labels["entropyLabel"]) > font_points(window.readout.labels["entropyLabel"])
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: lectures.presenter is None, timeout=WAIT_MS)


def test_presenter_without_a_lecture_shows_the_current_state(window, lectures, qtbot):
    session = window.session
    window.tabs.setCurrentIndex(PANEL_TABS["overflow"])
    presenter = enter_with_f11(window, qtbot)
    assert presenter.counter_label.text() == "" and presenter.title_label.text() == "Softmax Lab"
    assert not presenter.caption_label.isVisible()
    assert presenter.current_panel == "overflow"  # the window's open panel
    np.testing.assert_allclose(drawn(presenter.chart.bars), reference([2.0, 1.0, 0.1], 1.0, "float32"), rtol=1e-6)
    # Without scenes the arrows step the chart view.
    press(qtbot, Qt.Key.Key_Right)
    assert session.chart_view == "log-probabilities"
    np.testing.assert_allclose(
        drawn(presenter.chart.bars), reference([2.0, 1.0, 0.1], 1.0, "float32", "log-probabilities"), rtol=1e-6
    )
    press(qtbot, Qt.Key.Key_PageUp)
    assert session.chart_view == "probabilities"
    press(qtbot, Qt.Key.Key_Left)
    assert session.chart_view == "logits"
    press(qtbot, Qt.Key.Key_Minus)
    assert session.temperature == pytest.approx(0.8)
    window.tabs.setCurrentIndex(PANEL_TABS["loss"])  # the lecturer opens another panel
    assert presenter.current_panel == "loss" and presenter.panels["loss"].isVisible()
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: lectures.presenter is None, timeout=WAIT_MS)
    assert session.temperature == pytest.approx(0.8)  # leaving changes nothing else


def test_closing_the_presenter_or_the_window_leaves_presenter_mode(window, lectures, qtbot):
    presenter = enter_with_f11(window, qtbot)
    presenter.close()  # a window manager closing the fullscreen window
    qtbot.waitUntil(lambda: lectures.presenter is None, timeout=WAIT_MS)
    assert not lectures.present_action.isChecked()
    lectures.present_action.trigger()  # View → Presenter mode
    assert lectures.presenter is not None and lectures.present_action.isChecked()
    lectures.present_action.trigger()
    assert lectures.presenter is None
    presenter = enter_with_f11(window, qtbot)
    window.close()
    assert lectures.presenter is None and not presenter.isVisible()


def clipped_labels(root: QWidget) -> list[tuple[str, Any, Any]]:
    """Visible labels and table headers whose text does not fit: squeezed or cut off."""
    from PySide6.QtWidgets import QHeaderView, QLabel, QTableView

    cut = []
    for label in root.findChildren(QLabel):
        if not label.isVisibleTo(root) or not label.text():
            continue
        name = label.objectName() or label.text()[:30]
        if label.wordWrap():
            need = label.heightForWidth(label.width())
            if label.height() + 1 < need:
                cut.append((name, label.height(), need))
        else:
            hint = label.sizeHint()
            if label.width() + 1 < hint.width() or label.height() + 1 < hint.height():
                cut.append((name, label.size().toTuple(), hint.toTuple()))
    for table in root.findChildren(QTableView):  # every column on screen, no sideways scrolling
        if table.isVisibleTo(root) and table.horizontalScrollBar().isVisible():
            cut.append((table.objectName(), "scrolls sideways", table.width()))
    for header in root.findChildren(QHeaderView):
        if not header.isVisibleTo(root) or header.orientation() != Qt.Orientation.Horizontal:
            continue
        for section in range(header.count()):
            need = header.sectionSizeFromContents(section).width()
            if not header.isSectionHidden(section) and header.sectionSize(section) + 1 < need:
                cut.append((header.parent().objectName(), section, need))
    return cut


@pytest.mark.parametrize(("width", "height", "scale"), [(1920, 1080, 1.6), (1280, 720, 1.2)])
def test_presenter_view_contract(qtbot, width, height, scale):
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.lecture import apply_scene

    session = Session()
    Controller(session).start()
    before = session_slot_counts(session)
    view = PresenterView(session, scale=scale)
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    # Starting on a scene with a panel (a narrow chart) and then the wide chart
    # catches sizes measured once and never again.
    order = [1, *(i for i in range(len(LECTURE)) if i != 1)]
    for index in order:
        scene = LECTURE.scenes[index]
        apply_scene(session, scene)
        view.show_scene(scene.title, scene.caption, scene.panel, index, len(LECTURE))
        # Everything fits the screen: nothing pushes the fullscreen window larger.
        hint = view.minimumSizeHint()
        assert 0 < hint.width() <= width and 0 < hint.height() <= height, (scene.title, hint)
        QApplication.processEvents()
        image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        QApplication.processEvents()  # what painting changed (axis text sizes) settles
        assert clipped_labels(view) == [], scene.title
        # The chart's own text stays inside the chart: legend box and title.
        plot = view.chart.plot_item
        vb = plot.getViewBox()
        assert vb.sceneBoundingRect().contains(view.chart.legend.sceneBoundingRect()), scene.title
        for _sample, label in view.chart.legend.items:  # the text itself, not a stale box
            assert view.chart.legend.sceneBoundingRect().contains(label.item.sceneBoundingRect()), scene.title
        title = plot.titleLabel.item.boundingRect().width()
        assert title <= view.chart.plot_widget.viewport().width(), scene.title
        assert not image.isNull() and (image.width(), image.height()) == (width, height)
        colours = {image.pixel(x, y) for x in range(0, width, 9) for y in range(0, height, 9)}
        assert len(colours) > 10, scene.title
    assert session_slot_counts(session) != before
    view.dispose()
    assert session_slot_counts(session) == before
    view.close()


def test_scoped_session_forwards_and_disconnects_everything():
    session = Session()
    scoped = ScopedSession(session)
    seen: list[Any] = []
    scoped.events["temperature"].connect(seen.append)
    scoped.events["temperature"].connect(lambda t: seen.append(("lambda", t)))
    scoped.changed.connect(lambda names: seen.append(names))
    scoped.temperature = 2.0  # writes go to the real session
    assert session.temperature == 2.0 and scoped.temperature == 2.0 and scoped.num_classes == 3
    assert seen == [2.0, ("lambda", 2.0), frozenset({"temperature"})]
    scoped.disconnect_all()
    session.temperature = 3.0
    assert len(seen) == 3
    assert len(session.events["temperature"]) == 0 and len(session.changed) == 0


@pytest.mark.parametrize(
    ("start", "up", "down"),
    [(1.0, 1.25, 0.8), (0.5, 0.63, 0.4), (0.7, 0.8, 0.63), (5.0, 6.3, 4.0), (100.0, 100.0, 80.0), (0.01, 0.0125, 0.01)],
)
def test_temperature_ladder(start, up, down):
    assert temperature_step(start, up=True) == pytest.approx(up)
    assert temperature_step(start, up=False) == pytest.approx(down)
    # About ×1.25 per step everywhere on the ladder.
    t = 0.01
    while t < 100.0:
        nxt = temperature_step(t, up=True)
        assert 1.2 <= nxt / t <= 1.3 or math.isclose(nxt, 100.0)
        t = nxt
