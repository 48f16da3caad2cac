"""The first frame: the example's bars and numbers against torch, as they are drawn."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PySide6.QtGui import QColor, QImage

from softmax_lab.app.example import SEED_LOGITS, SEED_TARGET, default_names
from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.first_frame import (
    LEFT_COLUMN,
    LOADING_TEXT,
    FirstFrame,
    Picture,
    chart_svg,
    plot_box,
    probabilities,
)

SVG = "{http://www.w3.org/2000/svg}"
NAMES = default_names(len(SEED_LOGITS))


def torch_probabilities(logits) -> np.ndarray:
    return torch.softmax(torch.tensor(logits, dtype=torch.float64), dim=0).numpy()


def build(qtbot, logits=SEED_LOGITS, note: str = "") -> FirstFrame:
    frame = FirstFrame(Picture(logits, NAMES, "p = softmax(x / T)", note, 0, SEED_TARGET))
    qtbot.addWidget(frame)
    frame.show()
    qtbot.waitExposed(frame)
    return frame


@pytest.mark.parametrize(
    "logits",
    [SEED_LOGITS, (0.0,), (1000.0, -1000.0, 0.0), (-3.5, -3.5, -3.5, 7.25), tuple(np.linspace(-50, 50, 40))],
)
def test_probabilities_match_torch_in_float64(logits) -> None:
    np.testing.assert_allclose(probabilities(logits), torch_probabilities(logits), rtol=1e-13, atol=1e-300)


def test_the_tutorial_numbers_are_drawn_above_the_bars() -> None:
    svg = ET.fromstring(chart_svg(900, 600, probabilities(SEED_LOGITS), NAMES, "title"))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    for p in torch_probabilities(SEED_LOGITS):
        assert f"{p:.3g}" in texts  # 0.659, 0.242, 0.0986: the tutorial's softmax
    assert all(name in texts for name in NAMES)


def test_bar_heights_are_the_probabilities_on_a_fixed_axis() -> None:
    width, height = 700, 500
    svg = ET.fromstring(chart_svg(width, height, probabilities(SEED_LOGITS), NAMES, "t", argmax=0))
    _, top, _, bottom = plot_box(width, height)
    bars = sorted(
        (r for r in svg.iter(f"{SVG}rect") if "data-class" in r.attrib),
        key=lambda r: int(r.attrib["data-class"]),
    )
    heights = [float(r.attrib["height"]) / (bottom - top) for r in bars]
    np.testing.assert_allclose(heights, torch_probabilities(SEED_LOGITS), atol=2e-5)
    for r in bars:  # every bar stands on the axis
        assert float(r.attrib["y"]) + float(r.attrib["height"]) == pytest.approx(bottom, abs=0.01)
    assert [r.attrib["fill"] for r in bars] == [style.ARGMAX, style.BAR, style.BAR]


def test_a_class_name_cannot_inject_markup() -> None:
    svg = chart_svg(400, 300, [0.5, 0.5], ("<b>&", "ok"), "t")
    assert "<b>&" not in svg
    assert [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")].count("<b>&") == 1


def bar_heights_in_pixels(image: QImage) -> dict[int, int]:
    """Height in pixels of the tallest run of a bar colour in each column."""
    colours = {QColor(style.BAR).rgb(), QColor(style.ARGMAX).rgb(), QColor(style.TARGET).rgb()}
    heights: dict[int, int] = {}
    for x in range(image.width()):
        count = sum(image.pixel(x, y) in colours for y in range(image.height()))
        if count:
            heights[x] = count
    return heights


def test_the_shown_bars_have_the_heights_of_torch_probabilities(qtbot) -> None:
    frame = build(qtbot)
    width, height = LEFT_COLUMN + 600, 450
    frame.drawing.setFixedSize(width, height)
    qtbot.waitUntil(lambda: frame.drawing.size().width() == width)
    image = frame.drawing.grab().toImage()
    left, top, right, bottom = plot_box(600, 450)  # the chart's own box, right of the rows
    columns = bar_heights_in_pixels(image)
    slot = (right - left) / 3
    for i, p in enumerate(torch_probabilities(SEED_LOGITS)):
        centre = int(LEFT_COLUMN + left + (i + 0.5) * slot)
        assert columns[centre] == pytest.approx(p * (bottom - top), abs=2), i
    assert not any(x < LEFT_COLUMN for x in columns)  # no bar drawn over the logit rows


def svg_texts(frame: FirstFrame) -> list[str | None]:
    return [t.text for t in ET.fromstring(frame.drawing.svg()).iter(f"{SVG}text")]


def test_the_frame_shows_the_logits_and_says_it_is_loading(qtbot) -> None:
    frame = build(qtbot)
    texts = svg_texts(frame)
    rows = texts[texts.index("class") : texts.index("logit") + 7]
    assert rows == ["class", "logit", "class 0", "2.0", "class 1", "1.0", "class 2", "0.1"]
    assert frame.statusBar().currentMessage() == LOADING_TEXT
    assert frame.statusBar().isVisible()
    menus = [a.text() for a in frame.menuBar().actions()]
    assert menus == ["&File", "&Edit", "&View", "&Help"]
    assert not any(a.isEnabled() for a in frame.menuBar().actions())


def test_with_a_note_no_example_is_drawn(qtbot) -> None:
    frame = build(qtbot, logits=None, note="Restoring the last session…")
    texts = svg_texts(frame)
    assert "Restoring the last session…" in texts
    assert "class 0" not in texts and "0.659" not in texts
    assert not bar_heights_in_pixels(frame.drawing.grab().toImage())


def test_contract(qtbot) -> None:
    frame = build(qtbot)
    assert frame.objectName() == "firstFrame"
    hint = frame.drawing.minimumSizeHint()
    assert hint.width() <= LEFT_COLUMN + 400 and hint.height() <= 300
    image = frame.grab().toImage()
    assert not image.isNull() and image.width() > 0


def test_the_session_starts_from_the_example_the_frame_draws() -> None:
    session = Session()
    np.testing.assert_array_equal(session.logits, np.array(SEED_LOGITS))
    assert session.class_names == NAMES and session.target == SEED_TARGET
