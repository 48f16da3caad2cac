"""The per-tick shortcuts of compute_softmax, distribution_stats and the loss, against
independent references: torch's own ops in the dtype, and the float64 numpy formulas
they replaced (full float64 copies, elementwise masks, ``np.partition``).

Each shortcut is checked on hostile rows (inf, -inf, NaN, ties, one class, a masked
vocabulary), in every dtype, at temperatures far from 1, where the shortcut is taken
and where it falls back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmax_lab.compute.analysis import VectorRequest, analyse_vector
from softmax_lab.compute.losses import cross_entropy_from_result
from softmax_lab.compute.softmax import (
    _cannot_leave_range,
    _compute_prepared,
    _divide_keeping_fixed_points,
    _new_nonfinite,
    _plain_temperature,
    _stored_logits,
    compute_softmax,
)
from softmax_lab.compute.stats import distribution_stats
from softmax_lab.compute.types import SoftmaxRequest

DTYPES = ("float16", "bfloat16", "float32", "float64")
TEMPERATURES = (1e-300, 1e-30, 1e-3, 0.7, 1.0, 3.0, 1e30, 1e300)
ROWS = {
    "plain": [2.0, 1.0, 0.1, -3.0],
    "one class": [4.0],
    "ties": [5.0, 5.0, 1.0, 5.0],
    "masked": [-math.inf, 3.0, -math.inf, 2.0, -math.inf],
    "all masked": [-math.inf, -math.inf],
    "plus inf": [1.0, math.inf, 0.0],
    "nan": [1.0, math.nan, 2.0],
    "huge": [1e39, -1e39, 70000.0, 0.0],
    "tiny": [1e-45, -1e-310, 0.0, -0.0],
}


def rows_of(values: list[float]) -> np.ndarray:
    arr = np.array([values], dtype=np.float64)
    arr.setflags(write=False)  # as the session stores vectors
    return arr


def bits_equal(a: np.ndarray, b: np.ndarray) -> None:
    """Same values, NaN where NaN, the same signed zeros (a NaN's sign bit means nothing)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_array_equal(a64, b64)
    numbers = ~np.isnan(a64)
    np.testing.assert_array_equal(np.signbit(a64[numbers]), np.signbit(b64[numbers]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROWS)
def test_stored_logits_round_as_torch_casts(dtype, name):
    rows = rows_of(ROWS[name])
    expected = torch.from_numpy(np.array(rows)).to(getattr(torch, dtype))
    with np.errstate(all="raise"):  # the float32 shortcut must not warn on overflow
        got = _stored_logits(rows, getattr(torch, dtype))
    assert got.dtype == expected.dtype
    bits_equal(got.float().numpy(), expected.float().numpy())


@pytest.mark.parametrize("compute", ["float32", "float64"])
@pytest.mark.parametrize("temperature", (*TEMPERATURES, 5e-324, 1e-40, 3e38, 1.7e308))
def test_division_keeps_zero_and_minus_inf_with_or_without_masks(compute, temperature):
    diff = torch.tensor(
        [[0.0, -0.0, -math.inf, -1.0, -1e-30, -3e38, math.nan]], dtype=getattr(torch, compute)
    )
    keep = (diff == 0) | torch.isneginf(diff)
    expected = torch.where(keep, diff, diff / temperature)  # the formula it shortcuts
    # As compute_softmax divides: plainly where T and 1/T are normal in the compute type.
    if _plain_temperature(temperature, diff.dtype):
        got = diff / temperature
    else:
        got = _divide_keeping_fixed_points(diff, temperature)
    bits_equal(got.numpy(), expected.numpy())


EDGE_ROWS = {
    "float16": [[65504.0, -65504.0, 1.0], [60000.0, 0.0, -1.0], [1e-7, 0.0, -6e-8]],
    "bfloat16": [[3.3e38, -3.3e38, 1.0], [1e38, 0.0, -2.0], [1e-40, 0.0, 1e-38]],
    "float32": [[3.4e38, -3.4e38, 1.0], [1.7e38, 0.0, -2.0], [1e-45, 0.0, -1e-40]],
    "float64": [[1.7e308, -1.7e308, 1.0], [8e307, 0.0, -2.0], [5e-324, 0.0, -1e-310]],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "temperature",
    (*TEMPERATURES, 5e-324, 1e-45, 1e-40, 0.49, 0.5, 0.51, 1.99, 2.0, 2.01, 3e38, 1.7e308),
)
def test_the_no_pass_range_test_never_hides_a_broken_row(dtype, temperature):
    rows = np.array(
        EDGE_ROWS[dtype] + [ROWS[n] + [0.0] * (3 - len(ROWS[n])) for n in FINITE_ROWS if len(ROWS[n]) <= 3]
    )
    for row in rows:
        prepared = _compute_prepared(row[None, :], 1, dtype, "cpu")
        scaled = prepared.x / temperature
        info_max = float(torch.finfo(getattr(torch, dtype)).max)
        plain = _plain_temperature(temperature, prepared.diff.dtype)
        if _cannot_leave_range(prepared, temperature, plain, info_max):
            assert not _new_nonfinite(prepared, scaled).any(), (row, temperature)
            assert torch.isfinite(scaled).all()


FINITE_ROWS = ("plain", "one class", "ties", "tiny")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("names", [tuple(ROWS), FINITE_ROWS], ids=["every row", "finite rows"])
def test_new_nonfinite_rows_by_counts_match_the_elementwise_test(dtype, temperature, names):
    rows = np.array([ROWS[n] + [0.0] * (5 - len(ROWS[n])) for n in names])
    prepared = _compute_prepared(rows, 1, dtype, "cpu")
    assert prepared.all_finite == (names == FINITE_ROWS)
    x = prepared.x
    scaled = x / temperature
    elementwise = (~torch.isfinite(scaled) & torch.isfinite(x)) | (
        torch.isnan(scaled) & ~torch.isnan(x)
    )
    expected = elementwise.any(dim=-1, keepdim=True)
    assert torch.equal(_new_nonfinite(prepared, scaled), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("name", ROWS)
def test_result_arrays_are_torchs_values_in_a_type_that_holds_them(dtype, temperature, name):
    rows = rows_of(ROWS[name])
    result = compute_softmax(SoftmaxRequest(rows, temperature, -1, dtype, "cpu"))
    wanted = np.float64 if dtype == "float64" else np.float32
    for field in ("logits", "scaled", "probabilities", "log_probabilities", "naive_exp"):
        assert getattr(result, field).dtype == wanted, field
    x = torch.from_numpy(np.array(rows)).to(getattr(torch, dtype))
    scaled = x / temperature
    bits_equal(result.logits, x.float().numpy() if dtype != "float64" else x.numpy())
    bits_equal(result.scaled, scaled.double().numpy())
    bits_equal(result.naive_exp, torch.exp(scaled).double().numpy())
    rescued = (~torch.isfinite(scaled) & torch.isfinite(x)) | (torch.isnan(scaled) & ~torch.isnan(x))
    if not rescued.any():  # the T -> 0 rescue aside, torch's functions of x / T
        bits_equal(result.probabilities, torch.softmax(scaled, -1).double().numpy())
        bits_equal(result.log_probabilities, torch.log_softmax(scaled, -1).double().numpy())


def reference_stats(p: np.ndarray, logp: np.ndarray) -> dict[str, np.ndarray]:
    """The float64 formulas distribution_stats used before (full copies, np.partition)."""
    p, logp = np.asarray(p, np.float64), np.asarray(logp, np.float64)
    with np.errstate(all="ignore"):
        entropy = -np.where(p > 0, p * logp, 0.0).sum(axis=-1)
        nan_rows = np.isnan(p).any(axis=-1) | np.isnan(logp).any(axis=-1)
        entropy = np.where(nan_rows, np.nan, np.maximum(entropy, 0.0))
        clean = np.where(np.isnan(p), -np.inf, p)
        argmax = np.where(nan_rows, -1, np.argmax(clean, axis=-1))
        top1 = clean.max(axis=-1)
        top2 = np.partition(clean, -2, axis=-1)[..., -2] if p.shape[-1] > 1 else 0.0
        margin = np.where(nan_rows, np.nan, top1 - top2)
    return {
        "entropy_nats": entropy,
        "max_probability": np.where(nan_rows, np.nan, top1),
        "margin": margin,
        "argmax": argmax,
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", (1e-30, 0.7, 1e30))
@pytest.mark.parametrize("name", ROWS)
def test_stats_without_float64_copies_match_the_float64_formulas(dtype, temperature, name):
    result = compute_softmax(SoftmaxRequest(rows_of(ROWS[name]), temperature, -1, dtype, "cpu"))
    got = distribution_stats(result.probabilities, result.log_probabilities)
    expected = reference_stats(result.probabilities, result.log_probabilities)
    np.testing.assert_allclose(got.entropy_nats, expected["entropy_nats"], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got.max_probability, expected["max_probability"])
    np.testing.assert_array_equal(got.margin, expected["margin"])
    np.testing.assert_array_equal(got.argmax, expected["argmax"])
    assert got.argmax.dtype == np.int64 and got.margin.dtype == np.float64


def test_stats_of_many_float32_rows_with_masks_nan_and_ties():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 300)) * 4
    x[1, ::3] = -np.inf  # masked classes: 0 * log 0 terms
    x[2, 5] = np.nan
    x[3, [7, 90]] = 50.0  # a tie at the top: margin 0, first index
    x[4] = -np.inf  # a fully masked row: NaN
    logits = torch.from_numpy(x).float()
    p, logp = torch.softmax(logits, -1).numpy(), torch.log_softmax(logits, -1).numpy()
    got = distribution_stats(p, logp)
    expected = reference_stats(p, logp)
    np.testing.assert_allclose(got.entropy_nats, expected["entropy_nats"], rtol=1e-12)
    np.testing.assert_array_equal(got.margin, expected["margin"])
    np.testing.assert_array_equal(got.argmax, expected["argmax"])
    assert got.argmax[3] == 7 and got.margin[3] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", (0.0, 0.1, 1.0))
@pytest.mark.parametrize("temperature", (1e-3, 0.7, 40.0))
def test_loss_and_gradient_with_masked_classes_match_torch(dtype, smoothing, temperature):
    x = np.array([[-np.inf, 3.0, 1.0, -np.inf, 2.5, -1.0]])
    result = compute_softmax(SoftmaxRequest(x, temperature, -1, dtype, "cpu"))
    loss = cross_entropy_from_result(result, np.array([1]), label_smoothing=smoothing)
    logits = torch.from_numpy(x).to(getattr(torch, dtype)).double().requires_grad_(True)
    expected = F.cross_entropy(logits / temperature, torch.tensor([1]), label_smoothing=smoothing)
    expected_loss = float(expected.detach())
    if math.isfinite(expected_loss):
        expected.backward()
        tol = {"float64": 1e-12, "float32": 1e-5, "bfloat16": 2e-2, "float16": 2e-3}[dtype]
        assert loss.loss == pytest.approx(expected_loss, rel=tol, abs=tol)
        assert logits.grad is not None
        np.testing.assert_allclose(loss.gradient, logits.grad.numpy(), rtol=tol, atol=tol)
    else:  # smoothing puts mass on the masked classes: log 0 there, an infinite loss
        assert loss.loss == math.inf and expected_loss == math.inf
    assert loss.gradient.dtype == np.float64


def test_analysis_of_a_vocabulary_sized_float32_vector_matches_torch_float64():
    rng = np.random.default_rng(3)
    x = rng.normal(size=262_144) * 3
    x[::1000] = -np.inf
    x.setflags(write=False)
    analysis = analyse_vector(VectorRequest(x, 0.35, "float32", "cpu", target=17))
    stored = torch.from_numpy(np.array(x)).float().double()
    p = torch.softmax(stored / 0.35, -1).numpy()
    assert analysis.result.probabilities.dtype == np.float32
    np.testing.assert_allclose(analysis.result.probabilities[0], p, rtol=2e-5, atol=1e-12)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))
    assert analysis.result.stats.entropy_nats[0] == pytest.approx(entropy, rel=1e-5)
    assert analysis.result.stats.argmax[0] == int(np.argmax(p))
    assert analysis.loss is not None
    assert analysis.loss.loss == pytest.approx(-math.log(p[17]), rel=1e-5)


# -- the logits' T-independent facts, kept between calls (compute/softmax.py _prepare) ------


def read_only(values: np.ndarray) -> np.ndarray:
    kept = np.array(values, dtype=np.float64)
    kept.flags.writeable = False
    return kept


def assert_same_result(a, b) -> None:
    for name in (
        "logits", "scaled", "shifted", "exp_shifted", "sum_exp", "probabilities",
        "log_probabilities", "log_of_softmax", "naive_exp", "naive_sum", "naive_probabilities",
    ):
        bits_equal(getattr(a, name), getattr(b, name))
    for name in ("input_overflow", "naive_overflow", "naive_underflow", "stable_nan"):
        np.testing.assert_array_equal(getattr(a.overflow, name), getattr(b.overflow, name))
    assert a.notes == b.notes


def test_kept_facts_give_the_results_of_a_fresh_computation():
    rows = np.array([ROWS[n] + [0.0] * (5 - len(ROWS[n])) for n in ROWS])
    kept = read_only(rows)
    # The first call of each (dim, dtype) keeps the facts, the other temperatures reuse
    # them; a switch of only the dtype (first half) or only the dim (second half) must
    # not reuse the facts of the other one.
    order = [(d, t) for d in (1, 0) for t in DTYPES] + [(d, t) for t in DTYPES for d in (1, 0)]
    for dim, dtype in order:
        for temperature in TEMPERATURES:
            cached = compute_softmax(SoftmaxRequest(kept, temperature, dim, dtype, "cpu"))
            # A writable copy is never kept: computed from scratch every time.
            fresh = compute_softmax(SoftmaxRequest(rows.copy(), temperature, dim, dtype, "cpu"))
            assert_same_result(cached, fresh)


def test_an_array_made_writable_again_is_not_served_from_the_kept_facts():
    values = read_only([3.0, 1.0, 0.5])
    first = compute_softmax(SoftmaxRequest(values, 0.5, -1, "float32", "cpu"))
    values.flags.writeable = True
    values[0] = -7.0  # the same object, changed in place
    second = compute_softmax(SoftmaxRequest(values, 0.5, -1, "float32", "cpu"))
    expected = torch.softmax(torch.tensor([-7.0, 1.0, 0.5], dtype=torch.float32) / 0.5, dim=0)
    np.testing.assert_array_equal(second.probabilities[0], expected.numpy())
    assert first.stats.argmax[0] == 0 and second.stats.argmax[0] == 1


def test_results_cannot_write_into_the_kept_logits():
    result = compute_softmax(SoftmaxRequest(read_only([2.0, 1.0, 0.1]), 2.0, -1, "float32", "cpu"))
    with pytest.raises(ValueError, match="read-only"):
        result.logits[0, 0] = 99.0
