"""The .softmaxlab.json format (Qt-free): exact round trips, strict JSON, hostile files refused
readably with the session unchanged."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softmax_lab.app import persistence
from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.compute.errors import LoadError

ROOT = Path(__file__).resolve().parents[2]


def bits(values: Any) -> list[int]:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64).tolist()


def state(session: Session) -> dict[str, Any]:
    batch = session.batch
    return {
        "logits": bits(session.logits),
        **{name: getattr(session, name) for name in persistence.INTENT_FIELDS if name != "logits"},
        "batch": None if batch is None else (batch.path, batch.array_name),
        "selected_row": session.selected_row,
    }


def unusual_session(batch_path: Path | None = None) -> Session:
    s = Session()
    logits = [math.inf, -math.inf, math.nan, -0.0, 5e-324, 0.1 + 0.2, 1e308, -1234.5678901234567]
    names = [
        "∞",
        "minus inf",
        'quote " and \\ backslash',
        "zero",
        "tiny",
        "0.3?",
        "huge",
        "négatif",
    ]
    s.set_vector(logits, names)
    s.update(
        temperature=0.0123456789,
        dtype="bfloat16",
        device="cpu",
        chart_view="log-probabilities",
        target=6,
        label_smoothing=0.15,
        batch_dim=0,
    )
    if batch_path is not None:
        s.update(batch=LoadedBatch(np.zeros((4, 8)), batch_path), selected_row=3)
    return s


def test_round_trip_is_exact(tmp_path):
    batch_file = tmp_path / "batch.npy"
    np.save(batch_file, np.zeros((4, 8)))
    original = unusual_session(batch_file)
    path = tmp_path / "lecture.softmaxlab.json"
    persistence.save_session(path, persistence.to_document(original, {"panel": 2}))

    # Strict JSON: no NaN/Infinity literals anywhere, the non-finite logits are strings.
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict literal {name}"))
    assert raw["logits"][:3] == ["inf", "-inf", "nan"]
    assert raw["format"] == persistence.FORMAT_NAME and raw["version"] == persistence.FORMAT_VERSION

    restored = Session()
    parsed = persistence.apply_document(restored, persistence.load_session(path))
    expected = state(original)
    expected.update(batch=None, selected_row=None)  # the window reopens the batch itself
    assert state(restored) == expected
    assert math.copysign(1.0, restored.logits[3]) == -1.0  # -0.0 kept its sign
    assert parsed.batch == persistence.BatchSource(batch_file.absolute(), None, None)
    assert parsed.selected_row == 3
    assert parsed.panel == 2


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 40),
        elements=st.floats(allow_nan=False, allow_infinity=True, allow_subnormal=True),
    ),
    st.floats(min_value=1e-6, max_value=1e6, allow_nan=False),
)
def test_any_float64_logits_survive_bit_for_bit(logits, temperature):
    s = Session()
    s.set_vector(logits)
    s.temperature = temperature
    text = persistence.dumps(persistence.to_document(s))
    restored = Session()
    persistence.apply_document(restored, json.loads(text))
    assert bits(restored.logits) == bits(logits)
    assert restored.temperature == temperature


def test_a_vocabulary_is_stored_as_exact_bytes(tmp_path):
    n = persistence.INLINE_CLASSES + 3
    logits = np.random.default_rng(5).normal(0, 10, n)
    logits[[0, 1, 2, 3]] = [np.inf, -np.inf, -0.0, 5e-324]
    # A NaN with a payload: only the raw bytes keep it.
    logits[4] = np.frombuffer(np.uint64(0x7FF8_0000_DEAD_BEEF).tobytes(), np.float64)[0]
    s = Session()
    s.set_vector(logits)
    path = tmp_path / "vocab.softmaxlab.json"
    persistence.save_session(path, persistence.to_document(s))
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["logits"]["encoding"] == "base64" and raw["logits"]["dtype"] == "<f8"
    assert raw["class_names"] is None  # the default names are not spelled out
    restored = Session()
    persistence.apply_document(restored, persistence.load_session(path))
    assert bits(restored.logits) == bits(logits)
    assert restored.class_names == tuple(f"class {i}" for i in range(n))


def test_short_vectors_stay_readable_and_named():
    s = Session()
    s.set_vector([1.0, 2.0], ["cat", "dog"])
    doc = persistence.to_document(s)
    assert doc["logits"] == [1.0, 2.0] and doc["class_names"] == ["cat", "dog"]
    assert '"logits": [1.0, 2.0]' in persistence.dumps(doc)


def test_to_document_refuses_unknown_extras():
    with pytest.raises(TypeError, match="unknown session extras"):
        persistence.to_document(Session(), {"zoom": 2})


def test_suffix_helpers():
    assert persistence.with_session_suffix("talk") == Path("talk.softmaxlab.json")
    assert persistence.with_session_suffix("talk.json") == Path("talk.softmaxlab.json")
    assert persistence.with_session_suffix("a/talk.softmaxlab.json") == Path(
        "a/talk.softmaxlab.json"
    )
    assert persistence.is_session_path("X.SoftmaxLab.JSON")
    assert not persistence.is_session_path("logits.json")


# -- hostile and broken documents: readable message, session unchanged ---------------------


def valid_doc() -> dict[str, Any]:
    return json.loads(persistence.dumps(persistence.to_document(unusual_session())))


def mutate(**changes: Any) -> dict[str, Any]:
    doc = valid_doc()
    for key, value in changes.items():
        if value is KeyError:
            del doc[key]
        else:
            doc[key] = value
    return doc


BAD_DOCUMENTS = {
    "not an object": ([1, 2, 3], "JSON object"),
    "another format": (mutate(format="something-else"), "not a Softmax Lab session"),
    "newer version": (mutate(version=99), "newer Softmax Lab"),
    "version as text": (mutate(version="1"), "version"),
    "missing temperature": (mutate(temperature=KeyError), "missing 'temperature'"),
    "unknown entry": (mutate(macro="rm -rf /"), "unknown entries"),
    "logits not a list": (mutate(logits="2,1,0.1"), '"logits" must be a list'),
    "logit as text": (mutate(logits=[1.0, "two"] + [0.0] * 6), '"logits"[1]'),
    "logit as object": (mutate(logits=[{"__class__": "os.system"}] + [0.0] * 7), '"logits"[0]'),
    "empty logits": (mutate(logits=[], class_names=[]), "at least one class"),
    "names count": (mutate(class_names=["a"]), "1 names for 8 logits"),
    "name not text": (mutate(class_names=[1] * 8), "list of strings"),
    "base64 garbage": (
        mutate(logits={"encoding": "base64", "dtype": "<f8", "data": "not base64!"}),
        "not valid base64",
    ),
    "base64 ragged": (
        mutate(logits={"encoding": "base64", "dtype": "<f8", "data": "AAAAAAA="}),
        "not a whole number of float64",
    ),
    "base64 float32": (
        mutate(logits={"encoding": "base64", "dtype": "<f4", "data": "AAAAAA=="}),
        "is not supported",
    ),
    "base64 with code": (
        mutate(logits={"encoding": "pickle", "dtype": "<f8", "data": "gASV"}),
        "is not supported",
    ),
    "base64 extra key": (
        mutate(logits={"encoding": "base64", "dtype": "<f8", "data": "", "shape": [10**9]}),
        'needs exactly "encoding", "dtype" and "data"',
    ),
    "temperature text": (mutate(temperature="hot"), '"temperature" must be a number'),
    "temperature zero": (mutate(temperature=0), "temperature must be finite and greater than 0"),
    "temperature inf": (mutate(temperature="inf"), "temperature must be finite"),
    "dtype unknown": (mutate(dtype="float8"), "unknown dtype 'float8'"),
    "device list": (mutate(device=["cpu"]), '"device" must be a string'),
    "target out of range": (mutate(target=8), "target class 8 is out of range"),
    "target float": (mutate(target=1.5), '"target" must be a whole number'),
    "target bool": (mutate(target=True), '"target" must be a whole number'),
    "smoothing above 1": (mutate(label_smoothing=2), "label smoothing must be between 0 and 1"),
    "batch dim 2": (mutate(batch_dim=2), "dim 1"),
    "batch not object": (mutate(batch="x.npy"), '"batch" must be an object'),
    "batch without path": (mutate(batch={"array_name": None}), 'needs a "path"'),
    "row without batch": (mutate(selected_row=2), "holds no batch"),
    "panel out of range": (mutate(panel=1000), "panel 1000"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_bad_documents_are_refused_readably_and_change_nothing(case):
    doc, expected = BAD_DOCUMENTS[case]
    session = Session()
    session.set_vector([3.0, 1.0], ["p", "q"])
    before = state(session)
    emitted: list[frozenset[str]] = []
    session.changed.connect(emitted.append)
    with pytest.raises(LoadError) as info:
        persistence.apply_document(session, doc)
    assert expected in str(info.value)
    assert "Traceback" not in str(info.value)
    assert state(session) == before
    assert emitted == []


def test_missing_batch_file_changes_nothing(tmp_path):
    gone = tmp_path / "gone.npy"
    doc = valid_doc()
    doc["batch"] = {"path": str(gone), "array_name": None, "targets_path": None}
    session = Session()
    before = state(session)
    with pytest.raises(LoadError, match=r"batch file .*gone\.npy is missing"):
        persistence.apply_document(session, doc)
    assert state(session) == before


def write(tmp_path: Path, text: str | bytes, name: str = "s.softmaxlab.json") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_truncated_file_is_refused(tmp_path):
    text = persistence.dumps(valid_doc())
    path = write(tmp_path, text[: len(text) // 2])
    with pytest.raises(LoadError, match=r"s\.softmaxlab\.json: not valid JSON \(line \d+"):
        persistence.load_session(path)


def test_nonstandard_nan_literal_is_refused(tmp_path):
    path = write(tmp_path, persistence.dumps(valid_doc()).replace('"nan"', "NaN"))
    with pytest.raises(LoadError, match="JSON literal NaN is not allowed"):
        persistence.load_session(path)


def test_binary_garbage_is_refused(tmp_path):
    path = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(LoadError, match="not UTF-8 text|not valid JSON"):
        persistence.load_session(path)


def test_deep_nesting_is_refused(tmp_path):
    path = write(tmp_path, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(LoadError, match="nested too deeply|JSON object"):
        persistence.load_session(path)


def test_a_billion_logits_claim_is_refused_without_reading(tmp_path):
    # The start of a session whose logits list goes on for ~10^9 values: a sparse
    # file of 8 GB (takes no disk). It must be refused by its size, unread.
    path = tmp_path / "huge.softmaxlab.json"
    with path.open("wb") as fh:
        fh.write(b'{"format": "softmax-lab-session", "version": 1, "logits": [0.0, ')
        fh.truncate(8 * 10**9)
    with pytest.raises(LoadError, match=r"8,000,000,000 bytes is far larger than any session"):
        persistence.load_session(path)


def test_too_many_logits_in_a_small_document_are_refused(monkeypatch):
    monkeypatch.setattr(persistence, "MAX_CLASSES", 5)
    with pytest.raises(LoadError, match="holds 8 values; at most 5"):
        persistence.parse_document(valid_doc())
    # In bytes too: refused by the length of the text, before decoding it.
    doc = mutate(logits=persistence.encode_logits(np.zeros(persistence.INLINE_CLASSES + 1)))
    doc["class_names"] = None
    with pytest.raises(LoadError, match="more than 5 values"):
        persistence.parse_document(doc)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        persistence.load_session(tmp_path / "nope.softmaxlab.json")
    with pytest.raises(LoadError, match="not a file"):
        persistence.load_session(tmp_path)


def test_a_moved_folder_still_finds_its_batch(tmp_path):
    folder = tmp_path / "talk"
    folder.mkdir()
    np.save(folder / "logits.npy", np.zeros((2, 3)))
    s = Session()
    s.update(batch=LoadedBatch(np.zeros((2, 3)), folder / "logits.npy"))
    persistence.save_session(folder / "talk.softmaxlab.json", persistence.to_document(s))
    moved = folder.rename(tmp_path / "moved")
    doc = persistence.load_session(moved / "talk.softmaxlab.json")
    assert Path(doc["batch"]["path"]) == (moved / "logits.npy").resolve()
    parsed = persistence.apply_document(Session(), doc)
    assert parsed.batch is not None and parsed.batch.path.is_file()


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.softmaxlab.json"
    persistence.save_session(path, persistence.to_document(Session()))
    before = path.read_bytes()

    def full_disk(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    # The new text is written to a temporary file; the rename over the old one fails.
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        persistence.save_session(path, persistence.to_document(unusual_session()))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.softmaxlab.json"]


def test_same_state_ignores_who_wrote_it():
    a = valid_doc()
    b = {**a, "saved_by": "softmax-lab 9.9"}
    assert persistence.same_state(a, b)
    assert not persistence.same_state(a, {**a, "temperature": 2.0})


def test_persistence_imports_no_qt():
    code = (
        "import sys, softmax_lab.app.persistence\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'torch')]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
