"""Distribution statistics against the float64 formulas (-sum p log p, exp(H), top-1 minus top-2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.stats import distribution_stats
from softmax_lab.compute.types import SoftmaxRequest


def softmax64(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 probabilities and log-probabilities by the textbook formula, per row."""
    z = x - x.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return np.exp(logp), logp


def entropy64(p: np.ndarray) -> np.ndarray:
    """-sum p log p with 0 log 0 = 0, from p alone."""
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(axis=-1)


rows_strategy = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 9)),
    elements=st.floats(-40.0, 40.0),
)


@given(x=rows_strategy)
def test_statistics_match_float64_formulas(x):
    p, logp = softmax64(x)
    s = distribution_stats(p, logp)
    h = entropy64(p)
    np.testing.assert_allclose(s.entropy_nats, h, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.entropy_bits, h / math.log(2.0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.perplexity, np.exp(h), rtol=1e-9)
    np.testing.assert_array_equal(s.max_probability, p.max(axis=-1))
    ordered = np.sort(p, axis=-1)
    expected_margin = ordered[:, -1] - ordered[:, -2] if p.shape[1] > 1 else np.ones(len(p))
    np.testing.assert_allclose(s.margin, expected_margin, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(s.argmax, np.argmax(p, axis=-1))
    assert s.argmax.dtype == np.int64
    assert np.all(s.entropy_nats >= 0) and np.all(s.entropy_nats <= math.log(x.shape[1]) + 1e-12)


@given(x=rows_strategy, dtype=st.sampled_from(["float16", "bfloat16", "float32", "float64"]))
def test_result_stats_describe_the_result_probabilities(x, dtype):
    r = compute_softmax(SoftmaxRequest(x, 1.0, -1, dtype, "cpu"))
    p = r.probabilities
    # The stats use the dtype's log-probabilities; -sum p log p of the rounded p
    # differs by about eps per class.
    tol = 8 * torch.finfo(getattr(torch, dtype)).eps * x.shape[1]
    np.testing.assert_allclose(r.stats.entropy_nats, entropy64(p), rtol=0, atol=tol)
    np.testing.assert_array_equal(r.stats.max_probability, p.max(axis=-1))


@pytest.mark.parametrize("c", [1, 2, 3, 10, 1000])
def test_uniform_has_entropy_log_c_and_perplexity_c(c):
    p = np.full((1, c), 1.0 / c)
    s = distribution_stats(p, np.log(p))
    assert s.entropy_nats[0] == pytest.approx(math.log(c), abs=1e-12)
    assert s.entropy_bits[0] == pytest.approx(math.log2(c), abs=1e-12)
    assert s.perplexity[0] == pytest.approx(c, rel=1e-12)
    assert s.margin[0] == (1.0 if c == 1 else 0.0)
    assert s.argmax[0] == 0  # ties: the first class, as numpy and torch.argmax pick


def test_one_hot_has_zero_entropy_even_with_minus_inf_log_probabilities():
    p = np.array([[0.0, 1.0, 0.0]])
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    s = distribution_stats(p, logp)
    assert s.entropy_nats[0] == 0.0 and s.entropy_bits[0] == 0.0
    assert s.perplexity[0] == 1.0
    assert s.max_probability[0] == 1.0 and s.margin[0] == 1.0
    assert s.argmax[0] == 1


def test_single_class_margin_is_one():
    s = distribution_stats(np.array([[1.0], [1.0]]), np.zeros((2, 1)))
    np.testing.assert_array_equal(s.margin, [1.0, 1.0])
    np.testing.assert_array_equal(s.entropy_nats, [0.0, 0.0])


def test_nan_rows_give_argmax_minus_one_and_nan_statistics():
    p = np.array([[np.nan, np.nan, np.nan], [0.2, 0.5, 0.3], [np.nan, 0.4, 0.6]])
    s = distribution_stats(p, np.log(p))  # log(NaN) is NaN, quietly
    np.testing.assert_array_equal(s.argmax, [-1, 1, -1])
    for field in ("entropy_nats", "entropy_bits", "perplexity", "max_probability", "margin"):
        values = getattr(s, field)
        assert np.isnan(values[[0, 2]]).all(), field
        assert np.isfinite(values[1]), field
    assert s.entropy_nats[1] == pytest.approx(entropy64(p[1]), rel=1e-12)
    assert s.margin[1] == pytest.approx(0.2, rel=1e-12)


def test_stats_from_a_stable_nan_row_of_a_result():
    r = compute_softmax(SoftmaxRequest(np.array([[math.inf, 0.0], [0.0, 0.0]]), device="cpu"))
    np.testing.assert_array_equal(r.stats.argmax, [-1, 0])
    assert np.isnan(r.stats.entropy_nats[0])
    assert r.stats.entropy_nats[1] == pytest.approx(math.log(2.0), rel=1e-7)


def test_underflowed_probability_uses_the_finite_log_probability():
    """p = 0 with log p finite (underflow in the dtype) contributes 0 to the entropy, not NaN."""
    r = compute_softmax(SoftmaxRequest(np.array([0.0, -200.0]), dtype="float32", device="cpu"))
    assert r.probabilities[0, 1] == 0.0 and np.isfinite(r.log_probabilities[0, 1])
    assert r.stats.entropy_nats[0] == 0.0
