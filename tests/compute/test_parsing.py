"""Strict parsing of typed numbers: what a spreadsheet accepts, nothing Python's float() merely tolerates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.parsing import parse_int_vector, parse_number, parse_vector


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2.0),
        ("0.1", 0.1),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        (".5", 0.5),
        ("-.5", -0.5),
        ("5.", 5.0),
        ("+2.5", 2.5),
        ("  7  ", 7.0),
        ("inf", math.inf),
        ("+inf", math.inf),
        ("-inf", -math.inf),
        ("Infinity", math.inf),
        ("-INF", -math.inf),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("5e-324", 5e-324),
    ],
)
def test_accepted_numbers(text, expected):
    assert parse_number(text) == expected


def test_minus_zero_keeps_its_sign():
    value = parse_number("-0")
    assert value == 0.0 and math.copysign(1.0, value) == -1.0


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "+nan"])
def test_nan_is_accepted(text):
    assert math.isnan(parse_number(text))


@pytest.mark.parametrize(
    "text",
    [
        "1_000",
        "٣",
        "١٢",
        "1٣",
        "=1+2",
        "1+2",
        "0x10",
        "0b1",
        "1,5",
        "e5",
        "1e",
        "--1",
        "1.2.3",
        "½",
        "inf1",
        "two",
    ],
)
def test_refused_with_the_text_and_what_is_accepted(text):
    with pytest.raises(InvalidInputError) as info:
        parse_number(text)
    message = str(info.value)
    assert repr(text) in message
    assert "is not a number" in message and "2.5" in message and "inf" in message


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_is_refused(text):
    with pytest.raises(InvalidInputError, match="empty value: type a number"):
        parse_number(text)


@pytest.mark.parametrize("text", ["1e999", "-1e999", "9" * 400])
def test_too_large_says_to_type_inf(text):
    with pytest.raises(InvalidInputError, match="too large for a 64-bit float; type inf"):
        parse_number(text)


def test_long_input_is_shortened_in_the_message():
    with pytest.raises(InvalidInputError) as info:
        parse_number("x" * 500)
    assert len(str(info.value)) < 200 and "..." in str(info.value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_repr_of_any_finite_float_round_trips(f):
    value = parse_number(repr(f))
    assert value == f and math.copysign(1.0, value) == math.copysign(1.0, f)


@given(
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=20),
    st.sampled_from([", ", " ", ";", "\n", ",\t"]),
)
def test_vector_round_trips_with_any_separator(values, separator):
    text = separator.join(repr(v) for v in values)
    np.testing.assert_array_equal(parse_vector(text), np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("text", ["2, 1, 0.1", "2 1 0.1", "2;1;0.1", " 2,1 ,0.1 ", "2\n1\n0.1\n"])
def test_vector_separators(text):
    v = parse_vector(text)
    assert v.dtype == np.float64
    np.testing.assert_array_equal(v, [2.0, 1.0, 0.1])


def test_vector_with_specials():
    v = parse_vector("inf, -inf, nan, -0, 1e3, .5")
    assert v[0] == math.inf and v[1] == -math.inf and math.isnan(v[2])
    np.testing.assert_array_equal(v[3:], [0.0, 1000.0, 0.5])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no numbers given"),
        (" , ; ", "no numbers given"),
        ("2, 1_000, 3", r"value 2: '1_000' is not a number"),
        ("1 2 ٣", r"value 3: '٣' is not a number"),
        ("1, 1e999", r"value 2: '1e999' is too large.*type inf"),
    ],
)
def test_vector_errors_name_the_value(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_vector(text)


def test_int_vector():
    v = parse_int_vector("0, 2, 1 -3 +4")
    assert v.dtype == np.int64
    np.testing.assert_array_equal(v, [0, 2, 1, -3, 4])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no class indices given"),
        ("1, 1.5", r"value 2: '1.5' is not a whole class index"),
        ("٣", r"value 1: '٣' is not a whole class index"),
        ("1_0", r"value 1: '1_0' is not a whole class index"),
        ("inf", r"'inf' is not a whole class index"),
    ],
)
def test_int_vector_errors(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_int_vector(text)
