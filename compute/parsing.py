"""Strict parsing of numbers a person types or pastes.

Python's ``float()`` accepts ``1_000``, non-ASCII digits (``'٣'``) and
surrounding whitespace; spreadsheets and shells don't, and a lab that shows
numerics must not guess. We accept plain decimal/scientific ASCII numbers and
``inf``, ``-inf``, ``+inf``, ``nan`` (any case; ``infinity`` too).
"""

from __future__ import annotations

import math
import re

import numpy as np

from softmax_lab.compute.errors import InvalidInputError

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)
_SPECIAL = {
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
}
_SEPARATORS = re.compile(r"[\s,;]+")


def parse_number(text: str) -> float:
    """Parse one number strictly.

    Raises
    ------
    InvalidInputError
        With the offending text and what is accepted.
    """
    token = text.strip()
    special = _SPECIAL.get(token.lower())
    if special is not None:
        return special
    if not token:
        raise InvalidInputError("empty value: type a number such as 2.5, -1e3, inf or -inf")
    if not _NUMBER.match(token):
        raise InvalidInputError(
            f"{_show(token)} is not a number: use digits 0-9 with an optional sign, "
            "decimal point and exponent (2.5, -1e3), or inf, -inf, nan"
        )
    value = float(token)
    if math.isinf(value):
        raise InvalidInputError(
            f"{_show(token)} is too large for a 64-bit float; type inf if you mean infinity"
        )
    return value


def parse_vector(text: str) -> np.ndarray:
    """Parse comma-, semicolon- or whitespace-separated numbers into a float64 vector."""
    tokens = [t for t in _SEPARATORS.split(text.strip()) if t]
    if not tokens:
        raise InvalidInputError("no numbers given: type logits such as 2, 1, 0.1")
    values = []
    for i, token in enumerate(tokens, start=1):
        try:
            values.append(parse_number(token))
        except InvalidInputError as exc:
            raise InvalidInputError(f"value {i}: {exc}") from None
    return np.asarray(values, dtype=np.float64)


def parse_int_vector(text: str) -> np.ndarray:
    """Parse separated integers (class indices) into an int64 vector."""
    tokens = [t for t in _SEPARATORS.split(text.strip()) if t]
    if not tokens:
        raise InvalidInputError("no class indices given: type indices such as 0, 2, 1")
    out = []
    for i, token in enumerate(tokens, start=1):
        if not re.fullmatch(r"[+-]?\d+", token, re.ASCII):
            raise InvalidInputError(f"value {i}: {_show(token)} is not a whole class index")
        out.append(int(token))
    return np.asarray(out, dtype=np.int64)


def _show(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")
