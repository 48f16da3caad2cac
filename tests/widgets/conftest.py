"""Fixtures for widget tests: a real session, strict leak checks."""

from __future__ import annotations

import pytest

from softmax_lab.app.session import Session
from tests.qt_helpers import top_level_widgets


@pytest.fixture
def session() -> Session:
    return Session()


@pytest.fixture(autouse=True)
def _no_leaked_top_level_widgets(qapp):
    """Fail a test that leaves a top-level widget alive (qtbot.addWidget closes them)."""
    from PySide6.QtWidgets import QApplication

    before = {id(w) for w in top_level_widgets()}
    yield
    QApplication.processEvents()
    leaked = [
        w
        for w in top_level_widgets()
        if id(w) not in before and w.isVisible() and not w.objectName().startswith("qt_")
    ]
    for w in leaked:
        w.close()
    assert not leaked, f"top-level widgets left open: {[type(w).__name__ for w in leaked]}"
