"""Fonts for a projector: scale every font under a widget, pyqtgraph's text included.

Widgets in this project set their own point sizes (a 13 pt table, a 30 pt loss,
a 12 pt axis tick font) and some set them again on every update. For presenter
mode all of them must be larger, and stay larger: :class:`ProjectorFonts`
scales widget fonts once and again whenever a widget picks a new font (an event
filter sees the FontChange), and :meth:`ProjectorFonts.restyle_plots` brings the
text pyqtgraph draws itself (axis ticks and labels, plot titles, legends,
TextItems) to scale after every change that may reset it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import (
    QEvent,
    QIdentityProxyModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QTableView, QWidget

MIN_GAIN = 1.15
"""Whatever the limits, a scaled font is at least this much larger than the widget's own."""
INK = "#000000"
"""Text colour of everything restyled: black on white reads best on a projector."""



def _points(css: Any, default: float) -> float:
    """'13pt' -> 13.0, '16px' -> 12.0 (at 96 dpi); anything else -> ``default``."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(pt|px)\s*", str(css)) if css is not None else None
    if not match:
        return default
    value = float(match.group(1))
    return value if match.group(2) == "pt" else value * 0.75


class ScaledFontModel(QIdentityProxyModel):
    """A table model whose own fonts (bold cells, headers) follow the view's font size.

    The overflow table's model returns a fixed 13 pt bold font for its headers
    and failed cells; in presenter mode those must be as large as the rest.
    """

    def __init__(self, source: Any, view: QTableView) -> None:
        super().__init__(view)
        self._view = view
        self.setSourceModel(source)

    def _sized(self, value: Any) -> Any:
        if isinstance(value, QFont):
            font = QFont(value)
            font.setPointSizeF(self._view.font().pointSizeF())
            return font
        return value

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        value = super().data(index, role)
        return self._sized(value) if role == Qt.ItemDataRole.FontRole else value

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        value = super().headerData(section, orientation, role)
        return self._sized(value) if role == Qt.ItemDataRole.FontRole else value


class ProjectorFonts(QObject):
    """Keeps every font under a root widget at ``factor`` times what its widget asks for.

    Widget fonts are scaled once and again whenever a widget sets a new font
    (the loss panel does on every update): an event filter sees the FontChange
    and rescales from the new size. Sizes stay within ``min_pt .. max_pt``.
    pyqtgraph draws its own text (axis ticks and labels, titles, legends,
    TextItems); :meth:`restyle_plots` brings those to scale and is called after
    every change that may reset them.
    """

    def __init__(self, root: QWidget, factor: float, min_pt: float, max_pt: float) -> None:
        super().__init__(root)
        self.root = root
        self.factor = factor
        self.min_pt = min_pt
        self.max_pt = max_pt
        self._busy = False
        self._default_pt = QApplication.font().pointSizeF()
        self._watched: set[int] = set()

    def target(self, base: float, factor: float | None = None) -> float:
        """The presenter size for a font of ``base`` points."""
        scaled = base * (self.factor if factor is None else factor)
        larger = base * MIN_GAIN  # whatever the limits, larger than the window's
        return round(min(max(scaled, self.min_pt, larger), max(self.max_pt, larger)), 1)

    # -- widgets ------------------------------------------------------------------------

    def apply(self, widget: QWidget) -> None:
        """Scale ``widget`` and everything under it, and keep it scaled."""
        widgets = [widget, *widget.findChildren(QWidget)]
        # Read every size before writing any: a parent's new font must not be
        # mistaken for a child's own.
        sizes = [w.font().pointSizeF() for w in widgets]
        self._busy = True
        try:
            for w, size in zip(widgets, sizes, strict=True):
                if size > 0:
                    w.setProperty("presenterBaseSize", float(size))
                    self._set(w, self.target(size))
                if id(w) not in self._watched:
                    self._watched.add(id(w))
                    w.installEventFilter(self)
        finally:
            self._busy = False

    def fix(self, widget: QWidget, points: float) -> None:
        """Give ``widget`` ``points`` (whatever it asks for later is scaled as usual).

        Never less than :data:`MIN_GAIN` times the size the widget had before
        presenter mode touched it: on a small screen the presenter is still larger.
        """
        widget.setProperty("presenterFixedSize", float(points))
        self._busy = True
        try:
            self._set(widget, self._size_for(widget, widget.font().pointSizeF()))
        finally:
            self._busy = False

    def _size_for(self, widget: QWidget, base: float) -> float:
        fixed = widget.property("presenterFixedSize")
        if isinstance(fixed, float):
            original = widget.property("presenterBaseSize")
            floor = original * MIN_GAIN if isinstance(original, float) else 0.0
            return round(max(fixed, floor), 1)
        return self.target(base)

    def _set(self, widget: QWidget, points: float) -> None:
        font = QFont(widget.font())
        font.setPointSizeF(points)
        widget.setProperty("presenterPointSize", points)
        widget.setFont(font)
        if isinstance(widget, QAbstractScrollArea):
            # Tables and headers paint on their viewport, with the viewport's font.
            viewport = widget.viewport()
            viewport.setProperty("presenterPointSize", points)
            viewport.setFont(font)
        if isinstance(widget, QTableView):
            # Row heights follow the font (the batch table fixes them at construction).
            height = round(QFontMetricsF(font).height() * 1.35)
            widget.verticalHeader().setDefaultSectionSize(height)
            widget.verticalHeader().setMinimumSectionSize(height)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.FontChange
            and not self._busy
            and isinstance(watched, QWidget)
        ):
            size = watched.font().pointSizeF()
            if size > 0 and size != watched.property("presenterPointSize"):
                # The widget chose a new font of its own: scale that one.
                watched.setProperty("presenterBaseSize", float(size))
                self._busy = True
                try:
                    self._set(watched, self._size_for(watched, size))
                finally:
                    self._busy = False
        return False

    # -- pyqtgraph -----------------------------------------------------------------------

    def restyle_plots(self) -> None:
        """Bring the text pyqtgraph draws in every plot under the root to scale."""
        for view in self.root.findChildren(pg.GraphicsView):
            for item in view.scene().items():
                if isinstance(item, pg.AxisItem):
                    self._restyle_axis(item)
                elif isinstance(item, pg.PlotItem):
                    self._restyle_title(item)
                elif isinstance(item, pg.LegendItem):
                    self._restyle_legend(item)
                elif isinstance(item, pg.TextItem):
                    self._restyle_text(item)

    def _scaled(self, item: Any, key: str, current: float) -> float | None:
        """The size ``item`` should get, or None when it is already at scale."""
        done = getattr(item, f"_presenter_{key}", None)
        if done is not None and abs(current - done) < 0.05:
            return None
        target = self.target(current, getattr(item, "presenter_factor", None))
        setattr(item, f"_presenter_{key}", target)
        return target

    def _restyle_axis(self, axis: pg.AxisItem) -> None:
        tick_font = axis.style.get("tickFont")
        current = tick_font.pointSizeF() if tick_font is not None else self._default_pt
        target = self._scaled(axis, "tick", current)
        if target is not None:
            font = QFont(tick_font) if tick_font is not None else QFont()
            font.setPointSizeF(target)
            axis.setStyle(tickFont=font, tickTextOffset=max(6, round(6 * self.factor)))
            if axis.orientation in ("bottom", "top"):
                # A whole line of the larger text, descenders ("dog") included: the
                # measured height pyqtgraph expands to leaves them outside the axis.
                line = math.ceil(QFontMetricsF(font).height())
                axis.setStyle(autoExpandTextSpace=False, tickTextHeight=line)
            axis.setPen(pg.mkPen(INK, width=2))
            axis.setTextPen(pg.mkPen(INK))
        if axis.labelText:
            current = _points(axis.labelStyle.get("font-size"), self._default_pt)
            target = self._scaled(axis, "label", current)
            if target is not None:
                label_style = dict(axis.labelStyle, **{"font-size": f"{target}pt", "color": INK})
                axis.setLabel(
                    axis.labelText,
                    axis.labelUnits or None,
                    axis.labelUnitPrefix or None,
                    **label_style,
                )

    def _restyle_title(self, plot: pg.PlotItem) -> None:
        if not getattr(plot, "_presenter_margins", False):
            # Descenders of the larger tick labels ("dog") need room below the bottom axis.
            plot._presenter_margins = True
            plot.layout.setContentsMargins(2, 2, 2, round(10 * self.factor))
        label = plot.titleLabel
        if not label.text:
            return
        # The widget's own title, or the one we wrapped from it last time.
        if label.text != getattr(label, "_presenter_text", None):
            label._presenter_source = label.text
        source: str = label._presenter_source
        current = _points(label.opts.get("size"), self._default_pt)
        views = plot.scene().views() if plot.scene() is not None else []
        if not views:
            return
        # The room the title has: the view's width beside the left axis (not the
        # plot item's, which a too-wide title would itself have stretched).
        width = views[0].viewport().width() - plot.getAxis("left").width()
        done = getattr(label, "_presenter_size", None)
        fitted = getattr(label, "_presenter_fit", None)
        same_size = done is not None and abs(current - done) < 0.05
        if same_size and fitted == (source, width):
            return
        base = label._presenter_base if same_size else current
        # As large as the factor asks, never wider than the plot (a clipped title
        # hides T and the dtype, which the room needs to read): on one line, else
        # on two (split after the series name), else smaller.
        head, _, rest = source.partition("·")
        layouts = [[source]] + ([[head.strip(), rest.strip()]] if rest else [])
        target = self.target(base)
        smallest = min(base, 0.65 * self.min_pt)
        lines = layouts[-1]
        font = QFont()
        while width > 0:
            font.setPointSizeF(target)
            metrics = QFontMetricsF(font)
            fits = [
                layout
                for layout in layouts
                if max(metrics.horizontalAdvance(line) for line in layout) <= 0.96 * width
            ]
            if fits or target <= smallest:
                lines = fits[0] if fits else layouts[-1]
                break
            target -= 1.0
        target = round(max(target, smallest), 1)
        text = "<br>".join(lines)  # the title is HTML to pyqtgraph, as the widget set it
        label._presenter_base = base
        label._presenter_size = target
        label._presenter_fit = (source, width)
        label._presenter_text = text
        label.setText(text, size=f"{target}pt", color=INK)
        # LabelItem makes its text's width its minimum width; a plot narrower than a
        # long title would then be pushed wider than its view and cut at the right.
        label.setMinimumWidth(0)
        # PlotItem.setTitle fixes the title row at 30 px: a larger or two-line title
        # would be drawn over the plot.
        height = math.ceil(label.item.boundingRect().height())
        label.setMaximumHeight(height)
        plot.layout.setRowFixedHeight(0, height)

    def _restyle_legend(self, legend: pg.LegendItem) -> None:
        current = _points(legend.opts.get("labelTextSize"), self._default_pt)
        target = self._scaled(legend, "size", current)
        if target is not None:
            # setLabelTextSize only records the size: draw each label again with it.
            legend.setLabelTextSize(f"{target}pt")
            for _sample, label in legend.items:
                label.setText(label.text, size=f"{target}pt", color=INK)
        # The legend sizes its box from its labels only when items come and go: after
        # larger text (ours, or a label the chart re-texted) it must measure again.
        legend.layout.activate()
        legend.updateSize()

    def _restyle_text(self, item: pg.TextItem) -> None:
        font = item.textItem.font()
        current = font.pointSizeF() if font.pointSizeF() > 0 else self._default_pt
        target = self._scaled(item, "size", current)
        if target is not None:
            item._presenter_full = target  # before any fitting to a bar's width
            font = QFont(font)
            font.setPointSizeF(target)
            item.setFont(font)
