"""Light and dark themes: the palette and every chart switch, text stays readable (checked on
grabbed pixels), bar colours are kept, the choice persists, "system" follows the OS."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QApplication, QSlider, QStyleOptionViewItem, QTableView

from softmax_lab.app import themes
from softmax_lab.app.main_window import TAB_BATCH, TAB_LOSS, TAB_OVERFLOW
from softmax_lab.app.settings import Settings
from softmax_lab.widgets import style
from tests.app.session_helpers import WAIT_MS, build_window, find


@pytest.fixture(autouse=True)
def _plain_style_afterwards():
    """The palette is application-wide: put it back for the tests that follow."""
    yield
    themes.restore_application_style()


def pixels(widget: Any) -> np.ndarray:
    """(H, W) luminance 0..255 of what ``widget`` shows now."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    h, w = image.height(), image.width()
    raw = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    bgra = raw.reshape(h, image.bytesPerLine())[:, : 4 * w].reshape(h, w, 4).astype(np.float64)
    return 0.0722 * bgra[..., 0] + 0.7152 * bgra[..., 1] + 0.2126 * bgra[..., 2]


def item_rect(view: pg.GraphicsView, item: Any) -> QRect:
    rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    return rect.intersected(view.rect())


def crop(lum: np.ndarray, rect: QRect) -> np.ndarray:
    assert not rect.isEmpty()
    return lum[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]


def assert_text_reads(lum: np.ndarray, rect: QRect, theme: str, what: str) -> None:
    """The region holds text that contrasts with the chart background of ``theme``."""
    region = crop(lum, rect)
    background = np.median(region)
    if theme == "dark":
        assert background < 60, f"{what}: background {background:.0f} is not dark"
        assert region.max() > 190, f"{what}: no light text (brightest {region.max():.0f})"
    else:
        assert background > 235, f"{what}: background {background:.0f} is not light"
        assert region.min() < 70, f"{what}: no dark text (darkest {region.min():.0f})"


def check_chart(window: Any, theme: str) -> None:
    view = window.chart.plot_widget
    pi = window.chart.plot_item
    QApplication.processEvents()
    lum = pixels(view)
    assert_text_reads(lum, item_rect(view, pi.titleLabel), theme, "title")
    assert_text_reads(lum, item_rect(view, pi.getAxis("left")), theme, "left axis")
    assert_text_reads(lum, item_rect(view, pi.getAxis("bottom")), theme, "bottom axis")
    legend_label = window.chart.legend.items[0][1]
    assert_text_reads(lum, item_rect(view, legend_label), theme, "legend")
    # An empty spot of the plot: above the bars, between two classes.
    vb = pi.getViewBox()
    spot = view.mapFromScene(vb.mapViewToScene(pg.Point(0.5, 0.97)))
    value = lum[spot.y(), spot.x()]
    assert (value < 50) if theme == "dark" else (value > 245), f"plot background {value:.0f}"


def bar_colours(window: Any) -> list[str]:
    chart = window.chart
    return [
        item.opts["brush"].color().name()
        for item in (chart.bars, chart.argmax_bar, chart.target_bar)
    ]


def test_dark_and_back_to_light(window, qtbot):
    check_chart(window, "light")
    colours = bar_colours(window)
    app_palette = QApplication.palette()

    window.sessions.theme_actions["dark"].trigger()
    assert window.sessions.theme_actions["dark"].isChecked()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    check_chart(window, "dark")
    assert (
        bar_colours(window)
        == colours
        == [style.BAR.lower(), style.ARGMAX.lower(), style.TARGET.lower()]
    )

    # The chart re-sets its title and labels on every update: they must stay light.
    slider = find(window, QSlider, "temperatureSlider")
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.session.temperature < 1.0, timeout=WAIT_MS)
    assert "T = 0.891" in window.chart.plot_item.titleLabel.text
    check_chart(window, "dark")
    for label in window.chart.value_labels:
        if label.isVisible():
            assert label.color.lightness() > 180 or label.color.name() == "#ffffff"

    # Every other chart of the window is dark too.
    for index in (TAB_OVERFLOW, TAB_LOSS, TAB_BATCH):
        window.tabs.setCurrentIndex(index)
    for view in window.findChildren(pg.GraphicsView):
        assert view.backgroundBrush().color().lightness() < 50, view.objectName()
        axes = [i for i in view.scene().items() if isinstance(i, pg.AxisItem) and i.isVisible()]
        assert axes, view.objectName()
        for axis in axes:
            assert axis.textPen().color().lightness() > 140, view.objectName()

    window.sessions.theme_actions["light"].trigger()
    check_chart(window, "light")
    assert QApplication.palette().color(QPalette.ColorRole.Window) == app_palette.color(
        QPalette.ColorRole.Window
    )
    for view in window.findChildren(pg.GraphicsView):
        assert view.backgroundBrush().color().name() == "#ffffff", view.objectName()
    assert bar_colours(window) == colours


def text_colour(view: QTableView, row: int, column: int) -> tuple[Any, Any]:
    """What the view's delegate paints a cell with: (text colour, background colour or None)."""
    index: QModelIndex = view.model().index(row, column)
    option = QStyleOptionViewItem()
    option.initFrom(view)
    view.itemDelegate().initStyleOption(option, index)
    background = index.data(Qt.ItemDataRole.BackgroundRole)
    return option.palette.color(QPalette.ColorRole.Text), background


def test_table_text_stays_readable_in_dark(window, qtbot, tmp_path):
    window.session.update(dtype="float16")
    window.session.set_vector([1000.0, 0.0, 1.0])  # the naive exp overflows in float16
    data = np.array([[1.0, np.inf], [0.5, 0.25]])
    np.save(tmp_path / "b.npy", data)
    window.open_path(tmp_path / "b.npy")
    qtbot.waitUntil(lambda: window.session.batch_analysis is not None, timeout=WAIT_MS)
    window.sessions.set_theme("dark")
    QApplication.processEvents()  # palette changes reach the widgets as events

    def contrast_ok(view: QTableView, row: int, column: int) -> None:
        text, background = text_colour(view, row, column)
        base = (
            QColor(background)
            if background is not None
            else view.palette().color(QPalette.ColorRole.Base)
        )
        assert abs(text.lightness() - base.lightness()) > 110, (
            f"{view.objectName()} ({row}, {column}): text {text.name()} on {base.name()}"
        )

    overflow = find(window, QTableView, "overflowTable")
    model = overflow.model()
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            contrast_ok(overflow, row, column)
    batch = find(window, QTableView, "batchRowTable")
    for row in range(batch.model().rowCount()):
        for column in range(batch.model().columnCount()):
            contrast_ok(batch, row, column)
    steps = find(window, QTableView, "stepsTableView")
    for row in range(steps.model().rowCount()):
        contrast_ok(steps, row, 1)


def test_the_choice_is_remembered_for_the_next_window(window, qtbot):
    window.sessions.set_theme("dark")
    assert Settings().theme == "dark"
    second = build_window(qtbot)
    assert second.sessions.theme_actions["dark"].isChecked()
    check_chart(second, "dark")
    second.sessions.set_theme("system")
    assert Settings().theme == "system"


def test_follow_system_tracks_the_os(window, qtbot, monkeypatch):
    assert window.sessions.theme.choice == "system"
    monkeypatch.setattr(themes, "system_scheme", lambda: "dark")
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    check_chart(window, "dark")
    # An explicit choice no longer follows the OS.
    window.sessions.set_theme("light")
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    check_chart(window, "light")


def test_colour_tables_go_back_and_forth():
    for colour in ("#222222", "#000000", "#555555", "#c62828"):
        dark = themes.map_text(colour, "dark")
        assert dark is not None and dark.lightness() > 150
        assert themes.map_text(dark, "light").name() == colour
    assert themes.map_text(style.ARGMAX, "dark") is None  # highlight colours read on both
    assert themes.map_fill("#ffffff", "dark").lightness() < 40
    with pytest.raises(ValueError):
        themes.resolve("sepia")
