"""Input checks shared by every entry point: readable refusals, correct row layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lab.compute.errors import InvalidInputError, SoftmaxLabError
from softmax_lab.compute.softmax import compute_softmax, softmax
from softmax_lab.compute.types import SoftmaxRequest
from softmax_lab.compute.validation import as_logits, check_temperature, normalise_dim, to_rows


def test_invalid_input_is_a_value_error_and_a_lab_error():
    assert issubclass(InvalidInputError, ValueError) and issubclass(
        InvalidInputError, SoftmaxLabError
    )


@pytest.mark.parametrize("value", [1.0, 0.01, 1e-300, 5e-324, 1e300, 3, np.float32(0.5), "2.5"])
def test_temperature_accepted(value):
    assert check_temperature(value) == float(value)


@pytest.mark.parametrize("value", [0, 0.0, -0.0, -1, -1e-300, math.inf, -math.inf, math.nan])
def test_temperature_refused_with_the_value_and_a_hint(value):
    with pytest.raises(InvalidInputError) as info:
        check_temperature(value)
    message = str(info.value)
    assert "temperature must be finite and greater than 0" in message
    assert f"got {float(value):g}" in message and "0.01" in message


@pytest.mark.parametrize("value", [None, "hot", [1.0], object()])
def test_temperature_not_a_number(value):
    with pytest.raises(InvalidInputError, match="temperature must be a number"):
        check_temperature(value)


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (3.0, (1,)),
        ([1, 2, 3], (3,)),
        ([[True, False]], (1, 2)),
        (np.arange(6, dtype=np.int8).reshape(2, 3), (2, 3)),
    ],
)
def test_as_logits_gives_float64_with_at_least_one_dim(value, shape):
    arr = as_logits(value)
    assert arr.dtype == np.float64 and arr.shape == shape
    np.testing.assert_array_equal(arr, np.asarray(value, dtype=np.float64).reshape(shape))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "logits are empty: give at least one class"),
        (np.zeros((3, 0)), "logits are empty"),
        (np.zeros((0, 4)), "logits are empty"),
        (["a", "b"], "logits must be numbers, got values of type <U1"),
        (np.array([1.0, None], dtype=object), "logits must be numbers, got values of type object"),
        (np.array([b"1"]), "logits must be numbers"),
        ([1 + 2j, 3.0], "logits must be real numbers, not complex"),
        (np.array([1, 2], dtype="m8[s]"), "logits must be numbers, got values of type timedelta64"),
        (np.array([1, 2], dtype="M8[s]"), "logits must be numbers, got values of type datetime64"),
        ([[1.0, 2.0], [3.0]], "rectangular array of numbers"),
    ],
)
def test_as_logits_refusals(value, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        as_logits(value)


@pytest.mark.parametrize(
    ("dim", "ndim", "expected"),
    [(0, 1, 0), (-1, 1, 0), (-1, 3, 2), (1, 3, 1), (-3, 3, 0), (np.int64(2), 3, 2)],
)
def test_normalise_dim(dim, ndim, expected):
    assert normalise_dim(dim, ndim) == expected


@pytest.mark.parametrize(("dim", "ndim"), [(1, 1), (-2, 1), (3, 3), (-4, 3)])
def test_dim_out_of_range_says_which_dims_exist(dim, ndim):
    with pytest.raises(
        InvalidInputError,
        match=rf"dim {dim} is out of range for a {ndim}-D tensor \(use {-ndim}..{ndim - 1}\)",
    ):
        normalise_dim(dim, ndim)


@pytest.mark.parametrize("dim", [0.5, 1.0, True, "1", None])
def test_dim_must_be_a_whole_number(dim):
    with pytest.raises(InvalidInputError, match="dim must be a whole number"):
        normalise_dim(dim, 2)


@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    data=st.data(),
)
def test_to_rows_moves_dim_last_and_flattens_the_rest(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    arr = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    rows = to_rows(arr, dim)
    assert rows.shape == (arr.size // shape[dim], shape[dim])
    # Each row is one fibre along dim, in C order of the remaining indices.
    other = [i for i in range(len(shape)) if i != dim]
    for r, index in enumerate(np.ndindex(*[shape[i] for i in other])):
        full = [slice(None)] * len(shape)
        for axis, i in zip(other, index, strict=True):
            full[axis] = i
        np.testing.assert_array_equal(rows[r], arr[tuple(full)])


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"logits": np.array([1.0]), "dim": 1}, "dim 1 is out of range"),
        ({"logits": np.zeros((2, 0))}, "logits are empty"),
        ({"logits": np.array(["x"])}, "logits must be numbers"),
        ({"logits": np.array([1j])}, "not complex"),
        ({"logits": np.array([1.0]), "dtype": "float8"}, "unknown dtype"),
        ({"logits": np.array([1.0]), "temperature": 0.0}, "temperature"),
        ({"logits": np.array([1.0]), "device": "gpu"}, "unknown device"),
    ],
)
def test_compute_softmax_refuses_bad_requests_readably(request_kwargs, message):
    kwargs = {"device": "cpu", **request_kwargs}
    with pytest.raises(InvalidInputError, match=message):
        compute_softmax(SoftmaxRequest(**kwargs))


def test_public_helpers_validate_too():
    with pytest.raises(InvalidInputError, match="rectangular"):
        softmax([[1.0, 2.0], [3.0]])
    with pytest.raises(InvalidInputError, match="dim 2 is out of range"):
        softmax([[1.0, 2.0]], dim=2)
