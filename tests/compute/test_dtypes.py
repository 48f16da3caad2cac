"""The dtype table against torch.finfo and against where torch.exp itself overflows/underflows."""

from __future__ import annotations

import math

import pytest
import torch

from softmax_lab.compute.dtypes import (
    DEFAULT_DTYPE,
    DTYPE_NAMES,
    DTYPES,
    dtype_info,
    torch_dtype,
)
from softmax_lab.compute.errors import InvalidInputError

_BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}


def _from_bits(bits: int, dt: torch.dtype) -> float:
    return torch.tensor([bits], dtype=_BITS[dt]).view(dt).item()


def _to_bits(value: float, dt: torch.dtype) -> int:
    return int(torch.tensor([value], dtype=torch.float64).to(dt).view(_BITS[dt])[0])


def _first_true(pred, lo_value: float, hi_value: float, dt: torch.dtype) -> tuple[float, float]:
    """Bisect over the representable positive values of ``dt`` (monotone in their bit pattern).

    ``pred`` is False at ``lo_value`` and True at ``hi_value``; returns the
    last value where it is False and the first where it is True (adjacent).
    """
    lo, hi = _to_bits(lo_value, dt), _to_bits(hi_value, dt)
    assert not pred(_from_bits(lo, dt)) and pred(_from_bits(hi, dt))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pred(_from_bits(mid, dt)):
            hi = mid
        else:
            lo = mid
    return _from_bits(lo, dt), _from_bits(hi, dt)


def test_names_and_default():
    assert DTYPE_NAMES == ("float16", "bfloat16", "float32", "float64")
    assert DEFAULT_DTYPE in DTYPE_NAMES
    assert set(DTYPES) == set(DTYPE_NAMES)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_limits_match_torch_finfo(name):
    info = dtype_info(name)
    fi = torch.finfo(getattr(torch, name))
    assert info.name == name
    assert info.bits == fi.bits
    assert info.max == fi.max
    assert info.smallest_normal == fi.smallest_normal
    assert info.eps == fi.eps


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_smallest_subnormal_is_the_bit_pattern_one(name):
    dt = getattr(torch, name)
    assert dtype_info(name).smallest_subnormal == _from_bits(1, dt)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_torch_dtype_maps_names(name):
    assert torch_dtype(name) is getattr(torch, name)


@pytest.mark.parametrize("name", ["float8", "half", "Float32", "", "int64"])
def test_unknown_dtype_is_refused_with_the_choices(name):
    with pytest.raises(
        InvalidInputError, match="unknown dtype.*float16, bfloat16, float32, float64"
    ):
        dtype_info(name)
    with pytest.raises(InvalidInputError, match="unknown dtype"):
        torch_dtype(name)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_naive_limit_is_where_torch_exp_first_overflows(name):
    dt = getattr(torch, name)
    limit = dtype_info(name).naive_limit
    assert limit == pytest.approx(math.log(torch.finfo(dt).max), rel=1e-15)
    last_finite, first_inf = _first_true(
        lambda v: math.isinf(torch.exp(torch.tensor([v], dtype=dt)).item()), 1.0, 2 * limit, dt
    )
    ulp = first_inf - last_finite
    # Within one step of the dtype's grid at that value: our limit lies between
    # the last logit torch.exp keeps finite and the first it sends to inf.
    assert abs(first_inf - limit) <= ulp
    assert last_finite <= limit <= first_inf


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_underflow_limit_is_where_torch_exp_first_gives_zero(name):
    dt = getattr(torch, name)
    limit = dtype_info(name).underflow_limit
    assert math.isfinite(limit) and limit < -dtype_info(name).naive_limit
    # Bisect on -x (positive values are monotone in their bits).
    last_nonzero, first_zero = _first_true(
        lambda v: torch.exp(torch.tensor([-v], dtype=dt)).item() == 0.0, 1.0, -2 * limit, dt
    )
    ulp = first_zero - last_nonzero
    assert abs(first_zero - (-limit)) <= ulp
    assert last_nonzero <= -limit <= first_zero
