"""Controller: session changes become compute results; stale results are dropped. No Qt."""

from typing import Any

import numpy as np
import pytest
import torch

from softmax_lab.app.controller import Controller
from softmax_lab.app.executors import Job
from softmax_lab.app.session import Session


class ManualExecutor:
    """Holds jobs until the test runs them, in any order: a stand-in for a thread pool."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Job, Any, Any]] = []

    def submit(self, job, done, failed, progress=None):
        self.jobs.append((job, done, failed))

    def run(self, index: int = 0) -> None:
        job, done, failed = self.jobs.pop(index)
        try:
            value = job.run()
        except Exception as exc:
            failed(exc)
        else:
            done(value)


def reference_softmax(logits, temperature=1.0):
    return torch.softmax(torch.tensor(logits, dtype=torch.float64) / temperature, dim=0).numpy()


def test_start_computes_the_seed_example_inline():
    s = Session()
    Controller(s).start()
    p = s.analysis.result.probabilities[0]
    np.testing.assert_allclose(p, reference_softmax([2.0, 1.0, 0.1]), rtol=1e-6)
    assert s.analysis.loss is not None  # target 0 by default
    assert s.analysis.loss.loss == pytest.approx(-np.log(p[0]), rel=1e-6)


def test_every_intent_change_recomputes():
    s = Session()
    Controller(s).start()
    s.temperature = 0.5
    np.testing.assert_allclose(
        s.analysis.result.probabilities[0], reference_softmax([2.0, 1.0, 0.1], 0.5), rtol=1e-6
    )
    np.testing.assert_allclose(
        s.analysis.reference.probabilities[0], reference_softmax([2.0, 1.0, 0.1]), rtol=1e-6
    )
    s.dtype = "float16"
    assert s.analysis.result.dtype == "float16"
    s.set_vector([1000.0, 999.0, 998.0])
    assert bool(s.analysis.result.overflow.naive_overflow[0])


def test_stale_background_results_are_dropped_and_requests_coalesce():
    s = Session()
    pool = ManualExecutor()
    c = Controller(s, background=pool, inline_max_classes=2)  # 3 classes -> background
    c.start()
    assert len(pool.jobs) == 1 and s.busy
    for t in (0.5, 0.7, 0.9):  # a slider drag while the first job runs
        s.temperature = t
    # one in flight, at most one pending: no backlog
    assert len(pool.jobs) == 1
    pool.run()  # the first job (T=1) finishes late: dropped, the latest pending starts
    assert s.analysis is None
    assert len(pool.jobs) == 1
    pool.run()
    assert s.analysis.result.temperature == 0.9
    assert not s.busy


def test_compute_errors_become_messages_and_keep_the_last_result():
    s = Session()
    Controller(s).start()
    before = s.analysis
    s.device = "cuda"  # this machine has no GPU (CI) -> a readable error, no exception
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the error path is not reachable")
    assert s.message is not None and s.message.level == "error"
    assert "CUDA" in s.message.text
    assert s.analysis is before
    s.device = "cpu"
    assert s.message is None and s.analysis is not before
