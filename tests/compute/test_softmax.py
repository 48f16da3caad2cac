"""Stable softmax / log-softmax against float64 references (numpy formulas, torch's own functions).

References are computed from the logits *as stored in the dtype* (rounded by
torch, not by the code under test): the lab's job is to compute well in the
dtype, not to undo the rounding of its input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.softmax import compute_softmax, log_softmax, naive_softmax, softmax
from softmax_lab.compute.types import SoftmaxRequest

DTYPES = ("float16", "bfloat16", "float32", "float64")


def eps(dtype: str) -> float:
    return float(torch.finfo(getattr(torch, dtype)).eps)


def stored(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` by torch, back in float64 (exact upcast)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    return t.to(getattr(torch, dtype)).to(torch.float64).numpy()


def shapes_and_dims(max_dims: int = 3) -> st.SearchStrategy[tuple[tuple[int, ...], int]]:
    return hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=5).flatmap(
        lambda shape: st.tuples(st.just(shape), st.integers(-len(shape), len(shape) - 1))
    )


@st.composite
def logits_case(draw, lo: float = -30.0, hi: float = 30.0, max_dims: int = 3):
    shape, dim = draw(shapes_and_dims(max_dims))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False)))
    return x, dim


temperatures = st.floats(0.05, 20.0)
dtypes = st.sampled_from(DTYPES)


# --- the tutorial example ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_example_in_every_dtype(dtype):
    p = softmax([2.0, 1.0, 0.1], dtype=dtype)
    np.testing.assert_allclose(p, [0.659, 0.242, 0.099], atol=5e-4 + eps(dtype))
    reference = torch.softmax(torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64), dim=0).numpy()
    np.testing.assert_allclose(p, reference, atol=2 * eps(dtype))


# --- normalisation and agreement with torch -----------------------------------------------


@given(case=logits_case(), temperature=temperatures, dtype=dtypes)
def test_rows_sum_to_one_along_any_dim(case, temperature, dtype):
    x, dim = case
    p = softmax(x, temperature, dim=dim, dtype=dtype)
    assert p.shape == x.shape
    c = x.shape[dim]
    # Each stored probability is rounded once (relative error eps/2); float32
    # and float64 also sum in the dtype.
    np.testing.assert_allclose(p.sum(axis=dim), 1.0, atol=(1 + c) * eps(dtype))
    assert np.all(p >= 0)


@given(case=logits_case(lo=-1000.0, hi=1000.0), temperature=temperatures, dtype=dtypes)
def test_matches_float64_torch_softmax_of_scaled_logits(case, temperature, dtype):
    x, dim = case
    xs = stored(x, dtype)
    reference = torch.softmax(torch.from_numpy(xs) / temperature, dim=dim).numpy()
    p = softmax(x, temperature, dim=dim, dtype=dtype)
    # The stable path's error in p_i is about eps * p_i * |x_i - max| / T <= eps / e
    # per term, plus the share of the normalising sum: bounded by (1 + C) eps. Like
    # torch, the lab divides x by T in the dtype, rounding each x / T by up to half an
    # ulp of |x / T| (float16 [853, 870, 0] at T = 5.5 moves p by 0.004); a change d in
    # the exponents moves each p_i by at most p_i * 2d. The float64 reference rounds
    # x / T itself (~eps64 * |x / T| in the exponent).
    rounding = 2 * eps(dtype) * float(np.max(np.abs(xs))) / temperature
    reference_error = 4 * eps("float64") * float(np.max(np.abs(xs))) / temperature
    atol = (1 + x.shape[dim]) * eps(dtype) + rounding + reference_error
    np.testing.assert_allclose(p, reference, rtol=0, atol=atol)


@given(
    case=logits_case(lo=-8.0, hi=8.0),
    power=st.integers(-3, 3),
    dtype=dtypes,
)
def test_matches_torch_softmax_in_the_same_dtype(case, power, dtype):
    """T a power of two keeps x / T exact in the dtype, so torch's own dtype result is a fair reference."""
    x, dim = case
    temperature = 2.0**power
    xt = torch.from_numpy(x).to(getattr(torch, dtype))
    reference = torch.softmax(xt / temperature, dim=dim).to(torch.float64).numpy()
    p = softmax(x, temperature, dim=dim, dtype=dtype)
    np.testing.assert_allclose(p, reference, rtol=0, atol=(1 + x.shape[dim]) * eps(dtype))


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_2d_dims_normalise_the_right_axis(dim, dtype):
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    p = softmax(x, dim=dim, dtype=dtype)
    reference = torch.softmax(torch.from_numpy(stored(x, dtype)), dim=dim).numpy()
    np.testing.assert_allclose(p, reference, atol=4 * eps(dtype))
    np.testing.assert_allclose(p.sum(axis=dim), 1.0, atol=4 * eps(dtype))


def test_3d_middle_dim_maps_rows_back_to_the_input_layout():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 0.37 - 3.0
    result = compute_softmax(SoftmaxRequest(x, 1.3, dim=1, dtype="float64", device="cpu"))
    assert result.dim == 1
    assert result.probabilities.shape == (8, 3)
    reference = torch.softmax(torch.from_numpy(x) / 1.3, dim=1).numpy()
    np.testing.assert_allclose(result.in_input_layout(result.probabilities), reference, rtol=1e-12)


# --- invariances ------------------------------------------------------------------------------


@given(
    k=st.lists(st.integers(-64, 64), min_size=1, max_size=8),
    shift=st.integers(-16, 16),
    temperature=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]),
    dtype=dtypes,
)
def test_shift_invariance_is_exact_when_the_shift_is_exact(k, shift, temperature, dtype):
    """Quarter-steps up to |32| are exact in every dtype, and so is dividing them by a
    power of two: x + c and (x + c) / T lose nothing, so softmax must not change."""
    x = np.asarray(k, dtype=np.float64) / 4
    np.testing.assert_array_equal(stored(x + shift, dtype), x + shift)  # premise
    a = softmax(x, temperature, dtype=dtype)
    b = softmax(x + shift, temperature, dtype=dtype)
    np.testing.assert_array_equal(a, b)


@given(
    x=hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-50, 50)),
    shift=st.floats(-1e6, 1e6),
    temperature=temperatures,
)
def test_shift_invariance_float64(x, shift, temperature):
    a = softmax(x, temperature, dtype="float64")
    b = softmax(x + shift, temperature, dtype="float64")
    # x + c rounds by up to ulp(c); that moves each exponent by about |c| eps / T.
    tol = 8 * eps("float64") * (1 + abs(shift)) / temperature * len(x)
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@given(case=logits_case(lo=-100.0, hi=100.0), temperature=temperatures)
def test_log_softmax_matches_torch_and_exponentiates_to_softmax(case, temperature):
    x, dim = case
    logp = log_softmax(x, temperature, dim=dim, dtype="float64")
    reference = torch.log_softmax(torch.from_numpy(x) / temperature, dim=dim).numpy()
    np.testing.assert_allclose(logp, reference, rtol=1e-12, atol=1e-12)
    p = softmax(x, temperature, dim=dim, dtype="float64")
    np.testing.assert_allclose(np.exp(logp), p, rtol=1e-12, atol=1e-300)


@given(case=logits_case(lo=-30.0, hi=30.0), temperature=temperatures, dtype=dtypes)
def test_log_softmax_in_low_precision_dtypes(case, temperature, dtype):
    x, dim = case
    xs = stored(x, dtype)
    reference = torch.log_softmax(torch.from_numpy(xs) / temperature, dim=dim).numpy()
    logp = log_softmax(x, temperature, dim=dim, dtype=dtype)
    c = x.shape[dim]
    # Like torch, the lab divides x by T in the dtype, so each x / T is rounded by up to
    # half an ulp of |x / T| (this dominates in float16); the float64 reference rounds
    # x / T too (~eps64 * |x / T|), which matters only when the dtype is float64.
    rounding = 2 * eps(dtype) * float(np.max(np.abs(xs))) / temperature
    reference_error = 4 * eps("float64") * float(np.max(np.abs(xs))) / temperature
    atol = (1 + c) * eps(dtype) + rounding + reference_error
    np.testing.assert_allclose(logp, reference, rtol=2 * eps(dtype), atol=atol)
    p = softmax(x, temperature, dim=dim, dtype=dtype)
    np.testing.assert_allclose(np.exp(logp), p, rtol=0, atol=(2 + c) * eps(dtype))


@given(case=logits_case(lo=-30.0, hi=30.0), temperature=temperatures, dtype=dtypes)
def test_probabilities_are_torchs_own_in_the_dtype(case, temperature, dtype):
    """What a person sees for a dtype is what `torch.softmax(x / T)` gives in that dtype."""
    x, dim = case
    t = torch.from_numpy(stored(x, dtype)).to(getattr(torch, dtype)) / temperature
    result = compute_softmax(SoftmaxRequest(x, temperature, dim=dim, dtype=dtype, device="cpu"))
    # Compared with the classes on the last axis: torch's own kernels for other dims
    # may round float16 differently by an ulp (its layout, not the math).
    last = torch.movedim(t, dim, -1).contiguous()
    expected_p = torch.movedim(torch.softmax(last, -1), -1, dim).to(torch.float64).numpy()
    expected_logp = torch.movedim(torch.log_softmax(last, -1), -1, dim).to(torch.float64).numpy()
    np.testing.assert_array_equal(result.in_input_layout(result.probabilities), expected_p)
    np.testing.assert_array_equal(result.in_input_layout(result.log_probabilities), expected_logp)


def test_naive_softmax_equals_float64_formula_when_nothing_overflows():
    x = np.array([[2.0, 1.0, 0.1], [-3.0, 5.5, 0.0]])
    e = np.exp(x / 0.7)
    reference = e / e.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(naive_softmax(x, 0.7, dtype="float64"), reference, rtol=1e-13)


# --- temperature ---------------------------------------------------------------------------------


def _entropy64(x: np.ndarray, temperature: float) -> float:
    """-sum p log p from the float64 formula, with 0 log 0 = 0."""
    z = (x - x.max()) / temperature
    logp = z - math.log(np.exp(z).sum())
    p = np.exp(logp)
    return float(-(p * logp).sum())


@given(
    x=hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-50, 50)),
    t1=st.floats(0.01, 100.0),
    t2=st.floats(0.01, 100.0),
)
def test_entropy_grows_with_temperature(x, t1, t2):
    t1, t2 = min(t1, t2), max(t1, t2)
    h1 = compute_softmax(SoftmaxRequest(x, t1, dtype="float64", device="cpu")).stats.entropy_nats[0]
    h2 = compute_softmax(SoftmaxRequest(x, t2, dtype="float64", device="cpu")).stats.entropy_nats[0]
    assert h1 <= h2 + 1e-9
    assert h1 == pytest.approx(_entropy64(x, t1), abs=1e-9)


@st.composite
def argmax_case(draw):
    # Integers (and -inf, a masked class) are exact or rounded by torch into the
    # dtype; distinct stored values differ by >= 1, so at T <= 1e-6 the gap is
    # >= 1e6 temperatures and the limit is reached exactly.
    values = st.one_of(st.integers(-2048, 2048).map(float), st.just(-math.inf))
    row = draw(st.lists(values, min_size=1, max_size=7))
    if all(v == -math.inf for v in row):
        row[0] = 0.0
    if draw(st.booleans()):  # force a tie at the top
        row = row + [max(row)]
    return np.asarray(row)


@given(
    x=argmax_case(),
    temperature=st.sampled_from([1e-6, 1e-30, 1e-300, 5e-324]),
    dtype=dtypes,
)
def test_temperature_to_zero_gives_the_argmax_one_hot_and_never_nan(x, temperature, dtype):
    xs = stored(x, dtype)
    top = xs == xs.max()
    expected = top / top.sum()
    p = softmax(x, temperature, dtype=dtype)
    assert not np.isnan(p).any()
    np.testing.assert_allclose(p, expected, rtol=0, atol=eps(dtype))
    logp = log_softmax(x, temperature, dtype=dtype)
    assert not np.isnan(logp).any()
    np.testing.assert_allclose(logp[top], -math.log(top.sum()), atol=2 * eps(dtype))
    # Finite or -inf (float16 overflows), but at least a (gap >= 1) / T below the top.
    assert np.all(logp[~top] <= -0.5 / temperature)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1e-6, 1e-30, 1e-300])
def test_temperature_to_zero_batch_with_ties(dtype, temperature):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [5.0, -1.0, 2.0, 4.0], [7.0, 7.0, 7.0, 7.0]])
    expected = np.array([[0, 0.5, 0.5, 0], [1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    result = compute_softmax(SoftmaxRequest(x, temperature, dtype=dtype, device="cpu"))
    np.testing.assert_array_equal(result.probabilities, expected)
    assert not result.overflow.stable_nan.any()
    np.testing.assert_array_equal(result.stats.argmax, [1, 0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_temperature_gives_uniform_over_unmasked_classes(dtype):
    """T = 1e300 rounds to inf in float32 arithmetic; -inf / inf must not become NaN."""
    x = np.array([3.0, -math.inf, 1.0, 2.0])
    p = softmax(x, 1e300, dtype=dtype)
    np.testing.assert_allclose(p, [1 / 3, 0, 1 / 3, 1 / 3], atol=eps(dtype))


@pytest.mark.parametrize("temperature", [0.0, -0.0, -1.0, math.inf, -math.inf, math.nan])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(InvalidInputError, match=r"temperature must be finite and greater than 0"):
        softmax([1.0, 2.0], temperature)


@pytest.mark.parametrize("temperature", ["warm", None, [1.0]])
def test_temperature_must_be_a_number(temperature):
    with pytest.raises(InvalidInputError, match=r"temperature must be a number"):
        softmax([1.0, 2.0], temperature)


# --- the result's intermediate steps -----------------------------------------------------------


def test_result_steps_are_consistent_with_float64_formulas():
    x = np.array([[2.0, 1.0, 0.1], [10.0, -4.0, 3.5]])
    t = 0.8
    r = compute_softmax(SoftmaxRequest(x, t, dtype="float64", device="cpu"))
    np.testing.assert_allclose(r.scaled, x / t, rtol=1e-15)
    np.testing.assert_allclose(r.shifted, (x - x.max(axis=1, keepdims=True)) / t, rtol=1e-15)
    assert np.all(r.shifted <= 0)
    np.testing.assert_allclose(r.exp_shifted, np.exp(r.shifted), rtol=1e-15)
    np.testing.assert_allclose(r.sum_exp, np.exp(r.shifted).sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(r.naive_sum, np.exp(x / t).sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(r.log_of_softmax, np.log(r.probabilities), rtol=1e-15)
    assert (r.num_rows, r.num_classes) == (2, 3)
    assert r.temperature == t and r.dtype == "float64" and r.device == "cpu"


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_field_holds_the_values_stored_in_the_dtype(dtype):
    x = np.array([0.1, 1 / 3, 1000.123])
    r = compute_softmax(SoftmaxRequest(x, dtype=dtype, device="cpu"))
    np.testing.assert_array_equal(r.logits[0], stored(x, dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_the_naive_path_is_computed_once_when_first_read_and_is_torchs(monkeypatch, dtype):
    import softmax_lab.compute.softmax as softmax_module

    calls: list[int] = []
    real = softmax_module._naive_path

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(softmax_module, "_naive_path", counted)
    x = np.array([[2.0, 1.0, 0.1, -3.0, 90.0], [0.5, -0.5, 0.0, 1.0, -np.inf]])
    temperature = 0.9
    result = compute_softmax(SoftmaxRequest(x, temperature, -1, dtype, "cpu"))
    assert calls == []  # a temperature tick with the overflow lab hidden pays nothing for it
    assert result.naive_exp is result.naive_exp  # kept (compute.kept.Once; test_kept.py races it)
    assert len(calls) == 1
    # The same values a hand-written PyTorch line gives, in the dtype.
    tdtype = getattr(torch, dtype)
    scaled = torch.from_numpy(x).to(tdtype) / temperature
    naive = torch.exp(scaled)
    total = naive.sum(dim=-1, keepdim=True)
    probabilities = torch.softmax(scaled, dim=-1)

    def values(t: torch.Tensor) -> np.ndarray:  # as results hold them: halves in float32
        return (t if t.dtype == torch.float64 else t.float()).numpy()

    np.testing.assert_array_equal(result.naive_exp, values(naive))
    np.testing.assert_array_equal(result.naive_sum, values(total[:, 0]))
    np.testing.assert_array_equal(result.naive_probabilities, values(naive / total))
    np.testing.assert_array_equal(result.log_of_softmax, values(torch.log(probabilities)))
    overflowed = bool(torch.isinf(naive[0]).any())  # exp(90 / 0.9) is inf below float64
    assert result.overflow.naive_overflow.tolist() == [overflowed, False]
    assert result.overflow.stable_nan.tolist() == [False, False]
    assert len(calls) == 1


def test_result_arrays_the_naive_path_reads_later_cannot_be_changed():
    result = compute_softmax(SoftmaxRequest(np.array([1.0, 2.0, 3.0]), 2.0, -1, "float32", "cpu"))
    for name in ("logits", "scaled", "probabilities", "log_probabilities"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(result, name)[0, 0] = 0.0


def test_the_naive_path_runs_on_the_torch_threads_of_the_call_that_made_it():
    from softmax_lab.compute.device import torch_threads

    x = np.linspace(-3.0, 3.0, 50)
    with torch_threads(1):  # as analyse_vector computes a temperature tick
        result = compute_softmax(SoftmaxRequest(x, 0.5, -1, "float32", "cpu"))
    seen: list[int] = []
    real_exp = torch.exp

    def exp(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_exp(*args, **kwargs)

    with torch_threads(2), pytest.MonkeyPatch.context() as patch:  # the UI thread reads it later
        patch.setattr(torch, "exp", exp)
        assert result.naive_exp.shape == (1, 50)
        assert torch.get_num_threads() == 2
    assert seen == [1]
