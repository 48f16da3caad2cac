"""Suite-wide setup. Imports no Qt: tests/compute must run where only torch,
numpy and pytest are installed (GPU machines)."""

from __future__ import annotations

import importlib.util
import os

# Before any Qt module loads anywhere in the suite: no display needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    # A GPU machine has torch, numpy and pytest but no pytest-qt. Without this,
    # --strict-config fails the whole run there on pyproject's pytest-qt settings
    # ("Unknown config option: qt_api") before tests/compute can run.
    if importlib.util.find_spec("pytestqt") is None:
        for name, kind in (
            ("qt_api", "string"),
            ("qt_log_level_fail", "string"),
            ("qt_log_ignore", "linelist"),
        ):
            parser.addini(name, "pytest-qt's setting; pytest-qt is not installed here", type=kind)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--run-slow")
    # get_closest_marker, not `in item.keywords`: a parametrize id "cuda" is a keyword too.
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    has_cuda = _cuda_available() if cuda_items else False
    for item in items:
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with `make test-all`"))
        if item.get_closest_marker("cuda") and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; torch sees none here"))


@pytest.fixture(autouse=True)
def _isolated_user_folders(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings, autosaves and logs of every test (and of the apps it starts) go to a
    fresh temporary folder, never the real home (app/settings.py, app/autosave.py)."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("SOFTMAX_LAB_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "xdg-config"))
