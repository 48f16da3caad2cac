"""analyse_vector: what the window shows for one vector, against torch in float64."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmax_lab.compute.analysis import VectorRequest, analyse_vector
from softmax_lab.compute.device import torch_threads


def read_only(values: list[float]) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def torch_softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.array(values)) / temperature, dim=-1).numpy()


def test_result_reference_and_loss_match_torch():
    x = read_only([2.0, 1.0, 0.1, -3.0])
    analysis = analyse_vector(VectorRequest(x, 0.7, "float64", "cpu", target=2))
    np.testing.assert_allclose(analysis.result.probabilities[0], torch_softmax(x, 0.7), rtol=1e-12)
    np.testing.assert_allclose(
        analysis.reference.probabilities[0], torch_softmax(x, 1.0), rtol=1e-12
    )
    expected = F.cross_entropy(torch.from_numpy(np.array(x))[None] / 0.7, torch.tensor([2]))
    assert analysis.loss is not None
    assert analysis.loss.loss == pytest.approx(float(expected), rel=1e-12)


def test_a_temperature_drag_reuses_the_t1_reference_of_the_same_vector():
    x = read_only([2.0, 1.0, 0.1])
    first = analyse_vector(VectorRequest(x, 0.5, "float32", "cpu"))
    second = analyse_vector(VectorRequest(x, 2.0, "float32", "cpu"))
    assert second.reference is first.reference
    assert second.result.temperature == 2.0
    # Another dtype is another reference, in that dtype.
    half = analyse_vector(VectorRequest(x, 2.0, "float16", "cpu"))
    assert half.reference is not first.reference and half.reference.dtype == "float16"


def test_the_reference_follows_a_new_vector_with_or_without_caching():
    a = read_only([2.0, 1.0, 0.1])
    analyse_vector(VectorRequest(a, 0.5, "float64", "cpu"))
    b = read_only([0.0, 5.0, 1.0])  # a new read-only vector: recomputed
    got = analyse_vector(VectorRequest(b, 0.5, "float64", "cpu")).reference.probabilities[0]
    np.testing.assert_allclose(got, torch_softmax(b, 1.0), rtol=1e-12)
    # A writable array may change in place between calls: never served from the cache.
    w = np.array([2.0, 1.0, 0.1])
    analyse_vector(VectorRequest(w, 0.5, "float64", "cpu"))
    w[0] = -4.0
    got = analyse_vector(VectorRequest(w, 0.5, "float64", "cpu")).reference.probabilities[0]
    np.testing.assert_allclose(got, torch_softmax(w, 1.0), rtol=1e-12)
    # A read-only view of a writable array can change too.
    base = np.array([1.0, 2.0, 3.0])
    view = base[:]
    view.setflags(write=False)
    analyse_vector(VectorRequest(view, 0.5, "float64", "cpu"))
    base[2] = -1.0
    got = analyse_vector(VectorRequest(view, 0.5, "float64", "cpu")).reference.probabilities[0]
    np.testing.assert_allclose(got, torch_softmax(view, 1.0), rtol=1e-12)


def test_torch_threads_are_restored_after_each_call():
    with torch_threads(2):
        analyse_vector(VectorRequest(read_only([1.0, 2.0]), 3.0, "float32", "cpu"))
        assert torch.get_num_threads() == 2
    seen: list[int] = []

    def inside() -> None:
        with torch_threads(1):
            seen.append(torch.get_num_threads())

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join()
    assert seen == [1]


def test_the_loss_is_computed_once_on_first_read_and_matches_torch(monkeypatch):
    import softmax_lab.compute.analysis as analysis_module

    calls: list[int] = []
    real = analysis_module.cross_entropy_from_result

    def counted(*args, **kwargs):
        calls.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis_module, "cross_entropy_from_result", counted)
    x = read_only([2.0, 1.0, 0.1, -3.0])
    analysis = analyse_vector(
        VectorRequest(x, 1.7, "float64", "cpu", target=1, label_smoothing=0.1)
    )
    assert calls == []  # a temperature tick with the loss tab hidden pays nothing for it
    first = analysis.loss
    assert first is analysis.loss  # kept (compute.kept.Once; test_kept.py races it)
    assert len(calls) == 1
    logits = torch.from_numpy(np.array(x))[None] / 1.7
    expected = F.cross_entropy(logits, torch.tensor([1]), label_smoothing=0.1)
    assert first is not None and first.loss == pytest.approx(float(expected), rel=1e-12)
    # The loss is of this analysis's own result, whatever came after it.
    analyse_vector(VectorRequest(x, 0.2, "float64", "cpu", target=3))
    assert analysis.loss is first and first.temperature == 1.7


def test_a_bad_target_is_refused_when_analysed_not_when_the_loss_is_read():
    from softmax_lab.compute.errors import InvalidInputError

    x = read_only([2.0, 1.0, 0.1])
    for target in (3, -1, 10**9):
        with pytest.raises(InvalidInputError, match=f"target class {target} is out of range"):
            analyse_vector(VectorRequest(x, 1.0, "float32", "cpu", target=target))
    with pytest.raises(InvalidInputError, match="label smoothing"):
        analyse_vector(VectorRequest(x, 1.0, "float32", "cpu", target=0, label_smoothing=1.5))
    # torch's ignore_index leaves the row out: loss 0, no gradient.
    ignored = analyse_vector(VectorRequest(x, 1.0, "float32", "cpu", target=-100)).loss
    assert ignored is not None and ignored.per_row[0] == 0.0
    assert not ignored.gradient.any()
    assert analyse_vector(VectorRequest(x, 1.0, "float32", "cpu")).loss is None


def test_the_verdicts_are_written_when_first_read(monkeypatch):
    import softmax_lab.compute.analysis as analysis_module

    calls: list[str] = []
    real = analysis_module.overflow_verdict

    def counted(result):
        calls.append("overflow")
        return real(result)

    monkeypatch.setattr(analysis_module, "overflow_verdict", counted)
    x = read_only([1000.0, 0.0, -1.0])
    analysis = analyse_vector(VectorRequest(x, 1.0, "float32", "cpu"))
    assert calls == []
    assert "exp(1000) overflows float32" in analysis.overflow_text
    # exp(-1000) underflows to 0: log(softmax) is -inf for both smaller classes.
    assert "log(softmax(x)) is -inf for 2 class(es)" in analysis.log_softmax_text
    assert calls == ["overflow"]
    assert analysis.overflow_text.startswith("exp(1000)")
    assert calls == ["overflow"]
