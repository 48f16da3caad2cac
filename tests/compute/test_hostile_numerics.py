"""Numerics under hostile values (no Qt): ±inf, NaN, all −inf rows, huge spreads,
subnormals, one class and 262,144 classes, extreme temperatures, every dtype.

For every input the suite checks, against references computed here:

* :func:`compute_softmax` never warns (warnings are errors in this suite) and
  agrees with ``torch.softmax``/``torch.log_softmax`` of ``x / T`` in the same
  dtype: bit for bit where ``x / T`` stays in the dtype's range, within
  rounding where it does not but torch's result is finite; NaN exactly where
  torch gives NaN, except the documented T -> 0 rescue (a row with no NaN and
  no +inf that is not all -inf, where ``x / T`` left the dtype's range), which
  must match the float64 limit ``softmax((x - max) / T)``;
* the JSON export (``result_to_json``) holds the compute core's values exactly
  (each decimal, read back and rounded to the dtype, is the stored value;
  non-finite values are the strings ``"nan"``/``"inf"``/``"-inf"``), and the
  CSV tables hold them to their displayed precision;
* the verdicts the window shows (``overflow_verdict``, ``log_softmax_verdict``)
  are computed without warnings;
* ``batch_statistics`` agrees with ``compute_softmax`` row by row (entropy, max
  probability, argmax, row sums, heatmap, counts, cross-entropy);
* cross-entropy never warns and agrees with ``F.cross_entropy`` where torch's
  value is finite.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from decimal import Decimal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lab.compute import batch as batch_module
from softmax_lab.compute.batch import BatchRequest, batch_statistics
from softmax_lab.compute.losses import cross_entropy
from softmax_lab.compute.overflow import log_softmax_verdict, overflow_verdict
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.tables import result_tables, result_to_json, write_tables
from softmax_lab.compute.types import SoftmaxRequest, SoftmaxResult

DTYPES = ("float16", "bfloat16", "float32", "float64")
F64_MAX = float(np.finfo(np.float64).max)
SPECIALS = (
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    math.nan,
    5e-324,  # float64's smallest subnormal
    -5e-324,
    1e-310,
    2.2250738585072014e-308,  # float64's smallest normal
    1.4e-45,  # float32's smallest subnormal
    6e-8,  # float16's smallest subnormal
    1e-40,
    11.09,  # float16's naive exp limit
    11.1,
    88.7,  # float32's
    88.8,
    709.7,  # float64's
    709.8,
    65504.0,  # float16's max
    65520.0,  # rounds to inf in float16
    70000.0,
    3.3895313892515355e38,  # bfloat16's max
    3.4028234663852886e38,  # float32's max
    3.5e38,
    1e300,
    -1e300,
    F64_MAX,
    -F64_MAX,
)
TEMPERATURES = (
    1.0,
    5e-324,
    1e-310,
    1e-300,
    1e-45,
    1e-8,
    1e-3,
    0.37,
    3.0,
    1e4,
    1e30,
    1e300,
    F64_MAX,
)
SOURCES = ("float64", "float32", "float16", "int64")
"""The numpy dtype the logits arrive in (the compute dtype is drawn separately)."""


def eps(dtype: str) -> float:
    return float(torch.finfo(getattr(torch, dtype)).eps)


def tdtype(dtype: str) -> torch.dtype:
    return getattr(torch, dtype)


# -- strategies --------------------------------------------------------------------------------


@st.composite
def hostile_logits(draw: st.DrawFn, max_rows: int = 4, max_classes: int = 6) -> np.ndarray:
    """(N, C) logits mixing specials, any float, and whole-row patterns, in a drawn numpy dtype."""
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(1, max_classes))
    element = st.one_of(
        st.sampled_from(SPECIALS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-60.0, 60.0),
        st.floats(-1e6, 1e6),
    )
    x = draw(hnp.arrays(np.float64, (n, c), elements=element))
    for row in range(n):
        pattern = draw(
            st.sampled_from(("as drawn", "as drawn", "all -inf", "ties", "spread", "one finite"))
        )
        if pattern == "all -inf":
            x[row] = -math.inf
        elif pattern == "ties":
            x[row] = draw(st.sampled_from(SPECIALS[:2] + SPECIALS[5:]))
        elif pattern == "spread":  # huge spread: one enormous logit among ordinary ones
            x[row] = draw(hnp.arrays(np.float64, c, elements=st.floats(-5.0, 5.0)))
            x[row, draw(st.integers(0, c - 1))] = draw(st.sampled_from((1e4, 1e38, 1e300, -1e300)))
        elif pattern == "one finite":  # a masked row with one survivor
            keep = draw(st.integers(0, c - 1))
            value = x[row, keep] if math.isfinite(x[row, keep]) else 0.0
            x[row] = -math.inf
            x[row, keep] = value
    source = draw(st.sampled_from(SOURCES))
    with np.errstate(all="ignore"):
        if source == "int64":
            return np.clip(
                np.nan_to_num(np.round(x), posinf=1e18, neginf=-1e18), -1e18, 1e18
            ).astype(np.int64)
        return x.astype(source)


temperatures = st.one_of(
    st.sampled_from(TEMPERATURES),
    st.floats(min_value=5e-324, max_value=F64_MAX, allow_subnormal=True),
)
dtypes = st.sampled_from(DTYPES)


# -- references ------------------------------------------------------------------------------


def stored(x: np.ndarray, dtype: str) -> torch.Tensor:
    """The logits as torch stores them in ``dtype`` (from float64, as a person's code would)."""
    with np.errstate(all="ignore"):
        x64 = np.asarray(x).astype(np.float64)
    return torch.from_numpy(x64).to(tdtype(dtype))


def torch_softmax(x: np.ndarray, temperature: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``torch.softmax(x / T)`` and ``torch.log_softmax(x / T)`` in the dtype, as float64."""
    z = stored(x, dtype) / temperature
    return (
        torch.softmax(z, dim=-1).to(torch.float64).numpy(),
        torch.log_softmax(z, dim=-1).to(torch.float64).numpy(),
    )


def limit_softmax(row: np.ndarray, temperature: float) -> np.ndarray:
    """float64 ``softmax((x - max) / T)`` of a row with no NaN/+inf and a finite max."""
    with np.errstate(all="ignore"):
        diff = row - row.max()
        shifted = np.where((diff == 0) | np.isneginf(diff), diff, diff / temperature)
        e = np.exp(shifted)
        return e / e.sum()


def row_classes(x: np.ndarray, dtype: str, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: doomed (NaN or +inf stored, or all -inf: NaN in any softmax) and broken
    (``x / T`` left the dtype's range: the documented rescue applies)."""
    s = stored(x, dtype)
    scaled = s / temperature
    s64 = s.to(torch.float64).numpy()
    doomed = np.isnan(s64).any(-1) | np.isposinf(s64).any(-1) | np.isneginf(s64).all(-1)
    broken = (
        (((~torch.isfinite(scaled)) & torch.isfinite(s)) | (torch.isnan(scaled) & ~torch.isnan(s)))
        .any(-1)
        .numpy()
    )
    return doomed, broken


def compute(x: np.ndarray, temperature: float, dtype: str) -> SoftmaxResult:
    return compute_softmax(SoftmaxRequest(x, temperature, -1, dtype, "cpu"))


# -- compute_softmax against torch ---------------------------------------------------------------


def check_against_torch(
    x: np.ndarray, temperature: float, dtype: str, result: SoftmaxResult
) -> None:
    p_ref, logp_ref = torch_softmax(x, temperature, dtype)
    doomed, broken = row_classes(x, dtype, temperature)
    logits64 = stored(x, dtype).to(torch.float64).numpy()
    np.testing.assert_array_equal(result.logits, logits64)  # stored exactly as torch stores them
    tol = 4 * eps(dtype)
    for i in range(x.shape[0]):
        p, logp = result.probabilities[i], result.log_probabilities[i]
        if doomed[i]:
            assert np.isnan(p).all() and np.isnan(logp).all(), (i, p)
            assert np.isnan(p_ref[i]).all()  # torch agrees: the row is NaN
            assert result.overflow.stable_nan[i] and result.stats.argmax[i] == -1
        elif not broken[i]:
            # Exactly torch's softmax of x / T in the dtype.
            np.testing.assert_array_equal(p, p_ref[i])
            np.testing.assert_array_equal(logp, logp_ref[i])
        elif not np.isnan(p_ref[i]).any():
            np.testing.assert_allclose(p, p_ref[i], rtol=tol, atol=tol)
            np.testing.assert_allclose(logp, logp_ref[i], rtol=tol, atol=tol)
        else:
            # The T -> 0 rescue: torch gives NaN, the lab the argmax limit (ties share).
            assert np.isfinite(p).all() and not np.isnan(logp).any(), (i, p, logp)
            np.testing.assert_allclose(p, limit_softmax(logits64[i], temperature), rtol=0, atol=tol)
            assert (logp <= 0).all()
            with np.errstate(under="ignore"):
                np.testing.assert_allclose(np.exp(logp), p, rtol=0, atol=tol)
        if not np.isnan(p).any():
            assert not result.overflow.stable_nan[i]
            assert result.stats.argmax[i] == int(np.argmax(p))
            c = p.size
            entropy = result.stats.entropy_nats[i]
            assert -1e-12 <= entropy <= math.log(c) + 4 * c * eps(dtype), entropy


@given(x=hostile_logits(), temperature=temperatures, dtype=dtypes)
def test_softmax_agrees_with_torch_on_hostile_rows(
    x: np.ndarray, temperature: float, dtype: str
) -> None:
    result = compute(x, temperature, dtype)
    check_against_torch(x, temperature, dtype, result)
    for i in range(result.num_rows):  # what the overflow panel shows
        assert overflow_verdict(result, i) and log_softmax_verdict(result, i)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_single_class(dtype: str) -> None:
    """One class: probability 1 unless the logit is NaN, +inf or -inf (as stored).
    Every special value is one row of an (N, 1) batch, at every listed temperature."""
    x = np.array(SPECIALS)[:, None]
    finite = np.isfinite(stored(x, dtype).to(torch.float64).numpy()[:, 0])
    assert finite.any() and not finite.all()
    for temperature in TEMPERATURES:
        result = compute(x, temperature, dtype)
        check_against_torch(x, temperature, dtype, result)
        assert (result.probabilities[finite, 0] == 1.0).all()
        assert (result.log_probabilities[finite, 0] == 0.0).all()
        assert np.isnan(result.probabilities[~finite, 0]).all()
        check_json(result)


# -- the exported tables ------------------------------------------------------------------------


def to_dtype(values: list[float], dtype: str) -> np.ndarray:
    """Decimals read back into the dtype, as the JSON contract says a reader does."""
    x = np.array(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        if dtype == "bfloat16":  # numpy has no bfloat16: float32 first, then torch's rounding
            return (
                torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16).to(torch.float64).numpy()
            )
        return x.astype(dtype).astype(np.float64)


def json_floats(values: list[object]) -> list[float]:
    for v in values:
        assert isinstance(v, float) or v in ("nan", "inf", "-inf"), v
    return [float(v) for v in values]  # float("nan"), float("-inf") read the strings


def strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def check_json(result: SoftmaxResult, text: str | None = None) -> None:
    """``text`` (by default the result's own JSON export) holds the result's values."""
    doc = strict_json(result_to_json(result) if text is None else text)
    dtype = result.dtype
    assert doc["dtype"] == dtype and doc["shape"] == list(result.shape)
    assert float(doc["temperature"]) == result.temperature
    assert len(doc["rows"]) == result.num_rows
    arrays = {
        "logits": result.logits,
        "probabilities": result.probabilities,
        "log_probabilities": result.log_probabilities,
        "naive_probabilities": result.naive_probabilities,
    }
    for i, row in enumerate(doc["rows"]):
        for key, values in arrays.items():
            assert same(to_dtype(json_floats(row[key]), dtype), values[i]), (key, i, row[key])
        assert same(np.array(json_floats([row["entropy"]])), result.stats.entropy_nats[i : i + 1])
        argmax = int(result.stats.argmax[i])
        assert row["argmax"] == (None if argmax < 0 else argmax)
        assert row["naive_overflow"] is bool(result.overflow.naive_overflow[i])
        assert row["naive_underflow"] is bool(result.overflow.naive_underflow[i])


def shown_ok(text: str, value: float, digits: int) -> bool:
    """``text`` shows ``value`` to ``digits`` decimals, or 3 significant digits in e-notation
    when it is tiny or huge; exact zero as "0"; non-finite as nan/inf/-inf."""
    value = float(value)  # compared in double: a float32 result would round the difference
    if math.isnan(value):
        return text == "nan"
    if math.isinf(value):
        return text == ("inf" if value > 0 else "-inf")
    if value == 0:
        return text == "0"
    # Compared as exact decimals: rounded to 3 digits, -1.7977e308 shows as
    # "-1.80e+308", a correct text that float() would read as -inf.
    shown, exact = Decimal(text), Decimal(value)
    if abs(value) < 10.0**-digits or abs(value) >= 1e6:
        tolerance = Decimal(0.5) * Decimal(10) ** -(digits - 1) * abs(exact) * Decimal(1 + 1e-9)
        return "e" in text and abs(shown - exact) <= tolerance
    tolerance = Decimal(0.5) * Decimal(10) ** -digits + Decimal(1e-12) * abs(exact)
    return "e" not in text and abs(shown - exact) <= tolerance


def csv_blocks(text: str) -> list[list[list[str]]]:
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if row:
            blocks[-1].append(row)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def logit_ok(text: str, value: float, dtype: str) -> bool:
    """Logits are shown as stored, shortest form ("2", not "2.0"): exact in the dtype."""
    return same(to_dtype([float(text)], dtype), np.array([value]))


def check_csv(result: SoftmaxResult, digits: int) -> None:
    blocks = csv_blocks(write_tables(result_tables(result, digits=digits), "csv"))
    s = result.stats
    if result.num_rows > 20 or result.num_classes > 50:
        (block,) = blocks
        assert block[1] == ["row", "argmax", "max probability", "entropy (nats)"]
        for cells in block[2:]:
            if not cells[0].isdigit():
                continue  # a note
            i = int(cells[0])
            assert cells[1] == ("none (NaN)" if s.argmax[i] < 0 else str(s.argmax[i]))
            assert shown_ok(cells[2], s.max_probability[i], digits)
            assert shown_ok(cells[3], s.entropy_nats[i], digits)
        return
    assert len(blocks) == 2 * result.num_rows
    for i in range(result.num_rows):
        probability, stats = blocks[2 * i], blocks[2 * i + 1]
        assert re.match(rf"(row {i}:|softmax of)", probability[0][0])
        header = probability[1]
        assert header[:2] == ["class", "logit"] and header[4:] == ["probability", "log-probability"]
        for k in range(result.num_classes):
            cells = probability[2 + k]
            assert cells[0] == str(k)
            assert logit_ok(cells[1], result.logits[i, k], result.dtype), cells
            for col, values in (
                (2, result.shifted),
                (3, result.exp_shifted),
                (4, result.probabilities),
                (5, result.log_probabilities),
            ):
                assert shown_ok(cells[col], values[i, k], digits), (
                    header[col],
                    cells[col],
                    values[i, k],
                )
        footer = probability[2 + result.num_classes]
        assert footer[0] == "sum"
        assert shown_ok(footer[3], result.sum_exp[i], digits)
        with np.errstate(all="ignore"):
            p_sum = float(np.sum(result.probabilities[i], dtype=np.float64))
            assert shown_ok(footer[4], p_sum, digits)
        rows = {cells[0]: cells[1] for cells in stats[2:]}
        assert shown_ok(rows["entropy (nats)"], s.entropy_nats[i], digits)
        assert shown_ok(rows["entropy (bits)"], s.entropy_bits[i], digits)
        assert shown_ok(rows["perplexity"], s.perplexity[i], digits)
        assert shown_ok(rows["max probability"], s.max_probability[i], digits)
        assert shown_ok(rows["margin (top-1 − top-2)"], s.margin[i], digits)
        assert rows["argmax"] == ("none (NaN)" if s.argmax[i] < 0 else str(s.argmax[i]))
        naive = (
            "overflows"
            if result.overflow.naive_overflow[i]
            else ("underflows" if result.overflow.naive_underflow[i] else "ok")
        )
        assert rows["naive exp/sum"] == naive


@given(x=hostile_logits(), temperature=temperatures, dtype=dtypes, digits=st.sampled_from((3, 6)))
def test_exported_tables_agree_with_the_compute_core(
    x: np.ndarray, temperature: float, dtype: str, digits: int
) -> None:
    result = compute(x, temperature, dtype)
    check_json(result)
    check_csv(result, digits)
    for fmt in ("markdown", "latex"):  # the other writers, for warnings
        assert write_tables(result_tables(result, digits=digits), fmt)


def test_the_table_checks_catch_a_wrong_value() -> None:
    """The checks above can fail: one probability off by one ulp, or shown too coarsely."""
    import dataclasses

    result = compute(np.array([[2.0, 1.0, 0.1]]), 1.0, "float32")
    check_json(result)
    nudged = result.probabilities.copy()
    nudged[0, 1] = np.nextafter(np.float32(nudged[0, 1]), np.float32(1))
    with pytest.raises(AssertionError):
        check_json(dataclasses.replace(result, probabilities=nudged), result_to_json(result))
    assert shown_ok("0.659", 0.6590011, 3) and not shown_ok("0.660", 0.6590011, 3)
    assert not shown_ok("0.000", 1e-5, 3) and shown_ok("1.00e-05", 1e-5, 3)
    assert not shown_ok("0", -0.0 + 1e-300, 3) and shown_ok("-inf", -math.inf, 3)


# -- the batch view and the loss -----------------------------------------------------------------


def check_batch(
    x: np.ndarray,
    temperature: float,
    dtype: str,
    targets: np.ndarray | None,
    smoothing: float,
) -> None:
    """``batch_statistics`` agrees with ``compute_softmax`` (and ``cross_entropy``) row by row."""
    result = compute(x, temperature, dtype)
    batch = batch_statistics(
        BatchRequest(x, temperature, 1, dtype, "cpu", targets=targets, label_smoothing=smoothing),
        chunk_rows=max(1, x.shape[0] // 2),
    )
    tol = 4 * eps(dtype)
    s = result.stats
    np.testing.assert_allclose(
        batch.entropy, s.entropy_nats, rtol=tol, atol=tol * x.shape[1] * 8, equal_nan=True
    )
    np.testing.assert_allclose(
        batch.max_probability, s.max_probability, rtol=0, atol=tol, equal_nan=True
    )
    np.testing.assert_array_equal(batch.argmax == -1, s.argmax == -1)
    for i in np.flatnonzero(s.argmax >= 0):
        top = result.probabilities[i]
        assert top[batch.argmax[i]] >= top.max() - 2 * tol  # the same class, or a rounding tie
    with np.errstate(all="ignore"):
        sums = result.probabilities.sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(batch.row_sums, sums, rtol=0, atol=tol * x.shape[1], equal_nan=True)
    # The heatmap: each cell the max (NaN if any) over a row bin x column bin of probabilities.
    p32 = result.probabilities.astype(np.float32)
    rb, cb = batch.heatmap_row_bin, batch.heatmap_col_bin
    binned = np.maximum.reduceat(p32, np.arange(0, p32.shape[1], cb), axis=1)
    binned = np.maximum.reduceat(binned, np.arange(0, p32.shape[0], rb), axis=0)
    np.testing.assert_allclose(batch.heatmap, binned, rtol=0, atol=tol, equal_nan=True)
    assert batch.nonfinite_count == int(np.count_nonzero(~np.isfinite(result.logits)))
    assert batch.naive_overflow_rows == int(result.overflow.naive_overflow.sum())
    if targets is None:
        return
    ce = cross_entropy(
        x, targets, temperature=temperature, label_smoothing=smoothing, dtype=dtype, device="cpu"
    )
    assert batch.cross_entropy is not None
    ours, theirs = batch.cross_entropy, ce.per_row
    bound = tol * (1 + np.nan_to_num(np.abs(theirs), posinf=0.0)) * x.shape[1]
    both = np.isfinite(ours) & np.isfinite(theirs)
    assert (np.abs(ours[both] - theirs[both]) <= bound[both]).all(), (ours, theirs)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))


@st.composite
def hostile_batches(
    draw: st.DrawFn, smoothing: tuple[float, ...] = (0.0, 0.1, 1.0)
) -> tuple[np.ndarray, np.ndarray | None, float]:
    x = draw(hostile_logits())
    n, c = x.shape
    targets = None
    if draw(st.booleans()):
        targets = np.array(
            draw(st.lists(st.sampled_from([*range(c), -100]), min_size=n, max_size=n)),
            dtype=np.int64,
        )
    return x, targets, draw(st.sampled_from(smoothing))


@given(
    case=hostile_batches(),
    temperature=temperatures,
    dtype=dtypes,
)
def test_batch_statistics_agree_with_compute_softmax_row_by_row(
    case: tuple[np.ndarray, np.ndarray | None, float], temperature: float, dtype: str
) -> None:
    """Every statistic of every row, at every temperature, the loss of rows rescued from
    T -> 0 included (the cases below are what this found while batch.py was reworked)."""
    x, targets, smoothing = case
    check_batch(x, temperature, dtype, targets, smoothing)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
@pytest.mark.parametrize("temperature", [3.4028235677973366e38, 1e308])
def test_a_temperature_that_rounds_to_inf_in_float32_is_infinite_as_in_torch(
    dtype: str, temperature: float
) -> None:
    # Found by the test above: torch rounds a Python float divisor to float32 (for
    # float32, float16 and bfloat16), and 3.4028235677973366e38 is past float32's max
    # by half an ulp: x / T is then 0 for every finite x, so the distribution is
    # uniform over the finite logits. batch.py divided by T exactly: 0.57, not 0.5.
    # float64 keeps T as it is (the first T is finite there).
    big = 6e4 if dtype == "float16" else 1e38
    x = np.array([[big, 0.0, -np.inf], [big, -big, 3.0]])
    targets = np.array([1, 0])
    check_batch(x, temperature, dtype, targets, 0.1)


@pytest.mark.parametrize("compiled", [True, False])
@given(case=hostile_batches(), temperature=temperatures, dtype=dtypes)
def test_wide_hostile_rows_with_and_without_the_compiled_pass(
    compiled: bool,
    case: tuple[np.ndarray, np.ndarray | None, float],
    temperature: float,
    dtype: str,
) -> None:
    """The same rows tiled past 4,096 classes, where the heatmap bins columns: there a
    float32 batch takes compute/_fused.c (where it was built), or torch's kernels."""
    x, targets, smoothing = case
    wide = np.tile(x, (1, -(-4097 // x.shape[1])))  # targets stay valid: they index < C
    before = batch_module.FUSED_KERNEL
    batch_module.FUSED_KERNEL = compiled
    try:
        check_batch(wide, temperature, dtype, targets, smoothing)
    finally:
        batch_module.FUSED_KERNEL = before


@given(case=hostile_batches(), temperature=temperatures, dtype=dtypes, probabilities=st.booleans())
def test_cross_entropy_on_hostile_rows_never_warns_and_follows_torch(
    case: tuple[np.ndarray, np.ndarray | None, float],
    temperature: float,
    dtype: str,
    probabilities: bool,
) -> None:
    x, targets, smoothing = case
    n, c = x.shape
    if targets is None or probabilities:
        q = np.random.default_rng(n * 31 + c).dirichlet(np.ones(c), size=n)
        targets_arg: np.ndarray = q
        torch_targets = torch.from_numpy(q).to(tdtype(dtype))
    else:
        targets_arg = targets
        torch_targets = torch.from_numpy(targets)
    ce = cross_entropy(
        x,
        targets_arg,
        temperature=temperature,
        label_smoothing=smoothing,
        dtype=dtype,
        device="cpu",
    )
    assert ce.per_row.shape == (n,) and ce.gradient.shape == (n, c)
    z = stored(x, dtype) / temperature
    ref = F.cross_entropy(z, torch_targets, label_smoothing=smoothing, reduction="none")
    ref = ref.to(torch.float64).numpy()
    doomed, broken = row_classes(x, dtype, temperature)
    check = np.isfinite(ref) & ~broken & ~doomed
    bound = 8 * c * eps(dtype) * (1 + np.abs(ref))
    assert (np.abs(ce.per_row[check] - ref[check]) <= bound[check]).all(), (ce.per_row, ref)


# -- 262,144 classes, once -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocabulary() -> np.ndarray:
    """Two rows of an LLM-sized vocabulary: a hostile one and a NaN one."""
    c = 262_144
    rng = np.random.default_rng(262144)
    x = rng.standard_normal((2, c)) * 8
    x[0, rng.choice(c, 5000, replace=False)] = -np.inf  # masked tokens
    x[0, 7] = 1e4  # a huge spread: naive exp overflows every dtype but float64
    x[0, 11] = 5e-324
    x[1, 123_456] = np.nan
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_vocabulary_of_262144_classes(vocabulary: np.ndarray, dtype: str) -> None:
    for temperature in (1.0, 1e-300):
        result = compute(vocabulary, temperature, dtype)
        check_against_torch(vocabulary, temperature, dtype, result)
        assert np.isnan(result.probabilities[1]).all()
        assert result.stats.argmax[0] == 7
        check_batch(vocabulary, temperature, dtype, np.array([7, 5]), 0.1)
        check_csv(result, 3)  # one summary line per row at this size


def test_a_vocabulary_exports_every_value_to_json(vocabulary: np.ndarray) -> None:
    """The hostile row (masked tokens, a 1e4 spike, a subnormal): all 4 x 262,144 values."""
    check_json(compute(vocabulary[:1], 1.0, "float32"))


# -- regressions found by the properties above ------------------------------------------------------------------------


def test_float32_signaling_nan_input_does_not_warn() -> None:
    x = np.array([0x7F800001, 0x3F800000], dtype=np.uint32).view(np.float32)  # sNaN, 1.0
    result = compute(x, 1.0, "float32")
    assert np.isnan(result.probabilities).all()


# Cases the batch property found, each fixed in compute/batch.py; kept as regressions.


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_batch_temperature_beyond_float32_range(dtype: str) -> None:
    """T = 1e100 is inf in float32 arithmetic, where -inf / T is NaN. compute_softmax keeps
    the row [0, -inf] as [1, 0]; batch_statistics made it NaN."""
    check_batch(np.array([[0.0, -np.inf], [1.0, 2.0]]), 1e100, dtype, None, 0.0)


def test_batch_label_smoothing_with_huge_logits() -> None:
    """Six equal logits of -1e18: the smoothed loss is log 6 = 1.79 (torch agrees);
    batch_statistics gave -2.3e9, a negative cross-entropy."""
    check_batch(np.full((2, 6), -1e18), 1.0, "float32", np.array([2, 5]), 0.1)


def test_batch_loss_of_a_row_rescued_from_tiny_temperature() -> None:
    """At T = 1e-310 the target's probability is exactly 0 in float16: cross_entropy gives
    inf; batch_statistics gave 7.3e39 (computed outside the dtype)."""
    x = np.array([[6.176, -36.72], [1.0, 2.0]])
    check_batch(x, 1e-310, "float16", np.array([1, 0]), 0.0)


def test_batch_subnormal_logits_at_a_tiny_temperature() -> None:
    """float32 logits 1e-40 (subnormal) and 0 at T = 1.5e-65: x / T is 6.8e24 for the two
    1e-40s, so the row is [0, 0, 0.5, 0, 0, 0.5] (entropy log 2), as torch gives;
    batch_statistics gave the uniform row (entropy log 6)."""
    x = np.array([[0.0, 0.0, 1e-40, 0.0, 0.0, 1e-40], [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]])
    check_batch(x.astype(np.float32), 1.4682485263973652e-65, "float32", None, 0.0)


def test_batch_temperature_near_float64_max_in_bfloat16() -> None:
    """T = 1.7e308: x / T is 0 in bfloat16 for 1e38 and 4.57, so torch gives [0.5, 0.5];
    batch_statistics gave a max probability of 0.76."""
    x = np.array([[1e38, 4.5698266], [0.0, 0.0]], dtype=np.float32)
    check_batch(x, 1.7080916200964492e308, "bfloat16", None, 0.0)


@pytest.mark.parametrize(
    ("x", "temperature", "dtype", "target"),
    [
        ([[-3.367, 2.0, 1e4]], 1e-3, "float16", 0),  # 1e4 / T overflows float16: rescued
        ([[3.8316364e-12, 0.0]], 1e-310, "float64", 1),  # x / T overflows float64: rescued
    ],
)
def test_batch_smoothed_loss_of_a_rescued_row(
    x: list[list[float]], temperature: float, dtype: str, target: int
) -> None:
    """Label smoothing 1 spreads the target over every class, and a rescued row has
    classes of probability exactly 0 in the dtype: cross_entropy gives inf;
    batch_statistics gave a finite loss (float16) or NaN (float64)."""
    check_batch(np.array(x), temperature, dtype, np.array([target]), 1.0)
