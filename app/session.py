"""The session: the single source of truth of the window, free of Qt.

Widgets write the person's intent here (logits, temperature, dtype, ...); the
controller turns intent changes into compute requests and writes the results
back; widgets render results. Every field emits its own signal only when its
value really changes, and :attr:`Session.changed` emits once per update with
the set of field names that changed, so an edit that sets logits and class
names together triggers one recompute, not two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

from softmax_lab.app.events import Signal
from softmax_lab.app.example import (
    SEED_DTYPE,
    SEED_LOGITS,
    SEED_TARGET,
    SEED_TEMPERATURE,
    default_names,
)
from softmax_lab.compute.dtypes import DTYPE_NAMES
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.validation import check_label_smoothing, check_temperature

T = TypeVar("T")

CHART_VIEWS: tuple[str, ...] = ("probabilities", "log-probabilities", "logits")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True, eq=False)
class Message:
    """What the message bar shows: ``level`` is info, warning or error."""

    level: str
    text: str
    source: str = ""


@dataclass(frozen=True, eq=False)
class LoadedBatch:
    """A batch tensor opened from a file, as the session keeps it."""

    data: np.ndarray
    """(N, C) logits (a 1-D file becomes one row)."""
    path: Path | None
    class_names: tuple[str, ...] | None = None
    array_name: str | None = None
    targets: np.ndarray | None = None
    """(N,) int64 target classes, or None."""
    nonfinite_count: int | None = None
    """How many logits are NaN or ±inf, when the loader counted them."""


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


class Field(Generic[T]):
    """A session attribute that validates on write and emits only on real change."""

    def __init__(self, default: T, validate: Callable[[Any, Any], T] | None = None) -> None:
        self.default = default
        self.validate = validate
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Field[T]: ...
    @overload
    def __get__(self, obj: Session, owner: type) -> T: ...
    def __get__(self, obj: Session | None, owner: type) -> T | Field[T]:
        if obj is None:
            return self
        return obj._values.get(self.name, self.default)  # type: ignore[no-any-return]

    def __set__(self, obj: Session, value: Any) -> None:
        if self.validate is not None:
            value = self.validate(obj, value)
        if _same(obj._values.get(self.name, self.default), value):
            return
        obj._values[self.name] = value
        obj._mark(self.name)


# -- validators: raise InvalidInputError with a readable message, change nothing --


def _logits(_: Session, value: Any) -> np.ndarray:
    # flatten: one fresh copy that owns its data (reshape gave a view), which the compute
    # core needs to reuse the T = 1 reference during a temperature drag.
    arr = np.asarray(value, dtype=np.float64).flatten()
    if arr.size == 0:
        raise InvalidInputError("at least one class is needed")
    arr.setflags(write=False)
    return arr


def _names(session: Session, value: Any) -> tuple[str, ...]:
    # A vocabulary has 262,144 names: the session's own tuple is taken as it is (a
    # logit edit passes it back), and others are converted by map, not a generator
    # (4x faster; at that size the names cost more than the softmax).
    if value is session.class_names:
        return value  # type: ignore[no-any-return]
    return tuple(map(str, value))


def _temperature(_: Session, value: Any) -> float:
    return check_temperature(value)


def _choice(options: tuple[str, ...], what: str) -> Callable[[Session, Any], str]:
    def validate(_: Session, value: Any) -> str:
        if value not in options:
            raise InvalidInputError(f"unknown {what} {value!r}; choose one of {', '.join(options)}")
        return str(value)

    return validate


def _target(session: Session, value: Any) -> int | None:
    if value is None:
        return None
    index = int(value)
    if not 0 <= index < session.num_classes:
        raise InvalidInputError(
            f"target class {index} is out of range: there are {session.num_classes} classes"
        )
    return index


def _smoothing(_: Session, value: Any) -> float:
    return check_label_smoothing(value)


def _batch_dim(_: Session, value: Any) -> int:
    if value not in (0, 1):
        raise InvalidInputError("a batch is (N, C): normalise along dim 1 (rows) or dim 0 (columns)")
    return int(value)


class Session:
    """Everything the window shows, as plain Python data.

    Intent fields are written by widgets (through the person's actions);
    result fields (``analysis``, ``batch_analysis``, ``message``, ``busy``) are
    written by the controller.
    """

    # -- intent ---------------------------------------------------------------
    logits: Field[np.ndarray] = Field(np.array(SEED_LOGITS), _logits)
    class_names: Field[tuple[str, ...]] = Field(default_names(len(SEED_LOGITS)), _names)
    temperature: Field[float] = Field(SEED_TEMPERATURE, _temperature)
    dtype: Field[str] = Field(SEED_DTYPE, _choice(DTYPE_NAMES, "dtype"))
    device: Field[str] = Field("auto", _choice(DEVICES, "device"))
    chart_view: Field[str] = Field("probabilities", _choice(CHART_VIEWS, "chart view"))
    target: Field[int | None] = Field(SEED_TARGET, _target)
    label_smoothing: Field[float] = Field(0.0, _smoothing)
    batch: Field[LoadedBatch | None] = Field(None)
    batch_dim: Field[int] = Field(1, _batch_dim)
    selected_row: Field[int | None] = Field(None)

    # -- results (written by the controller) ----------------------------------
    analysis: Field[Any] = Field(None)
    """The latest :class:`~softmax_lab.compute.analysis.VectorAnalysis` of the editor's vector."""
    batch_analysis: Field[Any] = Field(None)
    """The latest :class:`~softmax_lab.compute.batch.BatchResult` of the loaded batch."""
    message: Field[Message | None] = Field(None)
    busy: Field[str] = Field("")
    """Non-empty while a long job runs: what it is doing (for the progress indicator)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._pending: list[str] = []
        self._depth = 0
        self.changed = Signal()
        """Emits a frozenset of the field names changed by one update."""
        self.events: dict[str, Signal] = {name: Signal() for name in self.field_names()}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(k for k, v in vars(cls).items() if isinstance(v, Field))

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[0])

    # -- updating ---------------------------------------------------------------

    @contextmanager
    def updating(self) -> Iterator[None]:
        """Group several writes into one ``changed`` emission.

        If a write inside raises, the fields written before it keep their new
        values; use :meth:`update` for all-or-nothing writes.
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    def update(self, **fields: Any) -> None:
        """Write several fields at once, all or nothing, with one ``changed`` emission."""
        saved_values, saved_pending = dict(self._values), list(self._pending)
        self._depth += 1
        try:
            for name, value in fields.items():
                if name not in self.events:
                    raise AttributeError(f"Session has no field {name!r}")
                setattr(self, name, value)
        except BaseException:
            # Nothing was emitted yet (depth > 0): roll back as if never written.
            self._values, self._pending = saved_values, saved_pending
            raise
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    def set_vector(self, logits: Any, class_names: Any = None) -> None:
        """Replace the editor's vector (and names), keeping the target valid."""
        arr = _logits(self, logits)
        n = arr.shape[0]
        if class_names is None:  # keep the names there are; new classes get default ones
            old = self.class_names
            if len(old) >= n:
                class_names = old if len(old) == n else old[:n]
            else:
                class_names = old + default_names(n, start=len(old))
        names = _names(self, class_names)
        if len(names) != n:
            raise InvalidInputError(f"{len(names)} class names for {n} logits")
        target = self.target
        if target is not None and target >= n:
            target = n - 1
        with self.updating():
            self.logits = arr
            self.class_names = names
            self.target = target

    def _mark(self, name: str) -> None:
        if name not in self._pending:
            self._pending.append(name)
        if self._depth == 0:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        names, self._pending = self._pending, []
        for name in names:
            self.events[name].emit(getattr(self, name))
        self.changed.emit(frozenset(names))

    # -- messages -----------------------------------------------------------------

    def report(self, level: str, text: str, source: str = "") -> None:
        self.message = Message(level, text, source)

    def clear_message(self, source: str | None = None) -> None:
        current = self.message
        if current is not None and (source is None or current.source == source):
            self.message = None
