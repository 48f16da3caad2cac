"""Sessions on disk: the ``.softmaxlab.json`` format (Qt-free).

A session file is a small, strict JSON document holding everything the person
set up: the editor's logits and class names, every intent setting of
:class:`~softmax_lab.app.session.Session`, the batch file that was open (its
path, the array inside it, the targets file), the selected batch row and the
visible panel. Opening it restores exactly that state: logits are written with
``repr`` (the shortest decimal that reads back to the same float64), so they
come back bit for bit; ``inf``, ``-inf`` and ``nan`` are the strings ``"inf"``,
``"-inf"``, ``"nan"`` because strict JSON has no such numbers (so a NaN comes back
as the standard NaN, its sign and payload bits not kept). A vector longer
than :data:`INLINE_CLASSES` (a vocabulary) is stored instead as its raw
little-endian float64 bytes in base64 (``{"encoding": "base64", "dtype":
"<f8", "data": "..."}``): exact as well, and fast to write every few seconds.
``"class_names": null`` means the default names (``class 0``, ``class 1``, ...).

A session file is data, never code: it is parsed with :func:`json.loads` under
a size cap, with the non-standard ``NaN``/``Infinity`` literals refused, and
every value is checked (with the session's own validators, on a scratch
session) before anything in the live session changes.

Example document::

    {
      "format": "softmax-lab-session",
      "version": 1,
      "logits": [2.0, 1.0, 0.1],
      "class_names": ["cat", "dog", "bird"],
      "temperature": 1.0,
      "dtype": "float32",
      "device": "auto",
      "chart_view": "probabilities",
      "target": 0,
      "label_smoothing": 0.0,
      "batch_dim": 1,
      "batch": {"path": "/data/logits.npy", "relative_path": "logits.npy",
                "array_name": null, "targets_path": null},
      "selected_row": null,
      "panel": 0
    }
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softmax_lab.app.session import Session, default_names
from softmax_lab.app.state_files import SESSION_SUFFIX
from softmax_lab.compute.errors import InvalidInputError, LoadError

FORMAT_NAME = "softmax-lab-session"
FORMAT_VERSION = 1

MAX_FILE_BYTES = 256 * 2**20
"""A session holds one vector: 4 million classes written with ``repr`` are ~100 MB.
Anything far larger is not a session (or is hostile): refused before reading."""
MAX_CLASSES = 2**22
INLINE_CLASSES = 4_096
"""Up to this many logits are written as a readable JSON list; more as base64 bytes."""
MAX_NAME_CHARS = 1_000
MAX_PANEL = 63

SETTING_FIELDS: tuple[str, ...] = (
    "temperature",
    "dtype",
    "device",
    "chart_view",
    "target",
    "label_smoothing",
    "batch_dim",
)
"""The session's intent settings a document holds besides logits and names."""

INTENT_FIELDS: tuple[str, ...] = ("logits", "class_names", *SETTING_FIELDS)
"""Every intent field a session file restores (the batch is reloaded from its file)."""

_EXTRA_KEYS = frozenset({"panel", "targets_path"})
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_TOP_KEYS = frozenset(
    {"format", "version", "saved_by", "batch", "selected_row", "panel", *INTENT_FIELDS}
)


@dataclass(frozen=True)
class BatchSource:
    """Where the session's batch came from: reopened when the session is opened."""

    path: Path
    array_name: str | None = None
    targets_path: Path | None = None


@dataclass(frozen=True, eq=False)
class SessionDocument:
    """A validated session document.

    ``fields`` are the intent values to write into the session (all of
    :data:`INTENT_FIELDS`, logits as a read-only float64 array); ``batch``,
    ``selected_row`` and ``panel`` are for the window, which reopens the batch
    file, selects the row once it has loaded and shows the panel.
    """

    fields: dict[str, Any]
    batch: BatchSource | None
    selected_row: int | None
    panel: int | None


# ---------------------------------------------------------------------------------
# Session -> document


def encode_float(value: float) -> float | str:
    """A float as strict JSON: itself when finite (``json`` writes ``repr``), else a string."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def to_document(session: Session, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The session's state as a JSON-ready dict (see the module docstring).

    Parameters
    ----------
    session
        The session to describe; only read.
    extra
        Window state the session does not hold: ``"panel"`` (index of the
        visible tab) and ``"targets_path"`` (the file the batch's targets came
        from, when they came from a separate file).

    Returns
    -------
    dict
        Plain lists, strings, numbers and None, ready for :func:`json.dumps`.
    """
    extra = dict(extra or {})
    unknown = set(extra) - _EXTRA_KEYS
    if unknown:
        raise TypeError(f"unknown session extras: {', '.join(sorted(unknown))}")
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "saved_by": f"softmax-lab {_version()}",
        "logits": encode_logits(session.logits),
        "class_names": None if _default_names(session.class_names) else list(session.class_names),
        "temperature": encode_float(session.temperature),
        "dtype": session.dtype,
        "device": session.device,
        "chart_view": session.chart_view,
        "target": session.target,
        "label_smoothing": encode_float(session.label_smoothing),
        "batch_dim": session.batch_dim,
    }
    batch = session.batch
    if batch is not None and batch.path is not None:
        targets_path = extra.get("targets_path")
        doc["batch"] = {
            "path": str(Path(batch.path).absolute()),
            "array_name": batch.array_name,
            "targets_path": None if targets_path is None else str(Path(targets_path).absolute()),
        }
        doc["selected_row"] = session.selected_row
    else:
        doc["batch"] = None
        doc["selected_row"] = None
    panel = extra.get("panel")
    doc["panel"] = None if panel is None else int(panel)
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    """Strict JSON text of a document (``allow_nan=False``: non-finite floats must be strings).

    One entry per line, each value on its line: readable for a lecture's few
    logits, and a 262,144-class vocabulary stays one line instead of 262,144.
    """
    entries = [
        f"  {json.dumps(str(key))}: "
        + json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
        for key, value in doc.items()
    ]
    return "{\n" + ",\n".join(entries) + "\n}\n"


_DEFAULT_NAMES_SEEN: list[tuple[tuple[str, ...], bool]] = []


def _default_names(names: tuple[str, ...]) -> bool:
    """Whether ``names`` are ``class 0``, ``class 1``, ...; remembered for the last tuple
    seen (the session replaces the tuple on change), as autosave asks every few seconds."""
    for seen, answer in _DEFAULT_NAMES_SEEN:
        if seen is names:
            return answer
    answer = names == default_names(len(names))
    _DEFAULT_NAMES_SEEN[:] = [(names, answer)]
    return answer


def encode_logits(values: np.ndarray) -> list[float | str] | dict[str, str]:
    """Logits for a document: a JSON list (short vectors) or base64 float64 bytes (long ones)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] > INLINE_CLASSES:
        raw = values.astype("<f8", copy=False).tobytes()
        return {"encoding": "base64", "dtype": "<f8", "data": base64.b64encode(raw).decode("ascii")}
    out: list[float | str] = values.tolist()
    with np.errstate(all="ignore"):
        bad = np.flatnonzero(~np.isfinite(values))
    for i in bad.tolist():
        out[i] = encode_float(out[i])
    return out


# ---------------------------------------------------------------------------------
# Document -> session


def parse_document(doc: Any) -> SessionDocument:
    """Check a decoded document completely; raise :class:`LoadError` saying what is wrong.

    Every value goes through the session's own validators (on a scratch
    session), so a document that parses here can be applied without failing.
    """
    if not isinstance(doc, dict):
        raise LoadError(f"a session file holds a JSON object, not {_json_kind(doc)}")
    if doc.get("format") != FORMAT_NAME:
        raise LoadError(
            f'this is not a Softmax Lab session (its "format" is {_clip(doc.get("format"))}, '
            f"expected {FORMAT_NAME!r})"
        )
    version = doc.get("version")
    if type(version) is not int:
        raise LoadError(f'the session\'s "version" must be a whole number, not {_clip(version)}')
    if version > FORMAT_VERSION:
        raise LoadError(
            f"this session was written by a newer Softmax Lab (format version {version}; "
            f"this one reads up to {FORMAT_VERSION}): update Softmax Lab to open it"
        )
    if version < 1:
        raise LoadError(f"unknown session format version {version}")
    missing = [k for k in INTENT_FIELDS if k not in doc]
    if missing:
        raise LoadError(f"the session is missing {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise LoadError(
            f"the session has unknown entries: {', '.join(repr(k) for k in unknown[:5])}"
        )

    logits = _logits(doc["logits"])
    names = _names(doc["class_names"], logits.shape[0])
    fields: dict[str, Any] = {
        "logits": logits,
        "class_names": names,
        "temperature": _number(doc["temperature"], "temperature"),
        "dtype": _string(doc["dtype"], "dtype"),
        "device": _string(doc["device"], "device"),
        "chart_view": _string(doc["chart_view"], "chart_view"),
        "target": _optional_int(doc["target"], "target"),
        "label_smoothing": _number(doc["label_smoothing"], "label_smoothing"),
        "batch_dim": _int(doc["batch_dim"], "batch_dim"),
    }
    # The session's validators decide what is valid; a scratch session keeps the
    # live one untouched whatever they say.
    probe = Session()
    try:
        probe.update(**fields)
    except InvalidInputError as exc:
        raise LoadError(f"the session holds a value Softmax Lab cannot use: {exc}") from None
    fields = {name: getattr(probe, name) for name in INTENT_FIELDS}

    batch = _batch(doc.get("batch"))
    selected_row = _optional_int(doc.get("selected_row"), "selected_row")
    if selected_row is not None and (batch is None or selected_row < 0):
        raise LoadError(
            f"the session selects batch row {selected_row}, but "
            + ("holds no batch" if batch is None else "rows are numbered from 0")
        )
    panel = _optional_int(doc.get("panel"), "panel")
    if panel is not None and not 0 <= panel <= MAX_PANEL:
        raise LoadError(f"the session's panel {panel} does not exist")
    return SessionDocument(fields=fields, batch=batch, selected_row=selected_row, panel=panel)


def apply_document(session: Session, doc: Any) -> SessionDocument:
    """Restore a decoded session document into ``session``: all of it, or nothing.

    Validates everything first (:func:`parse_document`, and that the batch
    file, if any, still exists); then writes every intent field in one
    :meth:`Session.update` (one recompute) and clears the loaded batch. The
    caller reopens ``result.batch`` (the controller loads files), selects
    ``result.selected_row`` once it has loaded and shows ``result.panel``.

    Raises
    ------
    LoadError
        The document is malformed or holds an unusable value, or its batch
        file is gone; the session is unchanged.
    """
    parsed = doc if isinstance(doc, SessionDocument) else parse_document(doc)
    batch = parsed.batch
    if batch is not None:
        for what, path in (("batch file", batch.path), ("targets file", batch.targets_path)):
            if path is not None and not path.is_file():
                raise LoadError(f"the session's {what} {path} is missing (moved or deleted?)")
    values = dict(parsed.fields)
    # Logits before the target: the target is checked against the number of classes.
    ordered = {name: values[name] for name in INTENT_FIELDS}
    session.update(**ordered, batch=None, selected_row=None)
    return parsed


# ---------------------------------------------------------------------------------
# Files


def save_session(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` to ``path`` atomically (the old file survives a failed write).

    A batch path is also stored relative to the session file, so a folder
    holding a session and its data can be moved or shared as a whole.

    Returns the path written. Raises :class:`OSError` when the file cannot be written.
    """
    from softmax_lab.compute.tables import write_text_atomic

    target = Path(path)
    doc = dict(doc)
    batch = doc.get("batch")
    if isinstance(batch, dict) and batch.get("path"):
        batch = dict(batch)
        # ValueError: another drive on Windows, where no relative path exists.
        with contextlib.suppress(ValueError):
            batch["relative_path"] = os.path.relpath(batch["path"], target.absolute().parent)
        doc["batch"] = batch
    write_text_atomic(target, dumps(doc))
    return target


def load_session(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a session file; return its decoded document.

    The document is validated completely (:func:`parse_document`) but not
    applied: pass it to :func:`apply_document`. When the batch file is not
    where the session says but sits at the same place relative to the session
    file (the folder was moved), the document is returned pointing there.

    Raises
    ------
    LoadError
        Unreadable, too large, not strict JSON, or not a valid session; the
        message names the file and says what is wrong.
    """
    source = Path(path)
    where = source.name
    try:
        size = source.stat().st_size
    except FileNotFoundError:
        raise LoadError(f"{where}: no such file") from None
    except OSError as exc:
        raise LoadError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if not source.is_file():
        raise LoadError(f"{where}: not a file")
    if size > MAX_FILE_BYTES:
        raise LoadError(
            f"{where}: {size:,} bytes is far larger than any session "
            f"(at most {MAX_FILE_BYTES // 2**20} MiB); it was not read"
        )
    try:
        with source.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LoadError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:  # it grew while we looked
        raise LoadError(f"{where}: larger than any session; it was not read")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(f"{where}: not a session file (not UTF-8 text)") from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise LoadError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "the file may be truncated or damaged"
        ) from None
    except ValueError as exc:  # NaN/Infinity literals
        raise LoadError(f"{where}: {exc}") from None
    except RecursionError:
        raise LoadError(f"{where}: nested too deeply to be a session") from None
    try:
        parsed = parse_document(doc)
    except LoadError as exc:
        raise LoadError(f"{where}: {exc}") from None
    if parsed.batch is not None and not parsed.batch.path.is_file():
        moved = _relative_fallback(source, doc["batch"])
        if moved is not None:
            doc = {**doc, "batch": {**doc["batch"], "path": str(moved)}}
    return doc


def same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two decoded documents describe the same state (ignoring who wrote them)."""

    def key(doc: Mapping[str, Any]) -> tuple[Any, ...]:
        batch = doc.get("batch")
        source = (
            None
            if not isinstance(batch, dict)
            else tuple(batch.get(k) for k in ("path", "array_name", "targets_path"))
        )
        return (
            *(json.dumps(doc.get(k), allow_nan=True) for k in INTENT_FIELDS),
            source,
            doc.get("selected_row"),
            doc.get("panel"),
        )

    return key(a) == key(b)


def is_session_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a session file (by its ``.softmaxlab.json`` suffix)."""
    return Path(path).name.lower().endswith(SESSION_SUFFIX)


def with_session_suffix(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``.softmaxlab.json`` appended unless it already ends so."""
    p = Path(path)
    if is_session_path(p):
        return p
    if p.suffix.lower() == ".json":
        p = p.with_suffix("")
    return p.with_name(p.name + SESSION_SUFFIX)


# ---------------------------------------------------------------------------------
# helpers


def _refuse_constant(name: str) -> Any:
    raise ValueError(
        f'the JSON literal {name} is not allowed: write "nan", "inf" or "-inf" as strings'
    )


def _relative_fallback(source: Path, batch: dict[str, Any]) -> Path | None:
    rel = batch.get("relative_path")
    if not isinstance(rel, str) or not rel:
        return None
    candidate = (source.absolute().parent / rel).resolve()
    return candidate if candidate.is_file() else None


def _logits(value: Any) -> np.ndarray:
    if isinstance(value, dict):
        return _base64_logits(value)
    if not isinstance(value, list):
        raise LoadError(f'"logits" must be a list of numbers, not {_json_kind(value)}')
    if not value:
        raise LoadError('"logits" is empty: at least one class is needed')
    if len(value) > MAX_CLASSES:
        raise LoadError(
            f'"logits" holds {len(value):,} values; at most {MAX_CLASSES:,} are supported'
        )
    numbers = list(value)
    # Exact types: JSON true/false are bools (an int subclass) and not logits.
    for i in [i for i, v in enumerate(value) if type(v) is not float and type(v) is not int]:
        v = value[i]
        if not (isinstance(v, str) and v in _NONFINITE):
            raise LoadError(
                f'"logits"[{i}] is {_clip(v)}: each logit is a number or "inf", "-inf", "nan"'
            )
        numbers[i] = _NONFINITE[v]
    try:
        return np.array(numbers, dtype=np.float64)
    except OverflowError:  # an integer beyond float64 (JSON allows any length)
        raise LoadError('"logits" holds a whole number too large for float64') from None


def _base64_logits(value: dict[str, Any]) -> np.ndarray:
    if set(value) != {"encoding", "dtype", "data"}:
        raise LoadError('"logits" as an object needs exactly "encoding", "dtype" and "data"')
    if value["encoding"] != "base64" or value["dtype"] != "<f8":
        raise LoadError(
            f'"logits" in encoding {_clip(value["encoding"])} and dtype {_clip(value["dtype"])} '
            'is not supported (only "base64" of "<f8")'
        )
    data = value["data"]
    if not isinstance(data, str):
        raise LoadError('"logits"."data" must be a base64 string')
    # Checked before decoding: the text's length is the claim.
    if len(data) > 4 * math.ceil(MAX_CLASSES * 8 / 3):
        raise LoadError(
            f'"logits" holds more than {MAX_CLASSES:,} values; that many are not supported'
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise LoadError('"logits"."data" is not valid base64') from None
    if not raw or len(raw) % 8:
        raise LoadError(f'"logits" holds {len(raw)} bytes: not a whole number of float64 values')
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def _names(value: Any, count: int) -> tuple[str, ...]:
    if value is None:
        return default_names(count)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LoadError('"class_names" must be a list of strings (or null: the default names)')
    if len(value) != count:
        raise LoadError(f'"class_names" has {len(value)} names for {count} logits')
    for i, name in enumerate(value):
        if len(name) > MAX_NAME_CHARS:
            raise LoadError(
                f'"class_names"[{i}] is {len(name):,} characters long (at most {MAX_NAME_CHARS:,})'
            )
    return tuple(value)


def _number(value: Any, key: str) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    raise LoadError(f'"{key}" must be a number, not {_clip(value)}')


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise LoadError(f'"{key}" must be a string, not {_clip(value)}')
    return value


def _int(value: Any, key: str) -> int:
    # bool is an int in Python but true/false is not a class index in a file.
    if type(value) is not int:
        raise LoadError(f'"{key}" must be a whole number, not {_clip(value)}')
    return value


def _optional_int(value: Any, key: str) -> int | None:
    return None if value is None else _int(value, key)


def _optional_str(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LoadError(f'"{key}" must be a non-empty string or null, not {_clip(value)}')
    return value


def _batch(value: Any) -> BatchSource | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise LoadError(f'"batch" must be an object or null, not {_json_kind(value)}')
    unknown = sorted(set(value) - {"path", "relative_path", "array_name", "targets_path"})
    if unknown:
        raise LoadError(f'"batch" has unknown entries: {", ".join(repr(k) for k in unknown[:5])}')
    path = _optional_str(value.get("path"), "batch.path")
    if path is None:
        raise LoadError('"batch" needs a "path"')
    _optional_str(value.get("relative_path"), "batch.relative_path")
    array_name = _optional_str(value.get("array_name"), "batch.array_name")
    targets = _optional_str(value.get("targets_path"), "batch.targets_path")
    return BatchSource(Path(path), array_name, None if targets is None else Path(targets))


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def _clip(value: Any, limit: int = 40) -> str:
    if isinstance(value, dict | list):
        return _json_kind(value)  # never serialise a (possibly huge) container for a message
    text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("softmax-lab")
    except PackageNotFoundError:
        return "unknown"
