"""Light and dark themes: the Qt palette and every pyqtgraph chart in a window.

The views are written for a light background (widgets/style.py: white plots,
``#222222`` text). Rather than teach every view about themes, the dark theme
is applied from the outside, generically:

- Qt widgets get a dark Fusion palette; labels whose style sheet sets only a
  text colour meant for a light window (``color: #222222``) get the matching
  light colour; item views get a delegate that keeps cell text readable
  against the cell's own background.
- Every chart (each :class:`pyqtgraph.GraphicsView` under the window) gets a
  dark background, light axes, tick text, titles, legend and text items.
  Bar and highlight colours are kept: they were chosen to read on both.

Views re-set some colours when they update (a new title, a new label), so the
window re-applies the dark colours after each session change and after each
chart resize or pan; in the light theme that costs nothing. Colours are
mapped through fixed tables (and back), so switching is reversible.

``"system"`` follows the OS (:meth:`QStyleHints.colorScheme`, Qt >= 6.5) and
follows it live when it changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QStyledItemDelegate,
    QStyleFactory,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

THEMES: tuple[str, ...] = ("system", "light", "dark")

# Chart colours of each theme.
PLOT_BACKGROUND = {"light": "#ffffff", "dark": "#1e1e1e"}
PLOT_TEXT = {"light": "#222222", "dark": "#e6e6e6"}

# Light-theme colours the views use on the window or plot background -> what
# reads on the dark one. Each table is one-to-one, so it can be inverted to go
# back. Bar colours (Okabe-Ito) are not here: they read on both.
_DARK_TEXT = {
    "#222222": "#e6e6e6",  # style.TEXT
    "#000000": "#dcdcdc",  # "k": axes
    "#555555": "#b4b4b4",  # captions
    "#666666": "#aaaaaa",
    "#c62828": "#ff8a80",  # style.BAD as text or a line
    "#2e7d32": "#81c784",  # the "right" green of the loss panel
    "#0072b2": "#56b4e9",  # style.BAR as text or a line (bars keep it): Okabe-Ito sky blue
}
_DARK_FILL = {
    "#ffffff": "#1e1e1e",  # plot backgrounds, the legend box
    "#e8f5e9": "#1f3b25",  # style.OK_BACKGROUND (the overflow gauge's safe region)
    "#fdecea": "#4a2323",  # style.BAD_BACKGROUND
}
_TABLES = {
    "dark": (_DARK_TEXT, _DARK_FILL),
    "light": ({v: k for k, v in _DARK_TEXT.items()}, {v: k for k, v in _DARK_FILL.items()}),
}
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
_ORIGINAL_STYLE_PROPERTY = "softmaxLabThemeOriginalStyle"
_STYLED_BACKGROUND_PROPERTY = "softmaxLabThemeStyledBackground"


def system_scheme() -> str:
    """``"dark"`` when the OS asks for dark colours, else ``"light"`` (also when unknown)."""
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else None
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def resolve(choice: str) -> str:
    """The theme a choice means now: ``"system"`` -> the OS's, else the choice itself."""
    if choice not in THEMES:
        raise ValueError(f"unknown theme {choice!r}; choose one of {', '.join(THEMES)}")
    return system_scheme() if choice == "system" else choice


# ---------------------------------------------------------------------------------
# Colour mapping


def _map(colour: Any, table: dict[str, str]) -> QColor | None:
    """``colour`` through ``table`` (alpha kept), or None when it is not in the table."""
    if colour is None:
        return None
    c = QColor(colour) if not isinstance(colour, QColor) else colour
    if not c.isValid():
        return None
    mapped = table.get(c.name().lower())
    if mapped is None:
        return None
    out = QColor(mapped)
    out.setAlpha(c.alpha())
    return out


def map_text(colour: Any, theme: str) -> QColor | None:
    """A text/line colour meant for the other theme, mapped to ``theme`` (None: leave it)."""
    return _map(colour, _TABLES[theme][0])


def map_fill(colour: Any, theme: str) -> QColor | None:
    """A background colour meant for the other theme, mapped to ``theme`` (None: leave it)."""
    return _map(colour, _TABLES[theme][1])


def _pen_with(pen: QPen, colour: QColor) -> QPen:
    out = QPen(pen)
    out.setColor(colour)
    return out


# ---------------------------------------------------------------------------------
# Application palette


def dark_palette() -> QPalette:
    """A dark Fusion palette with readable disabled text and a visible selection."""
    p = QPalette()
    window, base, text = QColor("#2b2b2b"), QColor("#1e1e1e"), QColor("#e6e6e6")
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor("#262626"),
        QPalette.ColorRole.ToolTipBase: QColor("#3a3a3a"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor("#8c8c8c"),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor("#353535"),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ff8a80"),
        QPalette.ColorRole.Light: QColor("#4a4a4a"),
        QPalette.ColorRole.Midlight: QColor("#3e3e3e"),
        QPalette.ColorRole.Mid: QColor("#2f2f2f"),
        QPalette.ColorRole.Dark: QColor("#1a1a1a"),
        QPalette.ColorRole.Shadow: QColor("#0d0d0d"),
        QPalette.ColorRole.Highlight: QColor("#2f6fb3"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#6cb4ff"),
        QPalette.ColorRole.LinkVisited: QColor("#c39bff"),
    }
    for role, colour in roles.items():
        p.setColor(QPalette.ColorGroup.All, role, colour)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7d7d7d"))
    return p


def _palette_is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def apply_palette(theme: str) -> None:
    """Give the application ``theme``'s palette.

    When the platform's own palette already matches (the OS is dark and so is
    the theme, or both are light), the platform's style and palette are kept
    (restored, if an earlier call replaced them); otherwise Fusion with an
    explicit palette is used, which looks the same everywhere.
    """
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    original = app.property(_ORIGINAL_STYLE_PROPERTY)
    if original is None:
        # First change: remember the platform's style to come back to it.
        app.setProperty(_ORIGINAL_STYLE_PROPERTY, app.style().name())
        original = app.style().name()
    natural = system_scheme() == theme
    if natural:
        if app.style().name() != original:
            app.setStyle(original)  # also resets the palette to the style's own
        if _palette_is_dark(app.palette()) == (theme == "dark"):
            return
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    if theme == "dark":
        app.setPalette(dark_palette())
    else:
        fusion = QStyleFactory.create("Fusion")
        app.setPalette(fusion.standardPalette())


def restore_application_style() -> None:
    """Put back the style and palette the application had before any theme (tests, shutdown)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    original = app.property(_ORIGINAL_STYLE_PROPERTY)
    if original is None:
        return
    app.setStyle(str(original))
    app.setPalette(app.style().standardPalette())
    app.setProperty(_ORIGINAL_STYLE_PROPERTY, None)


# ---------------------------------------------------------------------------------
# Charts


def retint_chart(view: pg.GraphicsView, theme: str) -> None:
    """Re-colour one chart (PlotWidget, GraphicsLayoutWidget, ...) for ``theme``.

    Background, axes (lines, tick text, labels), titles and other LabelItems,
    legends, text items and InfiniteLines whose colours belong to the other
    theme; everything else (bars, images, highlights) is left as it is.
    """
    fill = map_fill(view.backgroundBrush().color(), theme)
    if fill is not None:
        view.setBackground(fill)
    scene = view.scene()
    if scene is None:
        return
    for item in scene.items():
        if isinstance(item, pg.AxisItem):
            _retint_axis(item, theme)
        elif isinstance(item, pg.LegendItem):
            brush = map_fill(item.brush().color(), theme)
            if brush is not None:
                item.setBrush(brush)
            pen = item.pen()
            colour = map_text(pen.color(), theme)
            if colour is not None and pen.style() != Qt.PenStyle.NoPen:
                item.setPen(_pen_with(pen, colour))
            label_colour = map_text(item.labelTextColor(), theme)
            if label_colour is not None:
                item.opts["labelTextColor"] = label_colour  # the labels themselves: LabelItem below
        elif isinstance(item, pg.LabelItem):
            colour = item.opts.get("color")
            if colour is None:
                colour = pg.getConfigOption("foreground")
            mapped = map_text(pg.mkColor(colour), theme)
            if mapped is not None:
                item.setText(item.text, color=mapped)
        elif isinstance(item, pg.TextItem):
            if item.fill.style() != Qt.BrushStyle.NoBrush:
                continue  # text on its own box keeps its colours
            mapped = map_text(item.color, theme)
            if mapped is not None:
                item.setColor(mapped)
        elif isinstance(item, pg.InfiniteLine):
            pen = item.pen
            mapped = map_text(pen.color(), theme)
            if mapped is not None:
                item.setPen(_pen_with(pen, mapped))
        elif isinstance(item, pg.LinearRegionItem):
            brush = map_fill(item.brush.color(), theme)
            if brush is not None:
                item.setBrush(brush)


def _retint_axis(axis: pg.AxisItem, theme: str) -> None:
    pen = map_text(axis.pen().color(), theme)
    if pen is not None:
        axis.setPen(_pen_with(axis.pen(), pen))
    text_pen = map_text(axis.textPen().color(), theme)
    if text_pen is not None:
        axis.setTextPen(_pen_with(axis.textPen(), text_pen))
    # setPen/setTextPen write their colour into the label style; a label set
    # with its own colour (widgets pass color=style.TEXT) is mapped here.
    label_colour = map_text(axis.labelStyle.get("color"), theme)
    if label_colour is not None:
        axis.labelStyle = {**axis.labelStyle, "color": label_colour.name()}
        axis._updateLabel()  # pyqtgraph has no public "restyle the label" call


def chart_views(root: QWidget) -> list[pg.GraphicsView]:
    """Every pyqtgraph view under ``root`` (``root`` itself included)."""
    views = root.findChildren(pg.GraphicsView)
    if isinstance(root, pg.GraphicsView):
        views.insert(0, root)
    return views


# ---------------------------------------------------------------------------------
# Qt widgets that hard-code light-theme colours


def retint_labels(root: QWidget, theme: str) -> None:
    """Map text-only style sheets (``color: #222222``) of labels under ``root`` to ``theme``.

    A style sheet that also sets a background is self-contained (dark text on
    its own light box) and is left alone; in the dark theme such a box is
    made sure to be painted (a plain QWidget subclass paints a style-sheet
    background only with ``WA_StyledBackground``), or its dark text would sit
    on the dark window.
    """
    table = _TABLES[theme][0]
    for widget in root.findChildren(QWidget):
        sheet = widget.styleSheet()
        if not sheet or "background" not in sheet or isinstance(widget, QLabel):
            continue
        added = bool(widget.property(_STYLED_BACKGROUND_PROPERTY))
        if theme == "dark" and not widget.testAttribute(Qt.WidgetAttribute.WA_StyledBackground):
            widget.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
            widget.setProperty(_STYLED_BACKGROUND_PROPERTY, True)
            widget.update()
        elif theme == "light" and added:
            widget.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, False)
            widget.setProperty(_STYLED_BACKGROUND_PROPERTY, False)
            widget.update()
    for label in root.findChildren(QLabel):
        sheet = label.styleSheet()
        if not sheet or "background" in sheet or "color" not in sheet:
            continue
        mapped = _HEX.sub(lambda m: table.get(m.group(0).lower(), m.group(0)), sheet)
        if mapped != sheet:
            label.setStyleSheet(mapped)


class ReadableCellDelegate(QStyledItemDelegate):
    """Keeps cell text readable when a model's colours assume a light table.

    A cell that brings its own background but no text colour gets text that
    contrasts with that background; a cell that brings a text colour meant
    for a light table gets the dark theme's equivalent. In the light theme it
    paints exactly as :class:`QStyledItemDelegate`.
    """

    def __init__(self, theme: Callable[[], str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._theme = theme

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        theme = self._theme()
        if theme != "dark":
            return
        background = index.data(Qt.ItemDataRole.BackgroundRole)
        foreground = index.data(Qt.ItemDataRole.ForegroundRole)
        if background is not None and foreground is None:
            colour = QColor(background.color() if hasattr(background, "color") else background)
            text = QColor("#1a1a1a") if colour.lightness() >= 128 else QColor("#f0f0f0")
            option.palette.setColor(QPalette.ColorRole.Text, text)
        elif foreground is not None and background is None:
            colour = foreground.color() if hasattr(foreground, "color") else foreground
            mapped = map_text(colour, theme)
            if mapped is not None:
                option.palette.setColor(QPalette.ColorRole.Text, mapped)
                option.palette.setBrush(QPalette.ColorRole.Text, mapped)


def install_readable_delegates(root: QWidget, theme: Callable[[], str]) -> int:
    """Give tables under ``root`` that use Qt's default delegate a :class:`ReadableCellDelegate`.

    Views with a delegate of their own (an editor's) keep it. Returns how many were installed.
    """
    count = 0
    for view in root.findChildren(QTableView):
        if type(view.itemDelegate()) is QStyledItemDelegate:
            view.setItemDelegate(ReadableCellDelegate(theme, view))
            count += 1
    return count


# ---------------------------------------------------------------------------------
# One window


class WindowTheme(QObject):
    """Applies a theme choice to one window and keeps its charts in that theme.

    Parameters
    ----------
    window
        The main window (its ``session`` is watched: views re-colour on updates).
    choice
        ``"system"``, ``"light"`` or ``"dark"``.
    """

    def __init__(self, window: Any, choice: str = "system") -> None:
        super().__init__(window)
        self.setObjectName("windowTheme")
        self.window = window
        self.choice = choice if choice in THEMES else "system"
        self.current = "light"  # what the views were written for
        self._delegates = False
        window.session.changed.connect(self._on_session_changed)
        self.destroyed.connect(lambda: window.session.changed.disconnect(self._on_session_changed))
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_changed)

    def set_choice(self, choice: str) -> None:
        """Switch to ``choice`` (and apply it now)."""
        resolve(choice)  # validates
        self.choice = choice
        self.apply()

    def apply(self) -> None:
        """Apply the current choice to the application palette and every chart of the window."""
        theme = resolve(self.choice)
        apply_palette(theme)
        # Widgets with a style sheet keep the palette they were polished with
        # (Qt does not re-polish them on an application palette change).
        for widget in self.window.findChildren(QWidget):
            sheet = widget.styleSheet()
            if sheet:
                widget.setStyleSheet(sheet)
        if theme == "dark" and not self._delegates:
            install_readable_delegates(self.window, lambda: self.current)
            self._delegates = True
        self.current = theme
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Re-colour what the views re-set since the last pass (only needed in the dark theme)."""
        if self.current == "light" and not force:
            return
        for view in chart_views(self.window):
            self._hook(view)
            retint_chart(view, self.current)
        retint_labels(self.window, self.current)
        if force:
            for view in self.window.findChildren(QTableView):
                view.viewport().update()

    def _hook(self, view: pg.GraphicsView) -> None:
        # Charts re-create or re-colour labels when resized or panned: re-colour
        # after them (connected later, so called after the chart's own slots).
        if view.property("softmaxLabThemeHooked"):
            return
        view.setProperty("softmaxLabThemeHooked", True)
        scene = view.scene()
        if scene is None:
            return
        for item in scene.items():
            if isinstance(item, pg.ViewBox):
                item.sigResized.connect(self._on_view_changed)
                item.sigRangeChanged.connect(self._on_view_changed)

    def _on_view_changed(self, *_: Any) -> None:
        self.refresh()

    def _on_session_changed(self, _names: frozenset[str]) -> None:
        self.refresh()

    def _on_system_changed(self, *_: Any) -> None:
        if self.choice == "system":
            self.apply()
