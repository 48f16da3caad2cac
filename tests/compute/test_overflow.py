"""The overflow report, its verdict texts, and hostile inputs that must not warn.

``filterwarnings = error`` is on for the whole suite, so every test here that
merely runs a hostile input also proves no numpy RuntimeWarning escapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmax_lab.compute.dtypes import dtype_info
from softmax_lab.compute.losses import cross_entropy
from softmax_lab.compute.overflow import log_softmax_verdict, overflow_verdict
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.types import SoftmaxRequest, SoftmaxResult

DTYPES = ("float16", "bfloat16", "float32", "float64")
inf, nan = math.inf, math.nan


def run(logits, dtype: str = "float32", temperature: float = 1.0, dim: int = -1) -> SoftmaxResult:
    return compute_softmax(
        SoftmaxRequest(np.asarray(logits, dtype=np.float64), temperature, dim, dtype, "cpu")
    )


def t_exp(value: float, dtype: str) -> float:
    """torch.exp of ``value`` stored in ``dtype``: the independent witness."""
    return torch.exp(torch.tensor([value], dtype=torch.float64).to(getattr(torch, dtype))).item()


_BITS = {
    "float16": torch.int16,
    "bfloat16": torch.int16,
    "float32": torch.int32,
    "float64": torch.int64,
}


def margin(value: float, dtype: str) -> float:
    """One step of the dtype's grid at ``value`` (its ulp), from the bit pattern."""
    dt = getattr(torch, dtype)
    bits = torch.tensor([abs(value)], dtype=torch.float64).to(dt).view(_BITS[dtype])
    here, up = torch.cat([bits, bits + 1]).view(dt).to(torch.float64).tolist()
    return up - here


def stored(value: float, dtype: str) -> float:
    return torch.tensor([value], dtype=torch.float64).to(getattr(torch, dtype)).item()


# --- naive overflow exactly past the dtype's range ---------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_overflow_of_a_single_exp_switches_at_the_naive_limit(dtype):
    limit = dtype_info(dtype).naive_limit
    m = margin(limit, dtype)
    below, above = limit - m, limit + m
    assert math.isfinite(t_exp(below, dtype)) and math.isinf(t_exp(above, dtype))  # premise
    ok = run([0.0, below], dtype)
    bad = run([0.0, above], dtype)
    assert not ok.overflow.naive_overflow[0] and not ok.overflow.any_naive_failure
    assert bad.overflow.naive_overflow[0] and bad.overflow.any_naive_failure
    # The naive result is broken exactly where flagged; the stable one never is.
    assert np.isfinite(ok.naive_probabilities).all()
    np.testing.assert_array_equal(bad.overflow.naive_nonfinite[0], [False, True])
    assert np.isfinite(bad.probabilities).all()
    np.testing.assert_allclose(
        bad.probabilities.sum(), 1.0, atol=torch.finfo(getattr(torch, dtype)).eps
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_overflow_of_the_sum_switches_at_limit_minus_log2(dtype):
    """[s, s]: each exp fits, but 2 exp(s) > max once s > log(max / 2) = limit - ln 2."""
    limit = dtype_info(dtype).naive_limit
    sum_limit = limit - math.log(2.0)
    m = margin(limit, dtype)
    below, above = sum_limit - m, sum_limit + m
    assert stored(above, dtype) < limit  # premise: each term alone is finite
    assert math.isfinite(t_exp(above, dtype))
    ok = run([below, below], dtype)
    bad = run([above, above], dtype)
    assert np.isfinite(bad.naive_exp).all()
    assert not ok.overflow.naive_overflow[0]
    assert bad.overflow.naive_overflow[0]
    assert np.isinf(bad.naive_sum[0])
    # exp / inf = 0: finite but wrong; the flag is what tells the user.
    np.testing.assert_array_equal(bad.naive_probabilities[0], [0.0, 0.0])
    np.testing.assert_allclose(bad.probabilities[0], [0.5, 0.5])
    assert "sum" in overflow_verdict(bad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_underflow_when_every_logit_is_below_the_underflow_limit(dtype):
    u = dtype_info(dtype).underflow_limit
    m = margin(u, dtype)
    assert t_exp(u - m, dtype) == 0.0 and t_exp(u + m, dtype) > 0.0  # premise
    bad = run([u - m, u - 2 * m, u - 10.0], dtype)
    ok = run([u + m, u - m, u - 10.0], dtype)
    assert bad.overflow.naive_underflow[0] and bad.overflow.any_naive_failure
    assert not bad.overflow.naive_overflow[0]
    assert np.isnan(bad.naive_probabilities[0]).all()  # 0 / 0
    assert bad.overflow.naive_nonfinite[0].all()
    assert not ok.overflow.naive_underflow[0]
    # The stable path is fine: it shifts the top logit to 0.
    assert np.isfinite(bad.probabilities).all()
    assert "underflows" in overflow_verdict(bad)


def test_temperature_moves_the_naive_limit():
    assert run([1.0, 0.0], "float32", temperature=0.01).overflow.naive_overflow[0]  # x/T = 100
    assert not run([1.0, 0.0], "float32", temperature=0.02).overflow.naive_overflow[0]  # x/T = 50


def test_naive_flags_are_per_row():
    r = run([[1000.0, 0.0], [1.0, 2.0], [-1000.0, -1001.0]], "float32")
    np.testing.assert_array_equal(r.overflow.naive_overflow, [True, False, False])
    np.testing.assert_array_equal(r.overflow.naive_underflow, [False, False, True])


@pytest.mark.parametrize(
    ("row", "dtype"),
    [
        ([1000.0, 0.0, 3.0], "float32"),
        ([12.0, 0.0, -30.0], "float16"),
        ([-800.0, -801.0, 0.0], "float64"),
    ],
)
def test_naive_nonfinite_mask_matches_the_numpy_formula_in_the_dtype(row, dtype):
    np_dtype = np.dtype(dtype)
    x = np.asarray(row, dtype=np_dtype)
    with np.errstate(all="ignore"):
        e = np.exp(x)
        reference = ~np.isfinite(e / e.sum(dtype=np_dtype))
    np.testing.assert_array_equal(run(row, dtype).overflow.naive_nonfinite[0], reference)


# --- input overflow, log(softmax) versus log_softmax --------------------------------------------


def test_input_overflow_when_a_finite_logit_is_too_large_for_the_dtype():
    half = run([[70000.0, 0.0], [1.0, 2.0], [-70000.0, 1.0]], "float16")
    np.testing.assert_array_equal(half.overflow.input_overflow, [True, False, True])
    assert np.isposinf(half.logits[0, 0]) and np.isneginf(half.logits[2, 0])
    assert torch.isinf(torch.tensor(70000.0).to(torch.float16))  # what torch itself does
    assert any("float16" in note for note in half.notes)
    assert not run([70000.0, 0.0], "float32").overflow.input_overflow.any()
    # An inf that was already inf in the input is not an input overflow.
    assert not run([inf, 0.0], "float16").overflow.input_overflow.any()


@pytest.mark.parametrize(("row", "dtype"), [([0.0, -200.0], "float32"), ([0.0, -20.0], "float16")])
def test_log_of_softmax_is_neg_inf_where_log_softmax_is_finite(row, dtype):
    r = run(row, dtype)
    np.testing.assert_array_equal(r.overflow.log_of_softmax_neg_inf[0], [False, True])
    assert np.isneginf(r.log_of_softmax[0, 1])
    reference = torch.log_softmax(torch.tensor(row, dtype=torch.float64), dim=0).numpy()
    np.testing.assert_allclose(r.log_probabilities[0], reference, rtol=1e-3, atol=1e-3)
    text = log_softmax_verdict(r)
    assert "-inf" in text and dtype in text and _fmt_int(row[1]) in text


def _fmt_int(v: float) -> str:
    return str(int(v))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("row", "temperature"), [([0.0, -inf], 1.0), ([1.0, 0.0], 5e-324)])
def test_log_of_softmax_is_not_flagged_where_log_softmax_is_minus_inf_too(dtype, row, temperature):
    """A masked class (-inf logit) or the T -> 0 limit: -inf is the right answer for both."""
    r = run(row, dtype, temperature)
    assert np.isneginf(r.log_probabilities[0, 1]) and np.isneginf(r.log_of_softmax[0, 1])
    assert not r.overflow.log_of_softmax_neg_inf.any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_of_softmax_agrees_when_nothing_underflows(dtype):
    r = run([0.0, -5.0, 2.0], dtype)
    assert not r.overflow.log_of_softmax_neg_inf.any()
    assert "agree" in log_softmax_verdict(r)


# --- NaN in the stable softmax, as torch gives it ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_nan_rows_match_torch_softmax(dtype):
    rows = [[inf, 0.0, 1.0], [1.0, 2.0, 3.0], [-inf, -inf, -inf], [nan, 0.0, 1.0], [-inf, 0.0, 1.0]]
    r = run(rows, dtype)
    torch_nan = torch.isnan(
        torch.softmax(torch.tensor(rows, dtype=getattr(torch, dtype)), dim=-1)
    ).any(dim=-1)
    np.testing.assert_array_equal(r.overflow.stable_nan, torch_nan.numpy())
    np.testing.assert_array_equal(r.overflow.stable_nan, [True, False, True, True, False])
    # Finite rows in the same batch are untouched; -inf is an exact 0 (masking).
    assert np.isfinite(r.probabilities[[1, 4]]).all()
    assert r.probabilities[4, 0] == 0.0
    np.testing.assert_array_equal(r.stats.argmax, [-1, 2, -1, -1, 2])


@pytest.mark.parametrize(
    ("row", "word"),
    [([inf, 0.0], "+inf"), ([-inf, -inf], "-inf"), ([nan, 1.0], "NaN")],
)
def test_notes_explain_every_nan_row(row, word):
    r = run(row)
    assert r.overflow.stable_nan[0]
    assert r.notes and any(word in note for note in r.notes)
    verdict = overflow_verdict(r)
    assert "NaN" in verdict and any(note in verdict for note in r.notes)


def test_notes_explain_a_row_made_nan_by_storing_in_float16():
    r = run([70000.0, 1.0], "float16")
    assert r.overflow.stable_nan[0] and r.overflow.input_overflow[0]
    # Both why the value changed and why that makes the row NaN.
    assert any("float16" in note and "6.55e+04" in note for note in r.notes)
    assert any("inf - inf = NaN" in note for note in r.notes)
    assert "inf - inf = NaN" in overflow_verdict(r)
    # A finite logit stored as -inf is masking, and says so.
    masked = run([-70000.0, 1.0], "float16")
    assert any("probability is exactly 0" in note for note in masked.notes)


def test_finite_input_has_no_notes():
    assert run([2.0, 1.0, 0.1]).notes == ()


# --- verdict texts ------------------------------------------------------------------------------------


def test_overflow_verdict_names_dtype_and_numbers():
    text = overflow_verdict(run([1000.0, 999.0, 998.0], "float32"))
    assert "exp(1000) overflows float32" in text
    assert "88.72" in text
    assert "stable softmax is fine" in text


def test_overflow_verdict_in_float16_uses_its_own_limit():
    text = overflow_verdict(run([12.0, 0.0], "float16"))
    assert "exp(12) overflows float16" in text and "11.09" in text


def test_overflow_verdict_mentions_temperature():
    text = overflow_verdict(run([1.0, 0.0], "float32", temperature=0.01))
    assert "exp(100) overflows float32" in text and "T = 0.01" in text and "x/T" in text


def test_overflow_verdict_without_overflow_gives_the_headroom():
    text = overflow_verdict(run([2.0, 1.0, 0.1], "float32"))
    assert "No overflow" in text and "88.72" in text and "86.72" in text


def test_overflow_verdict_when_tiny_t_overflows_x_over_t_and_leaves_0_over_0():
    r = run([1.0, 0.0], "float32", temperature=1e-300)
    assert r.overflow.naive_overflow[0]
    text = overflow_verdict(r)
    assert "exp(x/T = 1e+300) overflows float32" in text and "nan" not in text


@pytest.mark.parametrize(("row", "temperature"), [([0.0, 0.0], 1e-300), ([0.0, -inf], 1e300)])
def test_overflow_verdict_never_says_agree_when_the_naive_result_is_nan(row, temperature):
    """T rounds to 0 or inf in float32 arithmetic: x/T is 0/0 or -inf/inf, nothing overflows."""
    r = run(row, "float32", temperature=temperature)
    assert np.isnan(r.naive_probabilities[0]).any()
    assert not r.overflow.stable_nan[0] and np.isfinite(r.probabilities[0]).all()
    text = overflow_verdict(r)
    assert "agree" not in text and "NaN" in text and "float32" in text


def test_verdicts_pick_the_requested_row():
    r = run([[1.0, 2.0], [1000.0, 0.0]], "float32")
    assert "No overflow" in overflow_verdict(r, row=0)
    assert "exp(1000)" in overflow_verdict(r, row=1)


# --- hostile inputs: data, never warnings ---------------------------------------------------------------

HOSTILE_ROWS = [
    [inf, 0.0, 1.0, 2.0],
    [-inf, -inf, -inf, -inf],
    [nan, 0.0, 1.0, 2.0],
    [-inf, 0.0, inf, nan],
    [1e308, -1e308, 0.0, 1.0],
    [1.7976931348623157e308, -1.7976931348623157e308, 0.0, 0.0],
    [5e-324, -5e-324, 0.0, 1e-310],
    [1e-40, -1e-45, 0.0, 0.0],
    [70000.0, -70000.0, 0.0, 1.0],
    [-1e4, -1e4 - 1.0, -1e4 - 2.0, -1e5],
    [0.0, -200.0, -20.0, -1e30],
    [1000.0, 999.0, 998.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 3.7, 1e-6, 1e-300, 5e-324, 1e300])
def test_hostile_batch_gives_data_not_warnings(dtype, temperature):
    r = run(HOSTILE_ROWS, dtype, temperature)
    rows = len(HOSTILE_ROWS)
    for field in ("input_overflow", "naive_overflow", "naive_underflow", "stable_nan"):
        assert getattr(r.overflow, field).shape == (rows,)
    for i in range(rows):
        text = overflow_verdict(r, i)
        assert text and log_softmax_verdict(r, i)
        assert "exp(nan)" not in text
        if r.overflow.naive_nonfinite[i].any():
            assert "agree" not in text, (i, text)
    # Rows without +inf / NaN / all -inf (as stored) are finite and normalised.
    x = r.logits
    clean = ~(np.isposinf(x).any(1) | np.isnan(x).any(1) | np.isneginf(x).all(1))
    np.testing.assert_array_equal(r.overflow.stable_nan, ~clean)
    assert np.isfinite(r.probabilities[clean]).all()
    np.testing.assert_allclose(r.probabilities[clean].sum(axis=1), 1.0, atol=1e-2)
    ce = cross_entropy(
        HOSTILE_ROWS, np.zeros(rows, dtype=np.int64), temperature=temperature, dtype=dtype
    )
    assert ce.per_row.shape == (rows,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.0, inf, -inf, nan, 1e308, -5e-324])
def test_single_class_gives_data_not_warnings(dtype, value):
    r = run([value], dtype)
    overflow_verdict(r)
    log_softmax_verdict(r)
    if math.isfinite(stored(value, dtype)):
        assert r.probabilities[0, 0] == 1.0 and r.stats.margin[0] == 1.0
    else:
        assert r.overflow.stable_nan[0] and np.isnan(r.stats.margin[0])
    cross_entropy([value], 0, dtype=dtype)


def test_an_llm_vocabulary_of_262144_classes_once():
    rng = np.random.default_rng(20261122)
    logits = rng.normal(0.0, 30.0, size=262_144)
    logits[5000] = 400.0  # beyond float32's naive limit
    logits[:1000] = -inf  # a masked block
    r = run(logits, "float32", temperature=0.7)
    assert r.num_classes == 262_144
    assert r.overflow.naive_overflow[0] and not r.overflow.stable_nan[0]
    reference = torch.softmax(torch.tensor(r.logits[0]) / 0.7, dim=0).numpy()
    np.testing.assert_allclose(r.probabilities[0], reference, rtol=0, atol=1e-6)
    assert r.stats.argmax[0] == 5000
    assert "exp(" in overflow_verdict(r) and log_softmax_verdict(r)
    ce = cross_entropy(logits, 5001, temperature=0.7)
    expected = -torch.log_softmax(torch.tensor(r.logits[0]) / 0.7, dim=0)[5001].item()
    assert ce.loss == pytest.approx(expected, rel=1e-4)
