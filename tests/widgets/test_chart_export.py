"""widgets/chart_export.py: every view to PNG, SVG and PDF, read back and measured.

The session is computed by the real controller; the pictures are read back
with independent readers (tests/export_readback.py: struct for PNG chunks,
ElementTree + QSvgRenderer for SVG, the PDF's own page objects) and the bars
are measured in pixels and compared with torch.softmax of the same logits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import chart_export
from softmax_lab.widgets.chart_export import ChartOptions, render_view
from tests import export_readback as rb
from tests.qt_helpers import top_level_widgets

LOGITS = [2.0, 1.0, 0.1]
ALL_FORMATS = ("png", "svg", "pdf")


def softmax_ref(logits, temperature: float = 1.0, dim: int = -1) -> np.ndarray:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(x / temperature, dim=dim).numpy()


def log_softmax_ref(logits, temperature: float = 1.0) -> np.ndarray:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.log_softmax(x / temperature, dim=-1).numpy()


def one_hot_batch(rows: int, classes: int) -> np.ndarray:
    """Row i is sure of class i % classes: p ≈ 1 there, ≈ 0 elsewhere."""
    data = np.zeros((rows, classes))
    data[np.arange(rows), np.arange(rows) % classes] = 12.0
    return data


@pytest.fixture
def computed() -> Session:
    """A session over the tutorial vector, no target, computed by the real controller, with a batch."""
    session = Session()
    Controller(session).start()
    with session.updating():
        session.target = None
        session.batch = LoadedBatch(one_hot_batch(5, 4), None)
    assert session.analysis is not None and session.batch_analysis is not None
    return session


def measured_bars(rgb: np.ndarray) -> tuple[list, list]:
    """(argmax bars, probability bars) on the common baseline."""
    return rb.bars(rb.colour_mask(rgb, rb.ARGMAX)), rb.bars(rb.colour_mask(rgb, rb.BAR))


def check_probability_bars(rgb: np.ndarray, logits) -> None:
    """Three bars, left to right, heights in the ratio of torch.softmax, argmax highlighted."""
    p = softmax_ref(logits)
    argmax, plain = measured_bars(rgb)
    assert len(argmax) == 1 and len(plain) == 2, (argmax, plain)
    assert argmax[0][1] < plain[0][0] < plain[1][0], "bars out of class order"
    base = argmax[0][3]
    assert all(abs(b[3] - base) <= 2 for b in plain), "bars do not share the x axis"
    heights = np.array([argmax[0][3] - argmax[0][2], *(b[3] - b[2] for b in plain)], float)
    np.testing.assert_allclose(heights / heights[0], p / p[0], atol=0.02)


# -- each view, each format -------------------------------------------------------------


# The five views of the issue go through every format from the window
# (tests/app/test_export_actions.py) and the command line (tests/test_cli_chart.py);
# here: the two extra views, and the page is never left open.
@pytest.mark.parametrize("view", ["logits", "gradient"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_extra_views_export_in_every_format(computed, tmp_path, view, fmt):
    computed.target = 0  # the gradient needs a target
    Controller(computed).start()
    options = ChartOptions(view=view, fmt=fmt, width=900, height=600, dpi=150)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(render_view(computed, options))
    rb.check_file(path, fmt, (900, 600), 150)
    assert not [w for w in top_level_widgets() if w.isVisible()], "a page was left open"


def test_probability_png_bars_match_torch_softmax(computed):
    data = render_view(computed, ChartOptions(view="probabilities", width=1600, height=1000))
    assert rb.png_size(data) == (1600, 1000)
    assert abs(rb.png_dpi(data)[0] - chart_export.DEFAULT_DPI) < rb.DPI_TOLERANCE
    rgb = rb.png_pixels(data)
    assert rb.background(rgb) == (255, 255, 255), "light theme: white background"
    check_probability_bars(rgb, LOGITS)


def test_probability_svg_renders_back_with_the_bars(computed):
    data = render_view(computed, ChartOptions(view="probabilities", fmt="svg"))
    root = rb.svg_root(data)
    assert root.get("viewBox")
    texts = rb.svg_texts(data)
    assert any("softmax" in t for t in texts), "the title is text in the SVG"
    assert "class" in texts, "the axis label is text in the SVG"
    check_probability_bars(rb.render_svg(data, 1600, 1000), LOGITS)


def test_pdf_is_one_page_of_the_requested_physical_size(computed):
    data = render_view(
        computed, ChartOptions(view="probabilities", fmt="pdf", width=1200, height=900, dpi=300)
    )
    rb.check_pdf(data)
    w, h = rb.pdf_media_box_inches(data)
    assert abs(w - 4.0) < 0.01 and abs(h - 3.0) < 0.01


def test_log_view_bar_heights_follow_log_softmax(computed):
    computed.temperature = 1.0
    rgb = rb.png_pixels(render_view(computed, ChartOptions(view="log")))
    argmax, plain = measured_bars(rgb)
    assert len(argmax) == 1 and len(plain) == 2
    tops = np.array([argmax[0][2], plain[0][2], plain[1][2]], float)
    lp = log_softmax_ref(LOGITS)
    # A linear axis: differences of bar tops are proportional to differences of log p.
    ratio = (tops[2] - tops[1]) / (tops[1] - tops[0])
    assert ratio == pytest.approx((lp[1] - lp[2]) / (lp[0] - lp[1]), rel=0.03)


def test_temperature_changes_the_exported_bars(computed):
    computed.temperature = 3.0
    Controller(computed).start()
    rgb = rb.png_pixels(render_view(computed, ChartOptions(view="probabilities")))
    p = softmax_ref(LOGITS, 3.0)
    argmax, plain = measured_bars(rgb)
    heights = np.array([argmax[0][3] - argmax[0][2], *(b[3] - b[2] for b in plain)], float)
    np.testing.assert_allclose(heights / heights[0], p / p[0], atol=0.02)


def test_gradient_view_shows_p_minus_one_hot(computed):
    computed.target = 2
    Controller(computed).start()
    rgb = rb.png_pixels(render_view(computed, ChartOptions(view="gradient")))
    grad = softmax_ref(LOGITS) - np.eye(3)[2]
    positive = rb.bars(rb.colour_mask(rgb, rb.GRADIENT_POS))
    negative = rb.bars(rb.colour_mask(rgb, rb.BAR), anchor="top")
    assert len(positive) == 2 and len(negative) == 1
    assert positive[1][1] < negative[0][0], "the target's negative bar is the rightmost"
    heights = [b[3] - b[2] for b in positive]
    assert heights[1] / heights[0] == pytest.approx(grad[1] / grad[0], abs=0.02)
    depth = negative[0][3] - negative[0][2]
    assert depth / heights[0] == pytest.approx(-grad[2] / grad[0], abs=0.03)


def test_heatmap_cells_are_bright_where_torch_says_p_is_one(computed):
    data = computed.batch.data
    expected = softmax_ref(data, dim=1) > 0.5
    for fmt in ("png", "svg"):
        blob = render_view(computed, ChartOptions(view="heatmap", fmt=fmt))
        rgb = rb.png_pixels(blob) if fmt == "png" else rb.render_svg(blob, 1600, 1000)
        dark = rb.colour_mask(rgb, rb.VIRIDIS_LOW, 30)
        # The heatmap is the widest run of columns holding viridis' dark end (the colour bar is narrow).
        columns = np.flatnonzero(dark.any(axis=0))
        runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
        run = max(runs, key=len)
        left, right = run[0], run[-1]
        rows = np.flatnonzero(dark[:, left : right + 1].any(axis=1))
        top, bottom = rows[0], rows[-1]
        n, c = expected.shape
        for i in range(n):
            for j in range(c):
                y = int(top + (i + 0.5) * (bottom - top + 1) / n)
                x = int(left + (j + 0.5) * (right - left + 1) / c)
                pixel = rgb[y, x].astype(int)
                bright = np.abs(pixel - rb.VIRIDIS_HIGH).max() < 40
                darkish = np.abs(pixel - rb.VIRIDIS_LOW).max() < 40
                assert bright == expected[i, j] and darkish == (not expected[i, j]), (
                    fmt,
                    i,
                    j,
                    pixel,
                )


def test_overflow_view_says_what_failed(computed):
    computed.set_vector([1000.0, 999.0, 998.0])
    computed.dtype = "float16"
    Controller(computed).start()
    data = render_view(computed, ChartOptions(view="overflow", fmt="svg"))
    texts = rb.svg_texts(data)
    assert "inf" in texts and "nan" in texts, "the naive column shows inf and NaN"
    p = softmax_ref([1000.0, 999.0, 998.0])
    assert f"{p[0]:.4g}" in texts or f"{np.float16(p[0]):.4g}" in texts
    pink = (0xFD, 0xEC, 0xEA)  # the background of the failed verdict and cells
    options = ChartOptions(view="overflow", dpi=96)
    failed = rb.colour_mask(rb.png_pixels(render_view(computed, options)), pink, 3).sum()
    computed.set_vector(LOGITS)
    computed.dtype = "float32"
    Controller(computed).start()
    fine = rb.colour_mask(rb.png_pixels(render_view(computed, options)), pink, 3).sum()
    assert failed > 5_000 and fine == 0


def test_steps_view_shows_every_probability(computed):
    computed.temperature = 2.0
    Controller(computed).start()
    texts = rb.svg_texts(render_view(computed, ChartOptions(view="steps", fmt="svg")))
    p = softmax_ref(LOGITS, 2.0).astype(np.float32)
    for value in p:
        assert f"{float(value):.4g}" in texts
    assert "Σ" in texts


def test_long_tables_keep_the_sum_row_and_say_what_is_left_out(computed):
    rng = np.random.default_rng(4)
    computed.set_vector(rng.normal(size=60))
    Controller(computed).start()
    texts = rb.svg_texts(render_view(computed, ChartOptions(view="steps", fmt="svg")))
    kept = chart_export.MAX_TABLE_ROWS - 1
    assert f"class {kept - 1}" in texts and f"class {kept}" not in texts
    assert "class 59" not in texts and "Σ" in texts
    assert any("left out" in t for t in texts)


def test_table_views_default_to_their_content_size(computed):
    data = render_view(computed, ChartOptions(view="steps", dpi=96))
    w, h = rb.png_size(data)
    assert 300 < w < 2000 and 80 < h < 600, (w, h)
    rgb = rb.png_pixels(data)
    assert rb.background(rgb) == (255, 255, 255)
    # Rendered at twice the DPI, the same content is twice as large.
    w2, h2 = rb.png_size(render_view(computed, ChartOptions(view="steps", dpi=192)))
    assert abs(w2 - 2 * w) <= 2 and abs(h2 - 2 * h) <= 2


def test_dark_theme_has_a_dark_background_and_the_same_bars(computed):
    rgb = rb.png_pixels(render_view(computed, ChartOptions(view="probabilities", theme="dark")))
    bg = rb.background(rgb)
    assert max(bg) < 60, bg
    check_probability_bars(rgb, LOGITS)
    svg = render_view(computed, ChartOptions(view="steps", theme="dark", fmt="svg"))
    dark_rgb = rb.render_svg(svg, 800, 300)
    assert max(rb.background(dark_rgb)) < 60


@pytest.mark.parametrize(("size", "dpi"), [((333, 222), 300.0), ((1200, 800), 72.0)])
def test_any_size_and_dpi_give_that_png_with_the_bars_inside(computed, size, dpi):
    data = render_view(
        computed, ChartOptions(view="probabilities", width=size[0], height=size[1], dpi=dpi)
    )
    assert rb.png_size(data) == size
    assert rb.png_dpi(data)[0] == pytest.approx(dpi, abs=rb.DPI_TOLERANCE)
    argmax, plain = measured_bars(rb.png_pixels(data))
    assert len(argmax) == 1 and len(plain) == 2


def test_one_side_given_keeps_the_aspect_ratio(computed):
    assert rb.png_size(render_view(computed, ChartOptions(width=800))) == (800, 500)
    assert rb.png_size(render_view(computed, ChartOptions(height=400))) == (640, 400)


def test_large_vocabulary_exports_the_envelope(computed):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=50_000)
    logits[31_337] = 12.0
    computed.set_vector(logits)
    Controller(computed).start()
    rgb = rb.png_pixels(render_view(computed, ChartOptions(view="probabilities")))
    argmax = rb.colour_mask(rgb, rb.ARGMAX)
    assert argmax.sum() > 100, "the argmax marker is visible among 50,000 classes"
    (bar,) = rb.bars(argmax, min_width=1)  # the highlight on the axis, not the legend swatch
    # It sits at 31,337 / 50,000 of the way along the x axis (the plot spans most of the image).
    assert 0.55 < (bar[0] + bar[1]) / 2 / rgb.shape[1] < 0.72


# -- errors -------------------------------------------------------------------------------


def test_unknown_view_format_theme_and_sizes_are_refused(computed):
    for options in (
        ChartOptions(view="pie"),
        ChartOptions(fmt="gif"),
        ChartOptions(theme="blue"),
        ChartOptions(width=5),
        ChartOptions(height=100_000),
        ChartOptions(dpi=math.nan),
        ChartOptions(dpi=5),
    ):
        with pytest.raises(InvalidInputError):
            render_view(computed, options)


def test_heatmap_without_a_batch_and_gradient_without_a_target_say_why():
    session = Session()
    Controller(session).start()
    session.target = None
    with pytest.raises(InvalidInputError, match="needs a batch"):
        render_view(session, ChartOptions(view="heatmap"))
    with pytest.raises(InvalidInputError, match="needs a target"):
        render_view(session, ChartOptions(view="gradient"))


def test_format_for_path():
    assert chart_export.format_for_path("a/b.PNG") == "png"
    assert chart_export.format_for_path("x.svg") == "svg"
    assert chart_export.format_for_path("x.pdf") == "pdf"
    with pytest.raises(InvalidInputError, match=r"\.png, \.svg or \.pdf"):
        chart_export.format_for_path("x.jpeg")


def test_export_leaves_the_session_untouched(computed):
    before = {name: getattr(computed, name) for name in ("chart_view", "temperature", "target")}
    calls = []
    computed.changed.connect(calls.append)
    render_view(computed, ChartOptions(view="log"))
    assert calls == []
    assert {name: getattr(computed, name) for name in before} == before


def test_render_widget_paints_a_live_widget(qtbot, computed):
    from softmax_lab.widgets.probability_chart import ProbabilityChart

    chart = ProbabilityChart(computed)
    qtbot.addWidget(chart)
    chart.resize(640, 400)
    chart.show()
    qtbot.waitExposed(chart)
    data = chart_export.render_widget(
        chart.plot_widget, ChartOptions(width=1280, height=900, dpi=192)
    )
    assert rb.png_size(data) == (1280, 900)
    argmax, plain = measured_bars(rb.png_pixels(data))
    assert len(argmax) == 1 and len(plain) == 2
    svg = chart_export.render_widget(chart.plot_widget, ChartOptions(fmt="svg"))
    rb.svg_root(svg)
    rb.check_pdf(chart_export.render_widget(chart.plot_widget, ChartOptions(fmt="pdf")))


def test_a_table_on_a_larger_picture_is_centred_not_spread(computed):
    rgb = rb.png_pixels(
        render_view(computed, ChartOptions(view="steps", width=1600, height=900, dpi=150))
    )
    ink = rgb.astype(int).sum(axis=2) < 600  # anything clearly darker than white
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    assert abs(top - (900 - 1 - bottom)) < 40 and abs(left - (1600 - 1 - right)) < 40
    assert bottom - top < 500, "caption and table stay together"


def test_exports_are_light_even_when_the_application_is_dark(computed, qapp):
    from PySide6.QtGui import QColor, QPalette

    dark = QPalette(qapp.palette())
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base, QPalette.ColorRole.Button):
        dark.setColor(role, QColor("#202020"))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
        dark.setColor(role, QColor("#ffd700"))  # a text colour no light export uses
    saved = QPalette(qapp.palette())
    qapp.setPalette(dark)
    try:
        rgb = rb.png_pixels(render_view(computed, ChartOptions(view="steps", dpi=96)))
    finally:
        qapp.setPalette(saved)
    assert rb.background(rgb) == (255, 255, 255)
    text = rb.colour_mask(rgb, (0x22, 0x22, 0x22), 40).sum()
    app_text = rb.colour_mask(rgb, (0xFF, 0xD7, 0x00), 40).sum()
    assert text > 500 and app_text == 0, "dark text on white, as a slide wants"
