"""Controller: session changes become compute results; stale results are dropped. No Qt."""

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmax_lab.app import controller as controller_module
from softmax_lab.app.controller import Controller
from softmax_lab.app.executors import Job
from softmax_lab.app.session import LoadedBatch, Session


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


@pytest.mark.parametrize("how", ["set_vector", "a row of a batch", "the logits field"])
def test_a_temperature_drag_reuses_the_t1_reference(how):
    """During a drag only T changes: the T = 1 reference (the ghost bars) is computed once.
    The session's vectors used to be reshaped views, which the compute core's cache
    refused, so it was recomputed on every tick."""
    s = Session()
    Controller(s).start()
    logits = np.random.default_rng(3).normal(size=(4, 50))
    if how == "set_vector":
        s.set_vector(logits[1])
    elif how == "a row of a batch":
        s.set_vector(logits[1:2].T)  # a column view of someone else's array
    else:
        s.logits = list(logits[1])
    assert s.logits.flags.owndata and not s.logits.flags.writeable
    s.temperature = 0.5
    first = s.analysis.reference
    for t in (0.7, 2.0, 3.5):
        s.temperature = t
        assert s.analysis.reference is first
        np.testing.assert_allclose(
            s.analysis.result.probabilities[0], reference_softmax(logits[1], t), rtol=1e-5
        )
    np.testing.assert_allclose(first.probabilities[0], reference_softmax(logits[1]), rtol=1e-5)
    logits[1, 0] += 5.0  # the caller's array changes: the session's copy does not
    s.temperature = 4.0
    assert s.analysis.reference is first


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


def test_only_a_worker_computes_the_loss_and_naive_path_before_handing_over(monkeypatch):
    import softmax_lab.compute.analysis as analysis_module

    calls: list[str] = []
    real = analysis_module.cross_entropy_from_result

    def counted(*args, **kwargs):
        calls.append("loss")
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis_module, "cross_entropy_from_result", counted)
    s = Session()
    s.target = 1
    pool = ManualExecutor()
    c = Controller(s, background=pool, inline_max_classes=2)  # 3 classes -> background
    c.start()
    pool.run()
    assert calls == ["loss"]  # in the job, not later when the loss tab reads it
    expected = F.cross_entropy(torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([1]))
    assert s.analysis.loss.loss == pytest.approx(float(expected), rel=1e-6)
    assert calls == ["loss"]
    c.inline_max_classes = 10  # inline: nothing shows the loss, nothing computes it
    s.temperature = 0.5
    assert s.analysis.result.temperature == 0.5 and calls == ["loss"]


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


def test_open_file_loads_a_batch_and_computes_its_statistics(tmp_path):
    data = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.save(tmp_path / "batch.npy", data)
    s = Session()
    c = Controller(s)
    c.start()
    c.open_file(tmp_path / "batch.npy")
    assert s.batch is not None and s.batch.data.shape == (5, 4)
    reference = torch.softmax(torch.from_numpy(data).double(), dim=1).numpy()
    np.testing.assert_allclose(s.batch_analysis.heatmap, reference, rtol=1e-5)
    assert "5 rows × 4 classes" in s.message.text
    assert "NaN" not in s.message.text
    c.select_row(3)
    np.testing.assert_array_equal(s.logits, data[3].astype(np.float64))
    assert s.selected_row == 3


def test_the_opened_message_counts_nan_and_inf_and_targets_keep_it(tmp_path):
    data = np.zeros((3, 1000), dtype=np.float32)
    data[0, :7] = np.nan
    data[2, 5:10] = -np.inf
    np.save(tmp_path / "masked.npy", data)
    s = Session()
    c = Controller(s)
    c.start()
    c.open_file(tmp_path / "masked.npy")
    assert "3 rows × 1000 classes" in s.message.text
    assert "12 values are NaN or infinite" in s.message.text
    assert s.batch.nonfinite_count == 12
    c.set_targets(np.array([0, 1, 2]))
    assert s.batch.nonfinite_count == 12 and s.batch.targets.tolist() == [0, 1, 2]


def test_a_container_with_several_arrays_asks_which_one(tmp_path):
    a = np.ones((2, 3), dtype=np.float32)
    b = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.savez(tmp_path / "two.npz", a=a, b=b)
    s = Session()
    c = Controller(s)
    asked = []

    def choose(path, arrays):
        asked.append(sorted(info.name for info in arrays))
        return "b"

    c.choose_array = choose
    c.open_file(tmp_path / "two.npz")
    assert asked == [["a", "b"]]
    np.testing.assert_array_equal(s.batch.data, b)
    c.choose_array = lambda path, arrays: None  # the person cancels
    before = s.batch
    c.open_file(tmp_path / "two.npz")
    assert s.batch is before


def test_a_bad_file_is_a_message_and_changes_nothing(tmp_path):
    bad = tmp_path / "garbage.npy"
    bad.write_bytes(b"\x93NUMPY garbage, not an array")
    s = Session()
    c = Controller(s)
    c.start()
    logits = s.logits.copy()
    c.open_file(bad)
    assert s.batch is None
    assert s.message.level == "error" and "garbage.npy" in s.message.text
    np.testing.assert_array_equal(s.logits, logits)


def test_cancelling_a_batch_job_is_silent_and_drops_its_result():
    s = Session()
    pool = ManualExecutor()
    c = Controller(s, background=pool)
    from softmax_lab.app.session import LoadedBatch

    s.batch = LoadedBatch(np.zeros((4, 3), dtype=np.float32), None)
    assert len(pool.jobs) == 1
    c.cancel("batch")
    pool.run()  # the job sees its cancel flag and stops
    assert s.batch_analysis is None
    assert s.message is None or s.message.level != "error"
    assert not s.busy


def test_stop_cancels_waiting_work_and_ignores_later_changes():
    s = Session()
    pool = ManualExecutor()
    c = Controller(s, background=pool, inline_max_classes=2)
    c.start()
    s.temperature = 2.0  # waits behind the running job
    c.stop()
    pool.run()  # the running job finishes: dropped, and the waiting one never starts
    assert pool.jobs == [] and s.analysis is None and not s.busy
    s.temperature = 3.0
    assert pool.jobs == []


def test_a_csv_label_column_gives_the_batch_its_targets(tmp_path):
    path = tmp_path / "scored.csv"
    path.write_text("cat,dog,bird,label\n2,1,0.1,0\n0.5,2.5,0.3,2\n", encoding="utf-8")
    s = Session()
    Controller(s).open_file(path)
    np.testing.assert_array_equal(s.batch.targets, [0, 2])
    x = torch.tensor([[2, 1, 0.1], [0.5, 2.5, 0.3]], dtype=torch.float64)
    expected = torch.nn.functional.cross_entropy(x, torch.tensor([0, 2])).item()
    assert s.batch_analysis.mean_cross_entropy == pytest.approx(expected, rel=1e-5)
    assert "2 targets" in s.message.text


def test_held_until_warm_up_then_torch_starts_in_the_background():
    """The window's first frame must not wait for torch: nothing is computed while held,
    and after warm_up even a small vector goes to the background until torch is ready."""
    s = Session()
    pool = ManualExecutor()
    c = Controller(s, background=pool)
    c.hold()
    c.start()
    s.temperature = 2.0
    assert pool.jobs == [] and s.analysis is None  # held: nothing ran, nothing queued
    answers = []
    c.warm_up(answers.append)
    assert len(pool.jobs) == 2 and not c.compute_ready  # torch start-up and the vector
    assert s.analysis is None  # the 3-class example was not computed inline
    pool.run(1)  # the vector finishes first
    np.testing.assert_allclose(
        s.analysis.result.probabilities[0], reference_softmax([2.0, 1.0, 0.1], 2.0), rtol=1e-6
    )
    pool.run(0)
    assert c.compute_ready and len(answers) == 1
    assert answers[0].available == torch.cuda.is_available()
    s.temperature = 0.5  # ready: small vectors are inline again
    assert pool.jobs == []
    assert s.analysis.result.temperature == 0.5


def test_a_large_batch_shows_its_first_rows_then_the_rest(monkeypatch):
    """First view of a big dim=1 batch: the first rows at once, then every row; a new
    temperature afterwards is one job; dim=0 (every column needs every row) has none."""
    monkeypatch.setattr(controller_module, "PREVIEW_ELEMENTS", 100)
    data = np.random.default_rng(4).normal(size=(50, 40))
    targets = np.random.default_rng(5).integers(0, 40, 50)
    s = Session()
    s.dtype = "float64"
    pool = ManualExecutor()
    c = Controller(s, background=pool)
    c.start()
    s.batch = LoadedBatch(data, None, targets=targets)
    assert len(pool.jobs) == 1 and s.batch_analysis is None
    pool.run()
    preview = s.batch_analysis
    assert preview.shape == (2, 40)  # 100 // 40 rows
    ref = torch.softmax(torch.from_numpy(data), dim=1).numpy()
    np.testing.assert_allclose(preview.heatmap, ref[:2], rtol=1e-6)  # float32 cells
    ce = F.cross_entropy(torch.from_numpy(data[:2]), torch.from_numpy(targets[:2]))
    assert preview.mean_cross_entropy == pytest.approx(float(ce), rel=1e-12)
    assert len(pool.jobs) == 1  # the rest follows on its own
    pool.run()
    assert s.batch_analysis.shape == (50, 40)
    np.testing.assert_allclose(s.batch_analysis.heatmap, ref, rtol=1e-6)
    assert pool.jobs == []
    s.temperature = 2.0  # already shown in full: one job, no preview
    assert len(pool.jobs) == 1
    pool.run()
    assert s.batch_analysis.shape == (50, 40) and pool.jobs == []
    s.batch_dim = 0
    pool.run()
    assert s.batch_analysis.shape == (50, 40) and s.batch_analysis.dim == 0
    assert pool.jobs == []


def test_a_change_during_the_preview_drops_it_and_starts_over(monkeypatch):
    monkeypatch.setattr(controller_module, "PREVIEW_ELEMENTS", 100)
    data = np.random.default_rng(6).normal(size=(50, 40))
    s = Session()
    s.dtype = "float64"
    pool = ManualExecutor()
    c = Controller(s, background=pool)
    c.start()
    s.batch = LoadedBatch(data, None)
    s.temperature = 3.0  # while the preview at T = 1 runs: it waits, coalesced
    pool.run()  # the stale T = 1 preview: dropped, and no full job from it
    assert s.batch_analysis is None
    pool.run()  # the T = 3 preview
    assert s.batch_analysis.shape == (2, 40) and s.batch_analysis.request.temperature == 3.0
    pool.run()
    assert s.batch_analysis.shape == (50, 40) and s.batch_analysis.request.temperature == 3.0
    assert pool.jobs == []


@pytest.mark.parametrize(
    ("shape", "dim", "rows"),
    [
        ((1000, 50_257), 1, None),
        ((5342, 50_257), 1, 333),
        ((5342, 50_257), 0, None),
        ((300, 262_144), 1, 64),
    ],
)
def test_preview_rows_only_for_large_dim1_batches(shape, dim, rows):
    assert controller_module.preview_rows(shape, dim) == rows
