"""The architecture contracts, checked at run time as well as by lint.

- compute/ and the Qt-free app modules import no Qt (GPU machines have none).
- importing them does not import torch either (start-up: torch takes seconds).
- tests/compute imports no Qt, so it runs with only torch, numpy and pytest.
- ruff's per-package bans really fire (a config typo would silently disable them).
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "superqt")
QT_FREE_APP = (
    "softmax_lab.app.session",
    "softmax_lab.app.events",
    "softmax_lab.app.controller",
    "softmax_lab.app.executors",
    "softmax_lab.app.errors",
    "softmax_lab.app.cli",
    "softmax_lab.app.presets",
    "softmax_lab.app.persistence",
    "softmax_lab.app.lecture",
)


def compute_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(ROOT / "compute")])]
    if importlib.util.find_spec("triton") is None:  # the kernels' module needs it (optional)
        names.remove("_triton_kernels")
    return [f"softmax_lab.compute.{name}" for name in names]


def loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout)


def test_compute_imports_no_qt_and_no_torch():
    modules = compute_modules()
    assert "softmax_lab.compute.softmax" in modules  # the discovery works
    loaded = loaded_after_import(["softmax_lab.compute", *modules])
    qt = [m for m in loaded if m.split(".")[0] in QT_MODULES]
    assert qt == [], f"compute/ pulled in Qt: {qt}"
    assert "torch" not in loaded, "a compute module imports torch at module level"
    assert not any(m.startswith("softmax_lab.app") or m.startswith("softmax_lab.widgets") for m in loaded)


def test_qt_free_app_modules_import_no_qt():
    present = [m for m in QT_FREE_APP if (ROOT / "app" / (m.rsplit(".", 1)[1] + ".py")).exists()]
    loaded = loaded_after_import(present)
    qt = [m for m in loaded if m.split(".")[0] in QT_MODULES]
    assert qt == [], f"a Qt-free app module pulled in Qt: {qt}"
    assert "torch" not in loaded


def test_compute_tests_import_no_qt():
    offenders = []
    for path in (ROOT / "tests" / "compute").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if any(name in text for name in ("PySide6", "pyqtgraph", "superqt", "qtbot", "softmax_lab.widgets")):
            offenders.append(path.name)
    assert offenders == []


@pytest.mark.parametrize(
    ("folder", "source", "rule"),
    [
        ("compute", "import PySide6\n", "TID251"),
        ("compute", "from softmax_lab.widgets import style\n", "TID251"),
        ("compute", "import torch\n", "TID253"),
        ("widgets", "import torch\n", "TID253"),
        ("widgets", "from softmax_lab.compute.softmax import softmax\n", "TID251"),
        ("widgets", "from softmax_lab.app.controller import Controller\n", "TID251"),
    ],
)
def test_lint_bans_fire(folder, source, rule):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the lint extra"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--output-format=json", "--stdin-filename", f"{folder}/_probe.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    codes = {item["code"] for item in json.loads(result.stdout or "[]")}
    assert rule in codes, f"ruff did not flag {source.strip()!r} in {folder}/ ({codes})"
