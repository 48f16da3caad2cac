"""Cross-entropy, its gradient and the double-softmax value against torch.nn.functional and autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.losses import REDUCTIONS, cross_entropy

finite = st.floats(-20.0, 20.0, allow_nan=False)


@st.composite
def ce_case(draw):
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 6))
    x = draw(hnp.arrays(np.float64, (n, c), elements=finite))
    temperature = draw(st.floats(0.1, 10.0))
    smoothing = draw(st.sampled_from([0.0, 0.0, 0.1, 0.37, 1.0]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    if draw(st.booleans()):
        ignore_index = draw(st.sampled_from([-100, 0, 2]))
        choices = st.one_of(st.integers(0, c - 1), st.just(ignore_index))
        target = np.asarray(draw(st.lists(choices, min_size=n, max_size=n)), dtype=np.int64)
    else:
        ignore_index = -100
        w = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
        w[:, 0] += 1e-3  # keep every row's mass positive
        target = w / w.sum(axis=1, keepdims=True)
    return x, target, temperature, smoothing, reduction, ignore_index


def torch_reference(x, target, temperature, smoothing, reduction, ignore_index):
    """Loss (reduced and per row), autograd gradient and the double-softmax loss, all float64."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tt = torch.from_numpy(np.asarray(target))
    kwargs = dict(label_smoothing=smoothing, ignore_index=ignore_index)
    loss = F.cross_entropy(xt / temperature, tt, reduction=reduction, **kwargs)
    (loss.sum() if reduction == "none" else loss).backward()
    with torch.no_grad():
        per_row = F.cross_entropy(xt / temperature, tt, reduction="none", **kwargs)
        probs = torch.softmax(xt / temperature, dim=-1)
        double = F.cross_entropy(probs, tt, reduction=reduction, **kwargs)
    return loss.detach().numpy(), per_row.numpy(), xt.grad.numpy(), double.numpy()


@given(case=ce_case())
def test_matches_torch_cross_entropy_gradient_and_double_softmax(case):
    x, target, temperature, smoothing, reduction, ignore_index = case
    loss, per_row, grad, double = torch_reference(*case)
    r = cross_entropy(
        x,
        target,
        temperature=temperature,
        label_smoothing=smoothing,
        ignore_index=ignore_index,
        reduction=reduction,
        dtype="float64",
    )
    # For "none", `loss` is the sum (what the gradient is of).
    expected_loss = loss.sum() if reduction == "none" else loss
    np.testing.assert_allclose(r.loss, expected_loss, rtol=1e-10, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(r.per_row, per_row, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r.gradient, grad, rtol=1e-9, atol=1e-12)
    expected_double = double.sum() if reduction == "none" else double
    np.testing.assert_allclose(
        r.double_softmax_loss, expected_double, rtol=1e-10, atol=1e-12, equal_nan=True
    )
    assert (
        r.reduction == reduction and r.temperature == temperature and r.label_smoothing == smoothing
    )


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=finite),
    data=st.data(),
    temperature=st.floats(0.1, 10.0),
)
def test_loss_is_minus_log_softmax_at_the_target(x, data, temperature):
    n, c = x.shape
    target = np.asarray(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    r = cross_entropy(x, target, temperature=temperature, reduction="none", dtype="float64")
    logp = torch.log_softmax(torch.from_numpy(x) / temperature, dim=-1).numpy()
    np.testing.assert_allclose(r.per_row, -logp[np.arange(n), target], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(r.target_distribution, np.eye(c)[target])


@given(x=hnp.arrays(np.float64, st.integers(1, 8), elements=finite), data=st.data())
def test_gradient_is_softmax_minus_one_hot_for_one_row_at_t1(x, data):
    target = data.draw(st.integers(0, len(x) - 1))
    r = cross_entropy(x, target, dtype="float64")
    e = np.exp(x - x.max())
    expected = e / e.sum()
    expected[target] -= 1.0
    np.testing.assert_allclose(r.gradient, expected[None, :], rtol=1e-12, atol=1e-14)


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 5)), elements=finite),
    data=st.data(),
)
def test_double_softmax_equals_cross_entropy_of_softmax_outputs(x, data):
    n, c = x.shape
    target = np.asarray(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    r = cross_entropy(x, target, dtype="float64")
    probs = torch.softmax(torch.from_numpy(x), dim=-1)
    expected = F.cross_entropy(probs, torch.from_numpy(target)).item()
    assert r.double_softmax_loss == pytest.approx(expected, rel=1e-12)
    # The pitfall squashes the loss: softmax outputs lie in [0, 1], so it never exceeds log C + 1.
    assert r.double_softmax_loss <= math.log(c) + 1.0 + 1e-12


@settings(max_examples=30)
@given(
    x=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)), elements=st.floats(-8, 8)
    ),
    data=st.data(),
    smoothing=st.sampled_from([0.0, 0.2]),
)
def test_float32_matches_torch_float32(x, data, smoothing):
    n, c = x.shape
    target = np.asarray(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    r = cross_entropy(x, target, label_smoothing=smoothing, dtype="float32")
    x32 = torch.from_numpy(x).float()
    expected = F.cross_entropy(x32, torch.from_numpy(target), label_smoothing=smoothing).item()
    assert r.loss == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_gradient_keeps_the_target_mass_like_autograd():
    """Probability targets are accepted when they sum to 1 within 1e-3; the gradient must still be exact."""
    x = np.array([[1.0, 2.0, 3.0]])
    q = np.array([[0.2, 0.3, 0.4995]])
    _, _, grad, _ = torch_reference(x, q, 1.5, 0.0, "sum", -100)
    r = cross_entropy(x, q, temperature=1.5, reduction="sum", dtype="float64")
    np.testing.assert_allclose(r.gradient, grad, rtol=1e-12)


def test_single_vector_with_an_int_target_is_unbatched_torch():
    x = np.array([2.0, 1.0, 0.1])
    r = cross_entropy(x, 0, dtype="float64")
    expected = F.cross_entropy(torch.from_numpy(x), torch.tensor(0)).item()
    assert r.loss == pytest.approx(expected, rel=1e-14)
    assert r.loss == pytest.approx(-math.log(0.6590011388859679), rel=1e-12)
    assert r.per_row.shape == (1,) and r.gradient.shape == (1, 3)


def test_whole_float_indices_are_treated_as_class_indices():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 0.0, 1.0]])
    as_float = cross_entropy(x, [2.0, 0.0], dtype="float64")
    as_int = cross_entropy(x, np.array([2, 0]), dtype="float64")
    assert as_float.loss == as_int.loss


def test_all_rows_ignored_gives_nan_mean_and_zero_gradient_like_torch():
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, 1.0]])
    loss, _, grad, _ = torch_reference(x, np.array([-100, -100]), 1.0, 0.0, "mean", -100)
    r = cross_entropy(x, [-100, -100], dtype="float64")
    assert math.isnan(r.loss) and math.isnan(float(loss))
    np.testing.assert_array_equal(r.gradient, grad)
    np.testing.assert_array_equal(r.ignored, [True, True])


@pytest.mark.parametrize(
    ("logits", "target", "kwargs", "message"),
    [
        (
            [[1.0, 2.0, 3.0]],
            [3],
            {},
            r"target class 3 is out of range: there are 3 classes \(0..2\)",
        ),
        ([[1.0, 2.0, 3.0]], [-1], {}, r"target class -1 is out of range"),
        ([[1.0, 2.0], [3.0, 4.0]], [0, 1, 1], {}, r"3 target indices for 2 rows"),
        ([[1.0, 2.0]], [0], {"label_smoothing": 1.5}, r"label smoothing must be between 0 and 1"),
        ([[1.0, 2.0]], [0], {"label_smoothing": -0.1}, r"label smoothing must be between 0 and 1"),
        ([[1.0, 2.0]], [0], {"reduction": "avg"}, r"reduction must be one of mean, sum, none"),
        ([[1.0, 2.0]], [[0.3, 0.3]], {}, r"must sum to 1"),
        ([[1.0, 2.0]], [[1.5, -0.5]], {}, r"finite and non-negative"),
        ([[1.0, 2.0]], [[0.5, 0.25, 0.25]], {}, r"shape \(1, 2\)"),
        ([[[1.0, 2.0]]], [0], {}, r"\(C,\) or \(N, C\) logits"),
        ([[1.0, 2.0]], ["cat"], {}, r"class indices or class probabilities"),
        ([[1.0, 2.0]], [0], {"temperature": 0.0}, r"temperature"),
    ],
)
def test_bad_arguments_are_refused_with_readable_messages(logits, target, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        cross_entropy(logits, target, **kwargs)


def test_ignored_rows_have_zero_loss_and_gradient():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    r = cross_entropy(x, [2, 7, 0], ignore_index=7, dtype="float64")
    np.testing.assert_array_equal(r.ignored, [False, True, False])
    assert r.per_row[1] == 0.0 and not r.gradient[1].any()
