"""Lectures in the window: the scene list, presenter mode and "Copy as PyTorch".

:func:`install` (called from ``app/extensions.py``) adds to a built
:class:`~softmax_lab.app.main_window.MainWindow`:

* File → Open lecture…, Open built-in lecture, Save lecture as…, Add scene…;
* Edit → Copy as PyTorch (Ctrl+Shift+P): the code that reproduces what is shown;
* View → Presenter mode (F11) and View → Scene list (a dock, ``sceneDock``,
  holding ``sceneList``: click a scene to show it; add, remove, move up/down).

Presenter mode is a separate fullscreen window (see
``widgets/presenter_view.py``) bound to the same session; ``Esc`` closes it and
the normal window is as it was. With a lecture, the arrow keys and Page
Up/Down step through the scenes; without one they step the chart view
(probabilities → log-probabilities → logits), so a clicker still does
something visible.

Everything the lecture holds lives here (which lecture, which file, which scene
is current, unsaved edits); the session only ever receives a scene's state
through :func:`~softmax_lab.app.lecture.apply_scene`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget

from softmax_lab.app.lecture import (
    DEFAULT_LECTURE_TITLE,
    PANELS,
    Lecture,
    LectureError,
    apply_scene,
    builtin_lecture_path,
    load_lecture,
    save_lecture,
    scene_from_session,
)
from softmax_lab.app.main_window import TAB_BATCH, TAB_LOSS, TAB_OVERFLOW, TAB_STEPS
from softmax_lab.app.session import CHART_VIEWS
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import dialogs, lecture_dialogs
from softmax_lab.widgets.presenter_view import PresenterView, projector_scale
from softmax_lab.widgets.scene_list import SceneList

if TYPE_CHECKING:
    from PySide6.QtGui import QScreen

    from softmax_lab.app.main_window import MainWindow

PANEL_TABS: dict[str, int] = {
    "steps": TAB_STEPS,
    "overflow": TAB_OVERFLOW,
    "loss": TAB_LOSS,
    "batch": TAB_BATCH,
}
TAB_PANELS: dict[int, str] = {tab: panel for panel, tab in PANEL_TABS.items()}
SNIPPET_MAX_BATCH = 10_000
"""A loaded batch up to this many values is pasted whole; above it, the editor's vector."""


class LectureActions(QObject):
    """The lecture feature of one window.

    Attributes
    ----------
    lecture : Lecture or None
        The open lecture (None until one is opened or a first scene is added).
    path : Path or None
        Where it was read from or last saved to.
    current : int
        Index of the scene last shown, -1 for none.
    modified : bool
        Scenes were added, removed or moved since the lecture was opened or saved.
    presenter : PresenterView or None
        The presenter window while presenter mode is on.
    """

    lectureChanged = Signal()
    currentChanged = Signal(int)
    presenterChanged = Signal(bool)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("lectureActions")
        self.window = window
        self.session = window.session
        self.lecture: Lecture | None = None
        self.path: Path | None = None
        self.current = -1
        self.modified = False
        self.presenter: PresenterView | None = None
        self._build_actions()
        self._build_dock()
        window.installEventFilter(self)
        # Without a lecture the presenter shows the panel open in the window.
        window.tabs.currentChanged.connect(lambda _index: self._show_on_presenter())

    # -- construction ---------------------------------------------------------------------

    def _action(self, name: str, text: str, slot: object, shortcut: str | None = None) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
        return action

    def _build_actions(self) -> None:
        w = self.window
        self.open_action = self._action("openLectureAction", "Open &lecture…", self.open_lecture_dialog)
        self.builtin_action = self._action(
            "builtinLectureAction", "Open &built-in lecture", self.open_builtin_lecture
        )
        self.save_action = self._action("saveLectureAction", "Save lecture &as…", self.save_lecture_dialog)
        self.add_action = self._action("addSceneAction", "Add &scene…", self.add_scene)
        self.add_action.setToolTip("Save what the window shows as a new scene of the lecture")
        for action in (self.open_action, self.builtin_action, self.save_action, self.add_action):
            w.file_menu.insertAction(w.file_menu_tail, action)
        w.file_menu.insertSeparator(w.file_menu_tail)

        self.copy_action = self._action(
            "copyPytorchAction", "Copy as &PyTorch", self.copy_as_pytorch, "Ctrl+Shift+P"
        )
        self.copy_action.setToolTip("Copy Python code that reproduces this state with PyTorch")
        w.edit_menu.addAction(self.copy_action)

        self.present_action = QAction("&Presenter mode", w)
        self.present_action.setObjectName("presenterModeAction")
        self.present_action.setShortcut(QKeySequence(Qt.Key.Key_F11))
        self.present_action.setCheckable(True)
        self.present_action.setToolTip(
            "Fullscreen for a projector: → / Page Down next scene, ← / Page Up previous, "
            "+ / − temperature, Esc leaves"
        )
        self.present_action.toggled.connect(self._on_present_toggled)
        w.view_menu.addSeparator()
        w.view_menu.addAction(self.present_action)

    def _build_dock(self) -> None:
        self.scene_list = SceneList()
        self.dock = QDockWidget("Lecture", self.window)
        self.dock.setObjectName("sceneDock")
        self.dock.setWidget(self.scene_list)
        self.dock.setAllowedAreas(
            Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        toggle = self.dock.toggleViewAction()
        toggle.setText("Scene &list")
        toggle.setObjectName("sceneListAction")
        self.window.view_menu.addAction(toggle)
        self.scene_list.sceneActivated.connect(self.go_to)
        self.scene_list.addRequested.connect(self.add_scene)
        self.scene_list.removeRequested.connect(self.remove_scene)
        self.scene_list.moveRequested.connect(self.move_scene)
        self.scene_list.presentRequested.connect(self.enter_presenter)

    # -- the lecture ----------------------------------------------------------------------

    def set_lecture(self, lecture: Lecture | None, path: Path | None = None) -> None:
        """Make ``lecture`` the open one (nothing applied yet) and show its scenes."""
        self.lecture = lecture
        self.path = path
        self.current = -1
        self.modified = False
        self._refresh_list()
        if lecture is not None:
            self.dock.show()
        self.lectureChanged.emit()

    def open_lecture(self, path: str | Path) -> bool:
        """Read ``path`` and show its first scene; a bad file changes nothing.

        Returns whether the lecture was opened (errors are shown in a dialog).
        """
        path = Path(path)
        try:
            lecture = load_lecture(path)
        except LectureError as exc:
            dialogs.show_error(self.window, "Could not open the lecture", str(exc))
            return False
        self.set_lecture(lecture, path)
        self.go_to(0)
        self.session.report(
            "info", f"Lecture “{lecture.title}”: {len(lecture)} scenes. F11 presents it.", "lecture"
        )
        return True

    def open_lecture_dialog(self) -> None:
        if not self._may_discard():
            return
        path = lecture_dialogs.ask_lecture_path(self.window)
        if path:
            self.open_lecture(path)

    def open_builtin_lecture(self) -> None:
        if self._may_discard():
            self.open_lecture(builtin_lecture_path())

    def _may_discard(self) -> bool:
        if self.lecture is None or not self.modified:
            return True
        return lecture_dialogs.confirm_discard(
            self.window,
            f"The lecture “{self.lecture.title}” has scenes that are not saved. Discard them?",
        )

    def save_lecture_dialog(self) -> None:
        """File → Save lecture as…: ask for a file and write the lecture to it."""
        if self.lecture is None or not self.lecture.scenes:
            self.session.report("warning", "No scenes to save yet: use Add scene first.", "lecture")
            return
        suggested = str(self.path) if self.path and self.path != builtin_lecture_path() else "lecture.toml"
        path = lecture_dialogs.ask_lecture_save_path(self.window, suggested)
        if path:
            self.save_as(path)

    def save_as(self, path: str | Path) -> bool:
        """Write the lecture to ``path`` atomically; returns whether it was saved."""
        assert self.lecture is not None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".toml")
        lecture = self.lecture
        if lecture.title == DEFAULT_LECTURE_TITLE:
            lecture = Lecture(path.stem.replace("_", " "), lecture.scenes)
        try:
            save_lecture(path, lecture)
        except (LectureError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            dialogs.show_error(
                self.window,
                "Could not save the lecture",
                f"{path}: {reason}. Nothing was written; an existing file is unchanged.",
            )
            return False
        self.lecture, self.path, self.modified = lecture, path, False
        self._refresh_list()
        self.session.report("info", f"Saved the lecture to {path}.", "lecture")
        return True

    # -- editing --------------------------------------------------------------------------

    def add_scene(self) -> None:
        """Save the current state as a new scene after the current one (asks its title)."""
        count = len(self.lecture) if self.lecture is not None else 0
        details = lecture_dialogs.ask_scene_details(
            self.window, f"Scene {count + 1}", "", self.visible_panel(), PANELS
        )
        if details is None:
            return
        title, caption, panel = details
        try:
            scene = scene_from_session(self.session, title, caption, panel)
        except LectureError as exc:
            self.session.report("error", f"Cannot add the scene: {exc}", "lecture")
            return
        lecture = self.lecture if self.lecture is not None else Lecture(DEFAULT_LECTURE_TITLE)
        index = self.current + 1 if self.current >= 0 else len(lecture)
        self.lecture = lecture.inserted(index, scene)
        self.current = index
        self.modified = True
        self._refresh_list()
        self.dock.show()
        self.lectureChanged.emit()
        self.currentChanged.emit(index)

    def remove_scene(self, index: int) -> None:
        if self.lecture is None or not 0 <= index < len(self.lecture):
            return
        self.lecture = self.lecture.removed(index)
        if self.current == index:
            self.current = min(index, len(self.lecture) - 1)
        elif self.current > index:
            self.current -= 1
        self.modified = True
        self._refresh_list()
        self.lectureChanged.emit()

    def move_scene(self, index: int, delta: int) -> None:
        """Move scene ``index`` by ``delta`` places (-1 up, +1 down); the selection follows it."""
        if self.lecture is None or not 0 <= index < len(self.lecture):
            return
        to = max(0, min(index + delta, len(self.lecture) - 1))
        if to == index:
            return
        self.lecture = self.lecture.moved(index, to)
        if self.current == index:
            self.current = to
        elif index < self.current <= to:
            self.current -= 1
        elif to <= self.current < index:
            self.current += 1
        self.modified = True
        self._refresh_list(selected=to)
        self.lectureChanged.emit()

    def _refresh_list(self, selected: int | None = None) -> None:
        lecture = self.lecture
        if lecture is None:
            self.scene_list.set_scenes("", [], -1)
            return
        title = lecture.title + (" (not saved)" if self.modified else "")
        scenes = [(s.title, s.panel, s.caption) for s in lecture.scenes]
        self.scene_list.set_scenes(title, scenes, self.current if selected is None else selected)

    # -- showing scenes ---------------------------------------------------------------------

    def go_to(self, index: int) -> None:
        """Apply scene ``index`` to the session and show its panel (all or nothing)."""
        lecture = self.lecture
        if lecture is None or not 0 <= index < len(lecture):
            return
        scene = lecture.scenes[index]
        try:
            apply_scene(self.session, scene)
        except InvalidInputError as exc:
            self.session.report("error", f"Scene {index + 1}: {exc}", "lecture")
            return
        self.current = index
        if scene.panel in PANEL_TABS:
            self.window.tabs.setCurrentIndex(PANEL_TABS[scene.panel])
        self.scene_list.set_current(index)
        self._show_on_presenter()
        self.currentChanged.emit(index)

    def next_scene(self) -> None:
        if self.lecture is None:
            self._step_chart_view(+1)
        elif self.current < len(self.lecture) - 1:
            self.go_to(self.current + 1)

    def previous_scene(self) -> None:
        if self.lecture is None:
            self._step_chart_view(-1)
        elif self.current > 0:
            self.go_to(self.current - 1)

    def first_scene(self) -> None:
        if self.lecture is not None and self.lecture.scenes:
            self.go_to(0)

    def last_scene(self) -> None:
        if self.lecture is not None and self.lecture.scenes:
            self.go_to(len(self.lecture) - 1)

    def reset_scene(self) -> None:
        """Show the current scene again, as written (after + / − or edits)."""
        if self.lecture is not None and self.current >= 0:
            self.go_to(self.current)

    def _step_chart_view(self, delta: int) -> None:
        views = CHART_VIEWS
        index = views.index(self.session.chart_view)
        self.session.chart_view = views[(index + delta) % len(views)]

    def visible_panel(self) -> str:
        """The panel a person sees now: the presenter's, else the window's current tab."""
        if self.presenter is not None:
            return self.presenter.current_panel
        return TAB_PANELS.get(self.window.tabs.currentIndex(), "chart")

    # -- presenter mode ---------------------------------------------------------------------

    def _on_present_toggled(self, on: bool) -> None:
        if on:
            self.enter_presenter()
        else:
            self.leave_presenter()

    def enter_presenter(self) -> None:
        """Open the fullscreen presenter window (on a second screen when there is one)."""
        if self.presenter is not None:
            self.presenter.activateWindow()
            return
        if self.lecture is not None and self.lecture.scenes and self.current < 0:
            self.go_to(0)
        screen = self._presenter_screen()
        # Its own top-level window, not a child of the main one: scripts and tests that
        # find the window's widgets by objectName must not find the presenter's copies.
        presenter = PresenterView(self.session, None, scale=projector_scale(screen))
        self.presenter = presenter
        presenter.nextRequested.connect(self.next_scene)
        presenter.previousRequested.connect(self.previous_scene)
        presenter.firstRequested.connect(self.first_scene)
        presenter.lastRequested.connect(self.last_scene)
        presenter.resetRequested.connect(self.reset_scene)
        presenter.leaveRequested.connect(self.leave_presenter)
        self._show_on_presenter()
        if screen is not None:
            presenter.setScreen(screen)
            presenter.move(screen.geometry().topLeft())
        presenter.showFullScreen()
        presenter.activateWindow()
        presenter.setFocus()
        with _blocked(self.present_action):
            self.present_action.setChecked(True)
        self.presenterChanged.emit(True)

    def leave_presenter(self) -> None:
        """Close the presenter window; the normal window is as it was."""
        presenter, self.presenter = self.presenter, None
        with _blocked(self.present_action):
            self.present_action.setChecked(False)
        if presenter is None:
            return
        presenter.dispose()
        presenter.close()
        presenter.deleteLater()
        self.window.activateWindow()
        self.presenterChanged.emit(False)

    def _presenter_screen(self) -> QScreen | None:
        # Laptop + projector: the presenter goes to the screen the window is not on.
        screens = QGuiApplication.screens()
        here = self.window.screen()
        others = [s for s in screens if s is not here]
        return others[0] if others else here

    def _show_on_presenter(self) -> None:
        presenter = self.presenter
        if presenter is None:
            return
        lecture = self.lecture
        if lecture is not None and 0 <= self.current < len(lecture):
            scene = lecture.scenes[self.current]
            presenter.show_scene(
                scene.title, scene.caption, scene.panel, self.current, len(lecture), lecture.title
            )
        else:
            presenter.show_state(TAB_PANELS.get(self.window.tabs.currentIndex(), "chart"))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.leave_presenter()  # the window is closing: its presenter goes with it
        return False

    # -- Copy as PyTorch --------------------------------------------------------------------

    def pytorch_code(self) -> str:
        """The code reproducing what is shown (see :func:`~softmax_lab.compute.snippets.pytorch_snippet`)."""
        from softmax_lab.compute.snippets import pytorch_snippet

        s = self.session
        panel = self.visible_panel()
        batch = s.batch
        if panel == "batch" and batch is not None and batch.data.size <= SNIPPET_MAX_BATCH:
            op = "log_softmax" if s.chart_view == "log-probabilities" else "softmax"
            return pytorch_snippet(
                batch.data, batch.class_names, s.temperature, s.batch_dim, s.dtype, op
            )
        if panel == "loss" and s.target is not None:
            op = "cross_entropy"
        elif s.chart_view == "log-probabilities":
            op = "log_softmax"
        elif panel == "overflow":
            op = "naive_softmax"
        else:
            op = "softmax"
        return pytorch_snippet(
            s.logits,
            s.class_names,
            s.temperature,
            -1,
            s.dtype,
            op,
            target=s.target,
            label_smoothing=s.label_smoothing,
        )

    def copy_as_pytorch(self) -> None:
        """Edit → Copy as PyTorch: put :meth:`pytorch_code` on the clipboard."""
        try:
            code = self.pytorch_code()
        except InvalidInputError as exc:
            self.session.report("error", f"Copy as PyTorch: {exc}", "lecture")
            return
        QGuiApplication.clipboard().setText(code)
        self.session.report(
            "info", "Copied PyTorch code for this state: paste it into Python and run it.", "lecture"
        )


class _blocked:
    """Block a QObject's signals for a ``with`` block (a QAction is not a QWidget)."""

    def __init__(self, obj: QObject) -> None:
        self.obj = obj

    def __enter__(self) -> None:
        self._was = self.obj.blockSignals(True)

    def __exit__(self, *_exc: object) -> None:
        self.obj.blockSignals(self._was)


def install(window: MainWindow) -> LectureActions:
    """Add lectures, presenter mode and Copy as PyTorch to ``window`` (once)."""
    actions = LectureActions(window)
    window.lecture_actions = actions  # type: ignore[attr-defined]
    return actions


def start(window: MainWindow, lecture: str | Path | None, present: bool) -> None:
    """Command-line start: open ``lecture`` (a file path) and/or enter presenter mode."""
    actions: LectureActions = window.lecture_actions  # type: ignore[attr-defined]
    if lecture is not None:
        actions.open_lecture(lecture)
    if present:
        actions.enter_presenter()
