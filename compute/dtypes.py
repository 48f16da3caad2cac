"""The floating-point types the lab computes in, and their limits.

Limits are kept here as plain numbers (IEEE-754 facts) so that the window can
show them without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from softmax_lab.compute.errors import InvalidInputError


@dataclass(frozen=True)
class DTypeInfo:
    """What a person needs to know about a float type to reason about softmax in it."""

    name: str
    bits: int
    max: float
    """Largest finite value."""
    smallest_normal: float
    smallest_subnormal: float
    eps: float

    @property
    def naive_limit(self) -> float:
        """Largest logit whose naive ``exp`` is still finite: ``log(max)``.

        A naive softmax (exp / sum, no max subtraction) overflows once a logit
        exceeds this; the max-subtracted version never does.
        """
        return math.log(self.max)

    @property
    def underflow_limit(self) -> float:
        """Below this logit ``exp`` rounds to 0 even as a subnormal: ``log(smallest_subnormal / 2)``."""
        # FIX: float64's smallest_subnormal / 2 rounds to 0.0 and math.log(0.0)
        # raised ValueError; subtract log 2 instead of halving.
        return math.log(self.smallest_subnormal) - math.log(2.0)


DTYPES: dict[str, DTypeInfo] = {
    "float16": DTypeInfo("float16", 16, 65504.0, 2.0**-14, 2.0**-24, 2.0**-10),
    "bfloat16": DTypeInfo("bfloat16", 16, 3.3895313892515355e38, 2.0**-126, 2.0**-133, 2.0**-7),
    "float32": DTypeInfo("float32", 32, 3.4028234663852886e38, 2.0**-126, 2.0**-149, 2.0**-23),
    "float64": DTypeInfo("float64", 64, 1.7976931348623157e308, 2.0**-1022, 2.0**-1074, 2.0**-52),
}

DTYPE_NAMES: tuple[str, ...] = tuple(DTYPES)
DEFAULT_DTYPE = "float32"


def dtype_info(name: str) -> DTypeInfo:
    """Return the limits of ``name`` (one of :data:`DTYPE_NAMES`)."""
    try:
        return DTYPES[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown dtype {name!r}; choose one of {', '.join(DTYPE_NAMES)}"
        ) from None


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` for ``name``; imports torch."""
    import torch

    dtype_info(name)  # validates the name with a readable message
    return getattr(torch, name)
