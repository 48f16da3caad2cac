"""The explorer window: composition only.

It places the views, builds the menus, and connects the few widget signals
that need the controller (open a file, load a batch row, cancel). It computes
nothing and holds no state of its own: everything lives in the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import CHART_VIEWS, Session
from softmax_lab.compute.loaders import SUPPORTED_SUFFIXES
from softmax_lab.widgets import dialogs, style
from softmax_lab.widgets.batch_view import BatchView
from softmax_lab.widgets.compute_options import ComputeOptions
from softmax_lab.widgets.logit_editor import LogitEditor
from softmax_lab.widgets.loss_panel import LossPanel
from softmax_lab.widgets.message_bar import MessageBar
from softmax_lab.widgets.overflow_panel import OverflowPanel
from softmax_lab.widgets.probability_chart import ProbabilityChart
from softmax_lab.widgets.stats_readout import StatsReadout
from softmax_lab.widgets.steps_table import StepsTable
from softmax_lab.widgets.temperature_control import TemperatureControl

TAB_STEPS, TAB_OVERFLOW, TAB_LOSS, TAB_BATCH = range(4)


def _scrollable(panel: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(panel)
    return area


class MainWindow(QMainWindow):
    """Softmax Lab's main window."""

    def __init__(
        self,
        session: Session,
        controller: Controller,
        cuda_available: bool = False,
        cuda_reason: str = "",
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.session = session
        self.controller = controller
        self.setWindowTitle("Softmax Lab")
        self.setAcceptDrops(True)

        # -- left: what the person edits -------------------------------------------
        self.editor = LogitEditor(session)
        self.temperature = TemperatureControl(session)
        self.options = ComputeOptions(session, cuda_available, cuda_reason)
        left = QWidget()
        left.setObjectName("controlsPanel")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 6, 6)
        left_layout.addWidget(self.editor, 1)
        left_layout.addWidget(self.temperature)
        left_layout.addWidget(self.options)

        # -- right: what the lab shows ------------------------------------------------
        self.chart = ProbabilityChart(session)
        self.readout = StatsReadout(session)
        chart_row = QWidget()
        chart_layout = QVBoxLayout(chart_row)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.readout)
        chart_layout.addWidget(self.chart, 1)

        self.steps = StepsTable(session)
        self.overflow = OverflowPanel(session)
        self.loss = LossPanel(session)
        self.batch = BatchView(session)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panelTabs")
        # Panels scroll rather than force a tall window: a lecture laptop or a
        # projector at 1280x720 must fit the whole window.
        for panel, title in (
            (self.steps, "Step by step"),
            (self.overflow, "Overflow lab"),
            (self.loss, "Cross-entropy"),
            (self.batch, "Batch"),
        ):
            self.tabs.addTab(_scrollable(panel), title)

        # Panels on a tab that is not shown skip the per-tick work and catch up when
        # their tab is shown (widgets/deferred.py).
        self.tabs.currentChanged.connect(self._follow_visible_tab)
        self._follow_visible_tab(self.tabs.currentIndex())

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(chart_row)
        right.addWidget(self.tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setSizes([520, 330])

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("mainSplitter")
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 950])

        self.message_bar = MessageBar(session)
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.message_bar)
        central_layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        # -- status bar: background work ------------------------------------------------
        self.busy_label = QLabel()
        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("busyIndicator")
        self.busy_bar.setRange(0, 0)  # indeterminate
        self.busy_bar.setMaximumWidth(160)
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().addPermanentWidget(self.busy_bar)
        session.events["busy"].connect(self.set_busy)
        self.set_busy(session.busy)

        # -- signals that need the controller -------------------------------------------
        self.batch.rowActivated.connect(self._on_row_activated)
        self.batch.openRequested.connect(self.open_file_dialog)
        self.batch.targetsRequested.connect(self.open_targets_dialog)
        self.batch.cancelRequested.connect(self._on_cancel)
        session.events["batch"].connect(self._on_batch_changed)
        controller.choose_array = self._choose_array

        self._build_menus()
        from softmax_lab.app.extensions import install_extensions

        install_extensions(self)
        self.resize(*style.WINDOW_SIZE)

    # -- menus ------------------------------------------------------------------------

    def _build_menus(self) -> None:
        # Menus are attributes so features installed later (export, sessions,
        # lectures: see app/extensions.py) can add their actions in place.
        self.file_menu = file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open tensor…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_file_dialog)
        file_menu.addAction(self.open_action)
        self.targets_action = QAction("Open &targets…", self)
        self.targets_action.triggered.connect(self.open_targets_dialog)
        file_menu.addAction(self.targets_action)
        file_menu.addSeparator()
        self.file_menu_tail = file_menu.addSeparator()  # features insert before this
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        self.edit_menu = self.menuBar().addMenu("&Edit")
        self.view_menu = view_menu = self.menuBar().addMenu("&View")
        for i, view in enumerate(CHART_VIEWS):
            action = QAction(f"Chart: {view}", self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, v=view: self._set_chart_view(v))
            view_menu.addAction(action)
        view_menu.addSeparator()
        for index, title in enumerate(("Step by step", "Overflow lab", "Cross-entropy", "Batch")):
            action = QAction(f"Panel: {title}", self)
            action.setShortcut(QKeySequence(f"Alt+{index + 1}"))
            action.triggered.connect(lambda _=False, i=index: self.tabs.setCurrentIndex(i))
            view_menu.addAction(action)

        self.help_menu = help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Softmax Lab", self)
        about.triggered.connect(self._show_about)
        help_menu.addAction(about)

    def _follow_visible_tab(self, index: int) -> None:
        self.steps.set_live(index == TAB_STEPS)
        self.overflow.set_live(index == TAB_OVERFLOW)
        self.loss.set_live(index == TAB_LOSS)

    def _set_chart_view(self, view: str) -> None:
        self.session.chart_view = view

    def _show_about(self) -> None:
        self.session.report(
            "info",
            "Softmax Lab: softmax, log-softmax and cross-entropy, live. "
            "Edit logits on the left, drag the temperature, open a batch with Ctrl+O.",
            "about",
        )

    # -- files --------------------------------------------------------------------------

    def open_file_dialog(self) -> None:
        path = dialogs.ask_open_path(self, "Open a tensor")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path, array_name: str | None = None) -> None:
        """Open a batch file in the background (containers ask which array to use)."""
        self.controller.open_file(Path(path), array_name=array_name)

    def _choose_array(self, path: Path, arrays: tuple[Any, ...]) -> str | None:
        labels = [f"{a.name}  {tuple(a.shape)}  {a.dtype}" for a in arrays]
        choice = dialogs.ask_choice(self, "Choose an array", f"{path.name} holds several arrays:", labels)
        return None if choice is None else arrays[labels.index(choice)].name

    def open_targets_dialog(self) -> None:
        from softmax_lab.compute.errors import LoadError
        from softmax_lab.compute.loaders import load_targets

        batch = self.session.batch
        if batch is None:
            self.session.report("warning", "Open a batch first; targets give one class per row.", "load")
            return
        path = dialogs.ask_open_path(self, "Open targets (one class index per row)")
        if not path:
            return
        try:
            targets = load_targets(path, num_rows=batch.data.shape[0], num_classes=batch.data.shape[1])
        except LoadError as exc:
            self.session.report("error", str(exc), "load")
            return
        self.controller.set_targets(targets)
        # Which file the targets came from, and for which batch (sessions save it).
        self.targets_source = (self.session.batch, Path(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(path)

    @staticmethod
    def _dropped_path(event: QDragEnterEvent | QDropEvent) -> Path | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.suffix.lower() in SUPPORTED_SUFFIXES or path.suffix.lower() == ".txt":
                    return path
        return None

    # -- reactions ------------------------------------------------------------------------

    def _on_row_activated(self, row: int) -> None:
        self.controller.select_row(row)

    def _on_cancel(self) -> None:
        self.controller.cancel("load")
        self.controller.cancel("batch")

    def _on_batch_changed(self, batch: object) -> None:
        if batch is not None:
            self.tabs.setCurrentIndex(TAB_BATCH)

    def set_busy(self, text: str) -> None:
        self.busy_label.setText(text)
        self.busy_bar.setVisible(bool(text))
