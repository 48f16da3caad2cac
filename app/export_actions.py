"""Export from the window: charts (PNG, SVG, PDF), tables (CSV, Markdown, LaTeX, JSON), clipboard.

``install(window)`` adds:

* File → Export chart… (Ctrl+E) and File → Export table… (Ctrl+Shift+E);
* Edit → Copy table (Ctrl+Shift+C): the table on screen as tab-separated text
  *and* as an HTML ``<table>``, so it pastes as a table into a spreadsheet, a
  slide or a document. "The table on screen" is the step-by-step table when
  the Step-by-step or the Overflow tab is showing (its columns hold the naive
  path too), else the probability table;
* a right-click menu on every chart (the probability chart, the gradient, the
  naive-limit gauge, the batch heatmap) with Export chart… and Copy image.
  The heatmap keeps pyqtgraph's own view menu: the two entries are added at
  its top and pyqtgraph's "Export..." (whose SVG exporter fails on this Qt) is hidden.

Tables come from the compute core's writers (compute/tables.py, the same as
``softmax-lab table``); pictures from widgets/chart_export.py. Every file is
written to a temporary file and renamed over the target; an existing file is
replaced only after the person confirms; a failed write leaves the old file as
it was and the message bar says why.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import QMimeData, QObject, QPoint, QStandardPaths, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from softmax_lab.compute.errors import SoftmaxLabError
from softmax_lab.compute.tables import (
    Num,
    Table,
    csv_guard,
    probability_table,
    result_to_json,
    stats_table,
    steps_table,
    write_bytes_atomic,
    write_tables,
    write_text_atomic,
)
from softmax_lab.widgets import chart_export, export_dialog
from softmax_lab.widgets.chart_export import ChartOptions
from softmax_lab.widgets.export_dialog import ChartRequest, TableRequest

if TYPE_CHECKING:
    from softmax_lab.app.main_window import MainWindow

SOURCE = "export"
"""The message-bar source of export messages."""


# ---------------------------------------------------------------------------------
# Clipboard formats


def _cell_text(cell: Any) -> str:
    return cell.text if isinstance(cell, Num) else str(cell)


def table_tsv(table: Table) -> str:
    """``table`` as tab-separated text: header, rows, footer (no title), one line each.

    Text cells that a spreadsheet would run as a formula are prefixed with ``'``
    (the CSV writer's guard); tabs and newlines inside cells become spaces.
    """

    def cells(row: tuple[Any, ...]) -> str:
        out = []
        for cell in row:
            text = _cell_text(cell)
            text = " ".join(text.replace("\t", " ").split())
            out.append(text if isinstance(cell, Num) else csv_guard(text))
        return "\t".join(out)

    lines = [cells(table.header), *(cells(r) for r in (*table.rows, *table.footer))]
    return "\n".join(lines) + "\n"


def table_html(table: Table) -> str:
    """``table`` as an HTML ``<table>`` (header row, body, bold footer), numbers right-aligned."""
    align = table.alignment

    def row(cells: tuple[Any, ...], tag: str, bold: bool = False) -> str:
        parts = []
        for cell, a in zip(cells, align, strict=True):
            text = html.escape(_cell_text(cell))
            if bold:
                text = f"<b>{text}</b>"
            style = ' style="text-align:right"' if a == "r" else ""
            parts.append(f"<{tag}{style}>{text}</{tag}>")
        return "<tr>" + "".join(parts) + "</tr>"

    body = [row(r, "td") for r in table.rows] + [row(r, "td", bold=True) for r in table.footer]
    caption = f"<caption>{html.escape(table.title)}</caption>" if table.title else ""
    return (
        '<meta charset="utf-8"><table border="1" cellspacing="0" cellpadding="4">'
        + caption
        + "<thead>"
        + row(table.header, "th")
        + "</thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


# ---------------------------------------------------------------------------------
# The feature


class ExportActions(QObject):
    """The export actions of one window (see the module doc). ``install`` creates it."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("exportActions")
        self.window = window
        self.session = window.session
        self.directory = Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
            or Path.home()
        )
        """Where the dialogs start: the folder of the last export."""
        self.context_menu: QMenu | None = None
        """The chart menu shown last (tests close it)."""

        self.chart_action = self._action(
            "Export &chart…", "exportChartAction", "Ctrl+E", lambda: self.export_chart()
        )
        self.chart_action.setStatusTip("Save a chart or panel as PNG, SVG or PDF")
        self.table_action = self._action(
            "Export &table…", "exportTableAction", "Ctrl+Shift+E", self.export_table
        )
        self.table_action.setStatusTip("Save the probability or step-by-step table")
        self.copy_table_action = self._action(
            "Copy &table", "copyTableAction", "Ctrl+Shift+C", self.copy_table
        )
        self.copy_table_action.setStatusTip(
            "Copy the table on screen as text and HTML (pastes as a table)"
        )
        window.file_menu.insertAction(window.file_menu_tail, self.chart_action)
        window.file_menu.insertAction(window.file_menu_tail, self.table_action)
        window.edit_menu.addAction(self.copy_table_action)
        self._install_chart_menus()

    def _action(self, text: str, name: str, shortcut: str, slot: Any) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        return action

    # -- charts -------------------------------------------------------------------

    def chart_widgets(self) -> dict[str, pg.PlotWidget]:
        """Each chart of the window -> the export view its menu exports."""
        window = self.window
        charts: dict[str, pg.PlotWidget] = {"main": window.chart.plot_widget}
        for name, widget in (
            ("gradient", window.loss.findChild(pg.PlotWidget, "gradientChart")),
            ("overflow", window.overflow.findChild(pg.PlotWidget, "naiveLimitPlot")),
            ("heatmap", window.batch.heatmap),
        ):
            if widget is not None:
                charts[name] = widget
        return charts

    def _view_of(self, chart: str) -> str:
        return chart_export.default_view(self.session) if chart == "main" else chart

    def _install_chart_menus(self) -> None:
        for chart, widget in self.chart_widgets().items():
            view_box = widget.getPlotItem().getViewBox()
            if view_box.menuEnabled():
                # pyqtgraph raises its own view menu on a right click: add ours to it.
                menu = view_box.getMenu(None)
                first = menu.actions()[0] if menu.actions() else None
                for action in self.chart_menu_actions(chart, menu):
                    menu.insertAction(first, action)
                menu.insertSeparator(first)
                for action in widget.scene().contextMenu:
                    action.setVisible(False)  # pyqtgraph's "Export...": its SVG exporter fails
                continue
            widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            widget.customContextMenuRequested.connect(
                lambda pos, c=chart, w=widget: self._show_chart_menu(c, w, pos)
            )

    def chart_menu_actions(self, chart: str, parent: QObject) -> list[QAction]:
        """Export chart… and Copy image for ``chart`` (a key of :meth:`chart_widgets`)."""
        export = QAction("Export chart…", parent)
        export.setObjectName("chartMenuExport")
        export.triggered.connect(lambda _=False: self.export_chart(self._view_of(chart)))
        copy = QAction("Copy image", parent)
        copy.setObjectName("chartMenuCopyImage")
        copy.triggered.connect(lambda _=False: self.copy_image(self._view_of(chart)))
        return [export, copy]

    def chart_menu(self, chart: str) -> QMenu:
        """The right-click menu of ``chart`` (not shown)."""
        menu = QMenu(self.window)
        menu.setObjectName("chartContextMenu")
        for action in self.chart_menu_actions(chart, menu):
            menu.addAction(action)
        return menu

    def _show_chart_menu(self, chart: str, widget: QWidget, pos: QPoint) -> None:
        self.context_menu = menu = self.chart_menu(chart)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.aboutToHide.connect(lambda: setattr(self, "context_menu", None))
        viewport = widget.viewport() if hasattr(widget, "viewport") else widget
        menu.popup(viewport.mapToGlobal(pos))

    def unavailable_views(self) -> dict[str, str]:
        """Export views that cannot be exported now, with the reason."""
        return {
            view: reason
            for view in chart_export.EXPORT_VIEWS
            if (reason := chart_export.unavailable_reason(self.session, view))
        }

    def export_chart(self, view: str | None = None) -> bool:
        """Ask how to export a chart (``view`` preselected), then save it. True when saved."""
        view = view or chart_export.default_view(self.session)
        table = view in chart_export.TABLE_VIEWS
        initial = ChartRequest(
            str(self.directory / f"softmax-{view}.png"),
            ChartOptions(
                view=view,
                width=None if table else chart_export.DEFAULT_WIDTH,
                height=None if table else chart_export.DEFAULT_HEIGHT,
            ),
        )
        request = export_dialog.ask_chart_export(self.window, initial, self.unavailable_views())
        if request is None:
            return False
        return self.save_chart(request.path, request.options)

    def save_chart(self, path: str | Path, options: ChartOptions) -> bool:
        """Render ``options`` and write it to ``path`` (asking before replacing a file)."""
        path = Path(path)
        try:
            options = replace(options, fmt=chart_export.format_for_path(path))
            if not self._may_write(path):
                return False
            data = chart_export.render_view(self.session, options)
        except SoftmaxLabError as exc:
            self.session.report("error", f"Could not export the chart: {exc}", SOURCE)
            return False
        return self._write(path, lambda: write_bytes_atomic(path, data), f"{options.view} chart")

    def copy_image(self, view: str | None = None) -> bool:
        """Put ``view`` on the clipboard as an image (the export's default size, light theme)."""
        view = view or chart_export.default_view(self.session)
        try:
            image = chart_export.render_image(self.session, ChartOptions(view=view))
        except SoftmaxLabError as exc:
            self.session.report("error", f"Could not copy the chart: {exc}", SOURCE)
            return False
        QApplication.clipboard().setImage(image)
        self.session.report(
            "info", f"Copied the {view} chart ({image.width()} × {image.height()} px).", SOURCE
        )
        return True

    # -- tables -------------------------------------------------------------------

    def current_table_kind(self) -> str:
        """The table on screen: ``steps`` on the Step-by-step or Overflow tab, else ``probabilities``."""
        from softmax_lab.app.main_window import TAB_OVERFLOW, TAB_STEPS

        return (
            "steps"
            if self.window.tabs.currentIndex() in (TAB_STEPS, TAB_OVERFLOW)
            else "probabilities"
        )

    def tables(self, kind: str) -> tuple[Table, ...]:
        """The tables of ``kind`` for the editor's vector (compute/tables.py's writers)."""
        analysis = self.session.analysis
        if analysis is None:
            raise _NothingToExport("nothing computed yet")
        result = analysis.result
        names = self.session.class_names
        if kind == "steps":
            return (steps_table(result, 0, class_names=names),)
        target = analysis.request.target
        return (
            probability_table(result, 0, class_names=names, target=target),
            stats_table(result, 0, ce=analysis.loss, target=target, class_names=names),
        )

    def table_text(self, kind: str, fmt: str) -> str:
        """The file contents: ``kind``'s tables in ``fmt``; JSON of the probability table is
        ``softmax-lab table``'s JSON contract (every value at full precision)."""
        if fmt == "json" and kind == "probabilities":
            analysis = self.session.analysis
            if analysis is None:
                raise _NothingToExport("nothing computed yet")
            loss = analysis.loss
            target = analysis.request.target
            return result_to_json(
                analysis.result,
                targets=None if loss is None else [target],
                ce=loss,
                class_names=self.session.class_names,
            )
        return write_tables(self.tables(kind), fmt)

    def export_table(self) -> bool:
        """Ask which table to export and where, then save it. True when saved."""
        kind = self.current_table_kind()
        name = "softmax-table" if kind == "probabilities" else "softmax-steps"
        initial = TableRequest(str(self.directory / f"{name}.csv"), kind, "csv")
        request = export_dialog.ask_table_export(self.window, initial)
        if request is None:
            return False
        return self.save_table(request.path, request.kind, request.fmt)

    def save_table(self, path: str | Path, kind: str, fmt: str | None = None) -> bool:
        """Write table ``kind`` to ``path`` in ``fmt`` (default: from the suffix)."""
        path = Path(path)
        fmt = fmt or export_dialog.TABLE_FORMATS.get(path.suffix.lower())
        if fmt is None:
            self.session.report(
                "error", f"{path.name}: a table is saved as .csv, .md, .tex or .json.", SOURCE
            )
            return False
        try:
            text = self.table_text(kind, fmt)
        except (SoftmaxLabError, _NothingToExport) as exc:
            self.session.report("error", f"Could not export the table: {exc}", SOURCE)
            return False
        if not self._may_write(path):
            return False
        return self._write(path, lambda: write_text_atomic(path, text), f"{kind} table")

    def copy_table(self) -> bool:
        """Put the table on screen on the clipboard as TSV and HTML."""
        kind = self.current_table_kind()
        try:
            tables = self.tables(kind)
        except (SoftmaxLabError, _NothingToExport) as exc:
            self.session.report("error", f"Could not copy the table: {exc}", SOURCE)
            return False
        table = tables[0]
        mime = QMimeData()
        mime.setText(table_tsv(table))
        mime.setHtml(table_html(table))
        QApplication.clipboard().setMimeData(mime)
        what = "step-by-step" if kind == "steps" else "probability"
        self.session.report(
            "info", f"Copied the {what} table ({len(table.rows)} rows) as text and HTML.", SOURCE
        )
        return True

    # -- writing ------------------------------------------------------------------

    def _may_write(self, path: Path) -> bool:
        return not path.exists() or export_dialog.confirm_overwrite(self.window, path)

    def _write(self, path: Path, write: Any, what: str) -> bool:
        existed = path.exists()
        try:
            write()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            kept = " The existing file was left as it was." if existed else ""
            self.session.report("error", f"Could not save {path.name}: {reason}.{kept}", SOURCE)
            return False
        self.directory = path.parent
        self.session.report("info", f"Saved the {what} to {path}.", SOURCE)
        return True


class _NothingToExport(Exception):
    pass


def install(window: MainWindow) -> ExportActions:
    """Add the export actions and chart menus to ``window`` (kept as ``window.export_actions``)."""
    actions = ExportActions(window)
    window.export_actions = actions  # type: ignore[attr-defined]
    return actions
