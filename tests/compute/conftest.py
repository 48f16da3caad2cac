"""tests/compute imports no Qt (enforced by tests/test_architecture.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run torch single-threaded in the compute tests: on a loaded 2-core runner, OpenMP
    hand-offs made each tiny softmax take ~10 ms instead of microseconds (numerics are
    unchanged). Imported lazily: collecting this folder must not need torch first."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
