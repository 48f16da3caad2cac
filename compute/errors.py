"""Errors the compute core raises: each carries a message a person can act on."""

from __future__ import annotations


class SoftmaxLabError(Exception):
    """Base class: anything the user caused and can fix."""


class InvalidInputError(SoftmaxLabError, ValueError):
    """A value the user gave is not usable (bad number, T <= 0, target out of range)."""


class DeviceUnavailableError(SoftmaxLabError):
    """The requested device (CUDA) is not available on this machine."""


class ComputeMemoryError(SoftmaxLabError, MemoryError):
    """The computation did not fit in memory on the chosen device."""


class LoadError(SoftmaxLabError):
    """A file could not be loaded: the message names the file, what was wrong and what works."""
