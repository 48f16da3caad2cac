"""Features that add themselves to the main window: each installs its actions
and menus into a built :class:`~softmax_lab.app.main_window.MainWindow`.

Kept out of main_window.py so that window composition stays short and each
feature lives (and is tested) in its own module. Order matters only for the
order of menu entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from softmax_lab.app.main_window import MainWindow


def install_extensions(window: MainWindow) -> None:
    """Install every feature into ``window`` (called once at the end of its constructor)."""
    # export: charts and tables (File → Export chart…/Export table…, Edit → Copy table)
    from softmax_lab.app import export_actions
    export_actions.install(window)
    # sessions: save/open, recent files, undo/redo, autosave, themes
    from softmax_lab.app import session_actions
    session_actions.install(window)
    # lectures: presenter mode, scenes, Copy as PyTorch
    from softmax_lab.app import lecture_actions
    lecture_actions.install(window)
