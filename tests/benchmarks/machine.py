"""The machine and software a run measured: recorded with every result."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def describe() -> dict[str, Any]:
    import torch

    cpu = _lscpu()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu.get("Model name", platform.processor()),
        "cores": os.cpu_count(),
        "threads_per_core": cpu.get("Thread(s) per core", ""),
        "l2_l3": f"{cpu.get('L2 cache', '?')} / {cpu.get('L3 cache', '?')}",
        "hypervisor": cpu.get("Hypervisor vendor", ""),
        "memory_gib": _mem_total_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": _version("numpy"),
        "PySide6": _version("PySide6-Essentials"),
        "pyqtgraph": _version("pyqtgraph"),
        "commit": _git_commit(),
        "load_average_at_start": os.getloadavg(),
    }
