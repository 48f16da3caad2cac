"""Lectures: a small TOML file of scenes, each a state of the lab plus a caption (Qt-free).

A lecture is what a lecturer steps through in presenter mode: every scene sets
the logits, class names, temperature, dtype, chart view, target and (for the
batch scenes) a small inline batch, names the panel to show beside the chart,
and carries one paragraph of caption shown under it. The file format::

    version = 1
    title = "Softmax, step by step"

    [[scene]]
    title = "What softmax does"            # required
    logits = [2.0, 1.0, 0.1]               # required; inf, -inf, nan or "inf", "-inf" allowed
    names = ["cat", "dog", "bird"]         # optional, one per logit
    temperature = 1.0                      # optional (1.0)
    dtype = "float32"                      # optional: float16, bfloat16, float32, float64
    panel = "chart"                        # optional: chart, steps, overflow, loss, batch
    chart_view = "probabilities"           # optional: probabilities, log-probabilities, logits
    target = 0                             # optional class index (default: no target)
    label_smoothing = 0.0                  # optional, 0..1
    batch = [[2.0, 1.0, 0.1], [0.5, 2.5, 1.0]]   # optional (N, C) logits for the batch panel
    dim = 1                                # optional, with batch only: 1 (rows) or 0 (columns)
    caption = "One paragraph, read aloud."

A scene without ``batch`` leaves a batch the person opened alone (it only
matters on the batch panel, and a scene must not throw away a file someone
loaded); a scene with ``batch`` replaces it.

Reading is strict: :func:`load_lecture` checks every field and raises
:class:`LectureError` with a message naming the file, the scene and the field
(``lecture.toml, scene 3 "Temperature": temperature must be ...``); nothing is
applied from a file that fails. Writing (:func:`save_lecture`) goes through a
temporary file and an atomic rename, and every written document is read back
and compared before it replaces anything.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from softmax_lab.app.session import CHART_VIEWS, LoadedBatch, Session, default_names
from softmax_lab.compute.dtypes import DTYPE_NAMES
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.parsing import parse_number
from softmax_lab.compute.validation import check_temperature

PANELS: tuple[str, ...] = ("chart", "steps", "overflow", "loss", "batch")
"""What a scene shows beside the chart: nothing else, or one of the window's panels."""
FORMAT_VERSION = 1

MAX_FILE_BYTES = 1_000_000
MAX_SCENES = 200
MAX_CLASSES = 1_000
"""A scene is for a room to read: at most this many logits (and batch columns)."""
MAX_BATCH_ROWS = 100
MAX_TITLE = 200
MAX_NAME = 100
MAX_CAPTION = 4_000

DEFAULT_LECTURE_TITLE = "Untitled lecture"
BUILTIN = "builtin"
"""``--lecture builtin`` names the packaged lecture (unless a file of that name exists)."""
_WRAP = 88
_SCENE_KEYS: tuple[str, ...] = (
    "title",
    "logits",
    "names",
    "temperature",
    "dtype",
    "panel",
    "chart_view",
    "target",
    "label_smoothing",
    "batch",
    "dim",
    "caption",
)
_TOP_KEYS: tuple[str, ...] = ("version", "title", "scene")


class LectureError(InvalidInputError):
    """A lecture file (or a scene) is not usable; the message names the scene and field."""


def _float_key(values: Sequence[float]) -> tuple[Any, ...]:
    # NaN != NaN: compare NaN logits by name so a scene equals its own reloaded copy.
    return tuple("nan" if math.isnan(v) else v for v in values)


@dataclass(frozen=True, eq=False)
class Scene:
    """One step of a lecture: a complete vector state, the panel to show and a caption."""

    title: str
    logits: tuple[float, ...]
    names: tuple[str, ...] | None = None
    """Class names, one per logit; None means the default "class 0", "class 1", ..."""
    temperature: float = 1.0
    dtype: str = "float32"
    panel: str = "chart"
    chart_view: str = "probabilities"
    target: int | None = None
    label_smoothing: float = 0.0
    batch: tuple[tuple[float, ...], ...] | None = None
    """An inline (N, C) batch for the batch panel, or None (leave the loaded batch alone)."""
    dim: int = 1
    caption: str = ""

    def _key(self) -> tuple[Any, ...]:
        batch = None if self.batch is None else tuple(_float_key(r) for r in self.batch)
        return (
            self.title,
            _float_key(self.logits),
            self.names,
            self.temperature,
            self.dtype,
            self.panel,
            self.chart_view,
            self.target,
            self.label_smoothing,
            batch,
            self.dim,
            self.caption,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scene):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names the session will show (the defaults when none are given)."""
        return self.names if self.names is not None else default_names(len(self.logits))


@dataclass(frozen=True)
class Lecture:
    """A titled, ordered tuple of scenes. Editing returns a new lecture."""

    title: str
    scenes: tuple[Scene, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.scenes)

    def inserted(self, index: int, scene: Scene) -> Lecture:
        """A copy with ``scene`` inserted before position ``index`` (clamped to 0..len)."""
        index = max(0, min(index, len(self.scenes)))
        return replace(self, scenes=(*self.scenes[:index], scene, *self.scenes[index:]))

    def removed(self, index: int) -> Lecture:
        """A copy without the scene at ``index``."""
        self._check_index(index)
        return replace(self, scenes=self.scenes[:index] + self.scenes[index + 1 :])

    def moved(self, index: int, to: int) -> Lecture:
        """A copy with the scene at ``index`` moved to position ``to`` (clamped)."""
        self._check_index(index)
        to = max(0, min(to, len(self.scenes) - 1))
        scenes = list(self.scenes)
        scenes.insert(to, scenes.pop(index))
        return replace(self, scenes=tuple(scenes))

    def replaced(self, index: int, scene: Scene) -> Lecture:
        """A copy with the scene at ``index`` replaced by ``scene``."""
        self._check_index(index)
        return replace(self, scenes=(*self.scenes[:index], scene, *self.scenes[index + 1 :]))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.scenes):
            raise IndexError(f"no scene {index + 1}: the lecture has {len(self.scenes)}")


# ---------------------------------------------------------------------------
# Reading


def builtin_lecture_path() -> Path:
    """The packaged lecture (``resources/lecture.toml``): the classic tutorial story."""
    from softmax_lab.resources import path

    return path("lecture.toml")


def resolve_lecture_path(text: str | Path) -> Path:
    """The file ``text`` names; ``"builtin"`` is the packaged lecture unless such a file exists."""
    candidate = Path(text)
    if str(text) == BUILTIN and not candidate.exists():
        return builtin_lecture_path()
    return candidate


def load_lecture(path: str | Path) -> Lecture:
    """Read and check a lecture file.

    Parameters
    ----------
    path
        A UTF-8 TOML file in the format described in this module's docstring.

    Returns
    -------
    Lecture
        Every scene checked; nothing is applied to any session.

    Raises
    ------
    LectureError
        The file is missing, too large, not UTF-8, not TOML, or a scene is
        wrong; the message names the file, the scene and the field.
    """
    path = Path(path)
    name = path.name or str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise LectureError(f"{path}: no such lecture file") from None
    except IsADirectoryError:
        raise LectureError(f"{path} is a folder, not a lecture file") from None
    except OSError as exc:
        raise LectureError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise LectureError(
            f"{name} is larger than {MAX_FILE_BYTES // 1000:,} kB; a lecture is a small text file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LectureError(
            f"{name} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return parse_lecture(text, source=name, default_title=path.stem)


def parse_lecture(text: str, source: str = "lecture", default_title: str = "Lecture") -> Lecture:
    """Parse and check a lecture from TOML ``text``; ``source`` names it in errors."""
    try:
        raw = tomllib.loads(text, parse_float=_parse_float)
    except tomllib.TOMLDecodeError as exc:
        raise LectureError(f"{source} is not valid TOML{_scene_at(text, str(exc))}: {exc}") from None
    unknown = [k for k in raw if k not in _TOP_KEYS]
    if unknown:
        hint = " (each scene starts with [[scene]])" if "scenes" in unknown else ""
        raise LectureError(
            f"{source}: unknown key {unknown[0]!r}{hint}; a lecture has "
            f"{', '.join(_TOP_KEYS)}"
        )
    version = raw.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise LectureError(
            f"{source}: version {version!r} is not supported (this Softmax Lab reads version "
            f"{FORMAT_VERSION})"
        )
    title = raw.get("title", default_title)
    _check_text(title, "title", MAX_TITLE, source)
    scenes_raw = raw.get("scene")
    if scenes_raw is None:
        raise LectureError(f"{source} has no scenes: add one with a [[scene]] table")
    if isinstance(scenes_raw, Mapping):
        raise LectureError(f"{source}: write each scene as [[scene]] (two brackets), not [scene]")
    if not isinstance(scenes_raw, list) or not all(isinstance(s, Mapping) for s in scenes_raw):
        raise LectureError(f"{source}: 'scene' must be a list of [[scene]] tables")
    if not scenes_raw:
        raise LectureError(f"{source} has no scenes: add one with a [[scene]] table")
    if len(scenes_raw) > MAX_SCENES:
        raise LectureError(
            f"{source} has {len(scenes_raw):,} scenes; a lecture holds at most {MAX_SCENES}"
        )
    scenes = tuple(
        _scene(s, f"{source}, scene {i}", i) for i, s in enumerate(scenes_raw, start=1)
    )
    return Lecture(title=title, scenes=scenes)


def _scene_at(text: str, message: str) -> str:
    """", in scene N" when the TOML error's line lies inside the N-th [[scene]] table."""
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    if match:
        line = int(match.group(1))
    elif "(at end of document)" in message:
        line = len(text.splitlines())
    else:
        return ""
    headers = [
        i
        for i, row in enumerate(text.splitlines()[: line], start=1)
        if re.match(r"\s*\[\[\s*scene\s*\]\]", row)
    ]
    return f" (in scene {len(headers)})" if headers else ""


def _check_text(value: Any, what: str, limit: int, where: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise LectureError(f"{where}: {what} must be text in quotes, not {_kind(value)}")
    if not value.strip() and not empty_ok:
        raise LectureError(f"{where}: {what} is empty")
    if len(value) > limit:
        raise LectureError(f"{where}: {what} is {len(value):,} characters long; at most {limit:,}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, str):
        return f"the text {_clip(value)}"
    return f"{type(value).__name__} {_clip(value)}"


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _TooLarge:
    """A TOML float literal beyond float64 (1e400): refused with the scene named, not made inf."""

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return self.literal


def _parse_float(literal: str) -> float | _TooLarge:
    value = float(literal)
    if math.isinf(value) and "inf" not in literal:
        return _TooLarge(literal)
    return value


def _number(value: Any, what: str, where: str) -> float:
    """A TOML number or a number written as text ("inf", "-inf", "nan", "2.5")."""
    if isinstance(value, _TooLarge):
        raise LectureError(
            f"{where}: {what} = {value.literal} is too large for a 64-bit float; "
            "write inf if you mean infinity"
        )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LectureError(f"{where}: {what} must be a number (or \"inf\", \"-inf\"), not {_kind(value)}")
    if isinstance(value, str):
        try:
            return parse_number(value)
        except InvalidInputError as exc:
            raise LectureError(f"{where}: {what}: {exc}") from None
    try:
        return float(value)
    except OverflowError:
        raise LectureError(f"{where}: {what} = {_clip(value)} is too large for a float") from None


def _numbers(value: Any, what: str, where: str, limit: int) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise LectureError(f"{where}: {what} must be a list of numbers like [2.0, 1.0, 0.1], not {_kind(value)}")
    if not value:
        raise LectureError(f"{where}: {what} is empty; give at least one number")
    if len(value) > limit:
        raise LectureError(
            f"{where}: {what} has {len(value):,} values; a scene holds at most {limit:,}"
        )
    return tuple(_number(v, f"{what}[{i}]", where) for i, v in enumerate(value))


def _whole(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LectureError(f"{where}: {what} must be a whole number, not {_kind(value)}")
    return value


def _choice(value: Any, what: str, options: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise LectureError(
            f"{where}: {what} must be one of {', '.join(options)}, not {_kind(value)}"
        )
    return value


def _scene(raw: Mapping[str, Any], where: str, number: int | None = None) -> Scene:
    """Check one scene table; ``where`` says which scene in every message."""
    title = raw.get("title")
    if isinstance(title, str) and title.strip():
        shown = title if len(title) <= 40 else title[:37] + "..."
        where = f"{where} \"{shown}\""
    unknown = [k for k in raw if k not in _SCENE_KEYS]
    if unknown:
        raise LectureError(
            f"{where}: unknown field {unknown[0]!r}; a scene has {', '.join(_SCENE_KEYS)}"
        )
    for required in ("title", "logits"):
        if required not in raw:
            raise LectureError(f"{where}: missing field {required!r}")
    title = _check_text(title, "title", MAX_TITLE, where)
    logits = _numbers(raw["logits"], "logits", where, MAX_CLASSES)
    n = len(logits)

    names: tuple[str, ...] | None = None
    if "names" in raw:
        value = raw["names"]
        if not isinstance(value, list):
            raise LectureError(f"{where}: names must be a list of texts, not {_kind(value)}")
        if len(value) != n:
            raise LectureError(f"{where}: {len(value)} names for {n} logits; give one name per logit")
        names = tuple(_check_text(v, f"names[{i}]", MAX_NAME, where) for i, v in enumerate(value))
        if any(ch in name for name in names for ch in "\n\r\t"):
            raise LectureError(f"{where}: a class name contains a line break or tab")

    temperature = 1.0
    if "temperature" in raw:
        value = _number(raw["temperature"], "temperature", where)
        try:
            temperature = check_temperature(value)
        except InvalidInputError as exc:
            raise LectureError(f"{where}: {exc}") from None

    dtype = _choice(raw.get("dtype", "float32"), "dtype", DTYPE_NAMES, where)
    panel = _choice(raw.get("panel", "chart"), "panel", PANELS, where)
    chart_view = _choice(raw.get("chart_view", "probabilities"), "chart_view", CHART_VIEWS, where)

    target: int | None = None
    if "target" in raw:
        target = _whole(raw["target"], "target", where)
        if not 0 <= target < n:
            raise LectureError(
                f"{where}: target {target} is out of range: there are {n} classes (0..{n - 1})"
            )

    smoothing = 0.0
    if "label_smoothing" in raw:
        smoothing = _number(raw["label_smoothing"], "label_smoothing", where)
        if not 0.0 <= smoothing <= 1.0:
            raise LectureError(f"{where}: label_smoothing must be between 0 and 1 (got {smoothing:g})")

    batch: tuple[tuple[float, ...], ...] | None = None
    if "batch" in raw:
        batch = _batch(raw["batch"], where)
    dim = 1
    if "dim" in raw:
        if batch is None:
            raise LectureError(f"{where}: dim is for a batch; add batch = [[...], ...] or remove dim")
        dim = _whole(raw["dim"], "dim", where)
        if dim not in (0, 1):
            raise LectureError(
                f"{where}: dim must be 1 (each row sums to 1) or 0 (each column), not {dim}"
            )

    caption = _check_text(raw.get("caption", ""), "caption", MAX_CAPTION, where, empty_ok=True)
    return Scene(
        title=title,
        logits=logits,
        names=names,
        temperature=temperature,
        dtype=dtype,
        panel=panel,
        chart_view=chart_view,
        target=target,
        label_smoothing=smoothing,
        batch=batch,
        dim=dim,
        caption=caption,
    )


def _batch(value: Any, where: str) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise LectureError(
            f"{where}: batch must be a list of rows, each a list of numbers: [[2.0, 1.0], [0.5, 3.0]]"
        )
    if len(value) > MAX_BATCH_ROWS:
        raise LectureError(
            f"{where}: batch has {len(value):,} rows; a scene holds at most {MAX_BATCH_ROWS}"
        )
    rows = tuple(_numbers(r, f"batch row {i}", where, MAX_CLASSES) for i, r in enumerate(value))
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise LectureError(
            f"{where}: batch rows have different lengths ({', '.join(str(len(r)) for r in rows)}); "
            "every row needs one logit per class"
        )
    return rows


# ---------------------------------------------------------------------------
# Writing


def lecture_to_toml(lecture: Lecture) -> str:
    """The TOML text of ``lecture``, in the format :func:`parse_lecture` reads back exactly.

    Raises
    ------
    LectureError
        The lecture has no scenes, or a scene would not read back as itself.
    """
    if not lecture.scenes:
        raise LectureError("the lecture has no scenes: add one before saving")
    _check_text(lecture.title, "the lecture title", MAX_TITLE, "lecture")
    lines = [
        "# A Softmax Lab lecture: open it with File → Open lecture… or",
        "# `softmax-lab --lecture FILE --present`. Scenes play in order.",
        f"version = {FORMAT_VERSION}",
        f"title = {_toml_string(lecture.title)}",
    ]
    for scene in lecture.scenes:
        lines += ["", "[[scene]]", *_scene_lines(scene)]
    text = "\n".join(lines) + "\n"
    # Guard: what we write must read back as exactly what we hold.
    back = parse_lecture(text, source="the written lecture", default_title=lecture.title)
    if back != lecture:
        raise LectureError("the lecture did not read back as written; nothing was saved")
    return text


def save_lecture(path: str | Path, lecture: Lecture) -> None:
    """Write ``lecture`` to ``path`` atomically (the old file survives any failure).

    Raises
    ------
    LectureError
        The lecture cannot be written as a file (see :func:`lecture_to_toml`).
    OSError
        The file cannot be written (no such folder, no permission, disk full).
    """
    from softmax_lab.compute.tables import write_text_atomic

    write_text_atomic(path, lecture_to_toml(lecture))


def _scene_lines(scene: Scene) -> list[str]:
    lines = [
        f"title = {_toml_string(scene.title)}",
        _toml_array("logits", scene.logits),
    ]
    if scene.names is not None:
        lines.append(f"names = [{', '.join(_toml_string(n) for n in scene.names)}]")
    lines += [
        f"temperature = {_toml_float(scene.temperature)}",
        f"dtype = {_toml_string(scene.dtype)}",
        f"panel = {_toml_string(scene.panel)}",
        f"chart_view = {_toml_string(scene.chart_view)}",
    ]
    if scene.target is not None:
        lines.append(f"target = {int(scene.target)}")
    if scene.label_smoothing != 0.0:
        lines.append(f"label_smoothing = {_toml_float(scene.label_smoothing)}")
    if scene.batch is not None:
        lines.append("batch = [")
        lines += [f"    [{', '.join(_toml_float(v) for v in row)}]," for row in scene.batch]
        lines.append("]")
        lines.append(f"dim = {int(scene.dim)}")
    lines.append(f"caption = {_toml_caption(scene.caption)}")
    return lines


def _toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))  # the shortest text that reads back to the same float64


def _toml_array(key: str, values: Sequence[float]) -> str:
    items = [_toml_float(v) for v in values]
    one_line = f"{key} = [{', '.join(items)}]"
    if len(one_line) <= _WRAP:
        return one_line
    rows, row = [], "   "
    for item in items:
        if len(row) + len(item) + 2 > _WRAP:
            rows.append(row)
            row = "   "
        row += f" {item},"
    rows.append(row)
    return "\n".join([f"{key} = [", *rows, "]"])


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _toml_string(text: str) -> str:
    return f'"{_escape(text)}"'


def _toml_caption(text: str) -> str:
    """Long plain captions as a wrapped multi-line string, so the file stays hand-editable."""
    plain = not re.search(r"[\x00-\x1f\x7f]", text) and text[:1] not in (" ",)
    if not plain or len(text) <= 60:
        return _toml_string(text)
    # Break only after a single space followed by text: a line-ending backslash
    # swallows the newline and the next line's leading whitespace, nothing else.
    words = re.split(r"(?<= )(?=\S)", _escape(text))
    lines, line = [], ""
    for word in words:
        if line and len(line) + len(word) > _WRAP:
            lines.append(line)
            line = ""
        line += word
    lines.append(line)
    body = "\\\n".join(lines)
    return f'"""\\\n{body}\\\n"""'


# ---------------------------------------------------------------------------
# Scenes and the session


def apply_scene(session: Session, scene: Scene) -> None:
    """Put ``scene``'s state into ``session``, all or nothing, with one change emission.

    Raises
    ------
    InvalidInputError
        A value the session refuses (the session keeps its previous state).
    """
    logits = np.array(scene.logits, dtype=np.float64)
    names = scene.class_names
    fields: dict[str, Any] = {
        "logits": logits,
        "class_names": names,
        "target": scene.target,  # after logits: the target is checked against the class count
        "temperature": scene.temperature,
        "dtype": scene.dtype,
        "chart_view": scene.chart_view,
        "label_smoothing": scene.label_smoothing,
        "selected_row": None,  # a highlighted batch row no longer matches the editor
    }
    if scene.batch is not None:
        data = np.array(scene.batch, dtype=np.float64)
        fields["batch"] = LoadedBatch(
            data=data,
            path=None,
            class_names=names if len(names) == data.shape[1] else None,
        )
        fields["batch_dim"] = scene.dim
    session.update(**fields)


def scene_from_session(session: Session, title: str, caption: str = "", panel: str = "chart") -> Scene:
    """The session's current state as a scene (File → Add scene).

    The loaded batch is stored only for the batch panel, inline, so it must be
    small (at most :data:`MAX_BATCH_ROWS` rows of :data:`MAX_CLASSES` classes).

    Raises
    ------
    LectureError
        The state cannot be a scene (too many classes, a batch too large, ...).
    """
    names = session.class_names
    raw: dict[str, Any] = {
        "title": title,
        "logits": [float(v) for v in session.logits],
        "temperature": float(session.temperature),
        "dtype": session.dtype,
        "panel": panel,
        "chart_view": session.chart_view,
        "label_smoothing": float(session.label_smoothing),
        "caption": caption,
    }
    if names != default_names(session.num_classes):
        raw["names"] = list(names)
    if session.target is not None:
        raw["target"] = int(session.target)
    batch = session.batch
    if panel == "batch" and batch is not None:
        n, c = batch.data.shape
        if n > MAX_BATCH_ROWS or c > MAX_CLASSES:
            raise LectureError(
                f"the open batch ({n:,} × {c:,}) is too large to keep in a lecture; a scene "
                f"holds at most {MAX_BATCH_ROWS} rows of {MAX_CLASSES:,} classes"
            )
        raw["batch"] = [[float(v) for v in row] for row in batch.data]
        raw["dim"] = int(session.batch_dim)
    return _scene(raw, "this scene")
