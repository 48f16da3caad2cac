"""Reading Qt's widget lists safely from tests.

``QApplication.topLevelWidgets()`` returns raw pointers that PySide6 wraps one by
one. Wrapping allocates, an allocation can start Python's cycle collector, and the
collector can delete a Python-owned widget caught in a reference cycle (a window of
an earlier test whose callbacks and views refer to each other), one that is still
in the list being wrapped: the full suite crashed there twice ("Fatal Python error:
Segmentation fault" in the top-level checks of the fixtures). The collector is held
off while the list is wrapped; what it would have collected goes at its next run.
"""

from __future__ import annotations

import gc
from typing import Any


def top_level_widgets() -> list[Any]:
    """``QApplication.topLevelWidgets()``, wrapped with the cycle collector held off."""
    from PySide6.QtWidgets import QApplication

    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(QApplication.topLevelWidgets())
    finally:
        if enabled:
            gc.enable()
