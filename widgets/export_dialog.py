"""The export dialogs, as module functions tests can monkeypatch.

:func:`ask_chart_export` asks which view to export, where, and at what size,
DPI and theme; :func:`ask_table_export` asks which table and where. The file
format follows the file name's suffix (``.png``/``.svg``/``.pdf`` for charts;
``.csv``/``.md``/``.tex``/``.json`` for tables); a name without a suffix gets
the default one. :func:`confirm_overwrite` asks before an existing file is
replaced. Nothing here writes a file: the caller does (app/export_actions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.widgets import style
from softmax_lab.widgets.chart_export import (
    CHART_FORMATS,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    EXPORT_VIEWS,
    MAX_DPI,
    MAX_PIXELS,
    MIN_DPI,
    TABLE_VIEWS,
    THEMES,
    ChartOptions,
)

TABLE_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".tex": "latex",
    ".json": "json",
}
"""File suffix -> table format (the formats of ``softmax-lab table``)."""
TABLE_KINDS: dict[str, str] = {
    "probabilities": "Probability table and statistics",
    "steps": "Step-by-step table (stable and naive)",
}
"""Which table to export -> what the dialog calls it."""

VIEW_LABELS: dict[str, str] = {
    "probabilities": "Probabilities (bar chart)",
    "log": "Log-probabilities (bar chart)",
    "logits": "Logits (bar chart)",
    "gradient": "Gradient of the loss (bar chart)",
    "overflow": "Overflow lab (verdict, naive-limit gauge, table)",
    "steps": "Step-by-step table",
    "heatmap": "Batch heatmap",
}
_CHART_FILTER = "PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"
_TABLE_FILTER = "CSV (*.csv);;Markdown (*.md);;LaTeX booktabs (*.tex);;JSON (*.json)"
AUTO = 0
"""Width/height spin box value meaning "the content's own size"."""


@dataclass(frozen=True)
class ChartRequest:
    """Where to save a chart and how (the format is ``options.fmt``, from the suffix)."""

    path: str
    options: ChartOptions = field(default_factory=ChartOptions)


@dataclass(frozen=True)
class TableRequest:
    """Where to save which table (``kind``: a key of :data:`TABLE_KINDS`) in ``fmt``."""

    path: str
    kind: str = "probabilities"
    fmt: str = "csv"


def chart_path_error(path: str) -> str:
    """Why ``path`` cannot take a chart ("" when it can)."""
    if not path.strip():
        return "Choose a file name."
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in CHART_FORMATS:
        return f"A chart is saved as .png, .svg or .pdf, not {suffix}."
    return ""


def table_path_error(path: str) -> str:
    """Why ``path`` cannot take a table ("" when it can)."""
    if not path.strip():
        return "Choose a file name."
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in TABLE_FORMATS:
        return f"A table is saved as .csv, .md, .tex or .json, not {suffix}."
    return ""


def with_suffix(path: str, default: str) -> str:
    """``path``, given ``default`` as its suffix when it has none."""
    return path if Path(path).suffix else path + default


class _PathRow(QWidget):
    """A file name field and a Browse… button (a native save dialog)."""

    def __init__(self, path: str, file_filter: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.file_filter = file_filter
        self.edit = QLineEdit(path, self)
        self.edit.setObjectName("exportPath")
        self.edit.setMinimumWidth(360)
        self.browse = QPushButton("Browse…", self)
        self.browse.setObjectName("exportBrowse")
        self.browse.clicked.connect(self._on_browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def _on_browse(self) -> None:
        # Overwriting is confirmed by the caller, once, after the whole dialog.
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export to",
            self.edit.text(),
            self.file_filter,
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.edit.setText(path)


def _error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setObjectName("exportError")
    label.setStyleSheet(f"color: {style.BAD};")
    label.setWordWrap(True)
    return label


class ChartExportDialog(QDialog):
    """Choose view, file, size, DPI and theme of a chart export.

    Parameters
    ----------
    initial
        The values the fields start with.
    unavailable
        View -> why it cannot be exported now (those views are disabled).
    """

    def __init__(
        self,
        initial: ChartRequest,
        unavailable: dict[str, str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("chartExportDialog")
        self.setWindowTitle("Export chart")
        unavailable = unavailable or {}
        options = initial.options

        self.view_combo = QComboBox(self)
        self.view_combo.setObjectName("exportView")
        model = self.view_combo.model()
        for view in EXPORT_VIEWS:
            self.view_combo.addItem(VIEW_LABELS[view], view)
            reason = unavailable.get(view, "")
            if reason:
                item = model.item(self.view_combo.count() - 1)  # type: ignore[attr-defined]
                item.setEnabled(False)
                item.setToolTip(reason)
        self.view_combo.setCurrentIndex(max(self.view_combo.findData(options.view), 0))
        self.path_row = _PathRow(initial.path, _CHART_FILTER, self)

        self.width_box = self._size_box("exportWidth", options.width)
        self.height_box = self._size_box("exportHeight", options.height)
        self.dpi_box = QSpinBox(self)
        self.dpi_box.setObjectName("exportDpi")
        self.dpi_box.setRange(int(MIN_DPI), int(MAX_DPI))
        self.dpi_box.setValue(round(options.dpi))
        self.dpi_box.setSuffix(" DPI")
        self.dpi_box.setToolTip(
            "Physical size (width / DPI inches) and text size: at 200 DPI a 12 pt label "
            "is 33 px tall. SVG and PDF are vector; DPI sets their page size."
        )
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×", self))
        size_row.addWidget(self.height_box)
        size_row.addWidget(QLabel("px at", self))
        size_row.addWidget(self.dpi_box)
        size_row.addStretch(1)

        self.theme_combo = QComboBox(self)
        self.theme_combo.setObjectName("exportTheme")
        self.theme_combo.addItems(list(THEMES))
        self.theme_combo.setCurrentText(options.theme)

        form = QFormLayout()
        form.addRow("&View:", self.view_combo)
        form.addRow("&File:", self.path_row)
        form.addRow("Size:", size_row)
        form.addRow("&Theme:", self.theme_combo)
        hint = QLabel(
            "The format follows the file name: .png, .svg or .pdf. "
            "“auto” sizes a table to its content.",
            self,
        )
        hint.setWordWrap(True)
        self.error = _error_label(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.setObjectName("exportButtons")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        self.view_combo.currentIndexChanged.connect(self._on_view_changed)
        self.path_row.edit.textChanged.connect(self._validate)
        self._validate()

    def _size_box(self, name: str, value: int | None) -> QSpinBox:
        box = QSpinBox(self)
        box.setObjectName(name)
        box.setRange(AUTO, MAX_PIXELS)
        box.setSpecialValueText("auto")
        box.setSingleStep(100)
        box.setValue(AUTO if value is None else value)
        return box

    def _on_view_changed(self, _index: int) -> None:
        view = self.view_combo.currentData()
        table = view in TABLE_VIEWS
        # Tables default to their content's size; charts to a slide-sized figure.
        self.width_box.setValue(AUTO if table else DEFAULT_WIDTH)
        self.height_box.setValue(AUTO if table else DEFAULT_HEIGHT)
        path = self.path_row.edit.text()
        if path:
            stem = Path(path)
            if stem.stem.startswith("softmax-"):  # our own default name: follow the view
                self.path_row.edit.setText(str(stem.with_name(f"softmax-{view}{stem.suffix}")))

    def _validate(self) -> None:
        message = chart_path_error(self.path_row.edit.text())
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not message)

    def request(self) -> ChartRequest:
        """What the fields say now (the path gets ``.png`` when it has no suffix)."""
        path = with_suffix(self.path_row.edit.text().strip(), ".png")
        width, height = self.width_box.value(), self.height_box.value()
        options = ChartOptions(
            view=str(self.view_combo.currentData()),
            fmt=CHART_FORMATS.get(Path(path).suffix.lower(), "png"),
            width=None if width == AUTO else width,
            height=None if height == AUTO else height,
            dpi=float(self.dpi_box.value()),
            theme=self.theme_combo.currentText(),
        )
        return ChartRequest(path, options)


class TableExportDialog(QDialog):
    """Choose which table to export and where; the suffix picks the format."""

    def __init__(self, initial: TableRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tableExportDialog")
        self.setWindowTitle("Export table")
        self.kind_combo = QComboBox(self)
        self.kind_combo.setObjectName("exportTableKind")
        for kind, label in TABLE_KINDS.items():
            self.kind_combo.addItem(label, kind)
        self.kind_combo.setCurrentIndex(max(self.kind_combo.findData(initial.kind), 0))
        self.path_row = _PathRow(initial.path, _TABLE_FILTER, self)
        form = QFormLayout()
        form.addRow("&Table:", self.kind_combo)
        form.addRow("&File:", self.path_row)
        hint = QLabel(
            "The format follows the file name: .csv, .md (Markdown), .tex (LaTeX booktabs) "
            "or .json — the same writers as `softmax-lab table`.",
            self,
        )
        hint.setWordWrap(True)
        self.error = _error_label(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.setObjectName("exportButtons")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.path_row.edit.textChanged.connect(self._validate)
        self._validate()

    def _validate(self) -> None:
        message = table_path_error(self.path_row.edit.text())
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not message)

    def request(self) -> TableRequest:
        """What the fields say now (the path gets ``.csv`` when it has no suffix)."""
        path = with_suffix(self.path_row.edit.text().strip(), ".csv")
        fmt = TABLE_FORMATS.get(Path(path).suffix.lower(), "csv")
        return TableRequest(path, str(self.kind_combo.currentData()), fmt)


def ask_chart_export(
    parent: QWidget | None, initial: ChartRequest, unavailable: dict[str, str] | None = None
) -> ChartRequest | None:
    """Show the chart export dialog; the person's choice, or None when cancelled."""
    dialog = ChartExportDialog(initial, unavailable, parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.request()
    finally:
        dialog.deleteLater()


def ask_table_export(parent: QWidget | None, initial: TableRequest) -> TableRequest | None:
    """Show the table export dialog; the person's choice, or None when cancelled."""
    dialog = TableExportDialog(initial, parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.request()
    finally:
        dialog.deleteLater()


def confirm_overwrite(parent: QWidget | None, path: str | Path) -> bool:
    """Ask whether to replace the existing file ``path``; True only on an explicit yes."""
    name = Path(path).name
    box = QMessageBox(parent)
    box.setObjectName("confirmOverwrite")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Replace file?")
    box.setText(f"“{name}” already exists. Replace it?")
    box.setInformativeText(f"In {Path(path).parent}. The old file stays as it is if you say no.")
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setTextFormat(Qt.TextFormat.PlainText)
    try:
        return box.exec() == QMessageBox.StandardButton.Yes
    finally:
        box.deleteLater()
