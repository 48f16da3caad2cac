"""Guards against a broken Qt binding, which no other test would pin down.

PySide6 6.12.0 on Python 3.11 released a reference to None on every call that
returns None (and to True/False on calls returning bools). After a few
thousand calls the interpreter aborted at exit with "Fatal Python error:
none_dealloc" (exit 134), after every test had passed. pyproject.toml excludes
that release; this test fails if such a binding is ever installed again.
(On Python >= 3.12 None is immortal and its count never moves, so the test
holds trivially there, as does the crash it guards against.)
"""

from __future__ import annotations

import gc
import sys


def _refcounts() -> tuple[int, int, int]:
    gc.collect()
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_qt_calls_do_not_steal_references_to_singletons(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel("x")
    qtbot.addWidget(label)
    before = _refcounts()
    for i in range(200):
        label.setText(str(i))  # returns None
        label.isVisible()  # returns a bool
        label.parent()  # returns None here
    after = _refcounts()
    lost = [b - a for b, a in zip(before, after, strict=True)]
    # A healthy binding leaves the counts where they were (a few references
    # may come and go with caches); a broken one loses 200 or more.
    assert max(lost) < 50, f"references lost to (None, True, False): {lost}"
