"""Lectures (app/lecture.py), Qt-free: the built-in lecture's numbers, strict reading, exact writing.

The built-in lecture's captions quote numbers; every one is recomputed here
with PyTorch (or the float64 formula) and must appear in the caption as the
caption rounds it. Each scene is also applied to a real Session + Controller
and what the lab computed is compared with torch.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_lab.app.controller import Controller
from softmax_lab.app.lecture import (
    MAX_BATCH_ROWS,
    MAX_CLASSES,
    MAX_FILE_BYTES,
    PANELS,
    Lecture,
    LectureError,
    Scene,
    apply_scene,
    builtin_lecture_path,
    lecture_to_toml,
    load_lecture,
    parse_lecture,
    resolve_lecture_path,
    save_lecture,
    scene_from_session,
)
from softmax_lab.app.session import LoadedBatch, Session, default_names

BUILTIN = builtin_lecture_path()
TORCH_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
RTOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-12}


# -- references ---------------------------------------------------------------------------


def t(values, dtype="float32"):
    return torch.tensor(values, dtype=TORCH_DTYPES[dtype])


def softmax(values, temperature=1.0, dtype="float32", dim=-1):
    return torch.softmax(t(values, dtype) / temperature, dim=dim).double().numpy()


def text(value: float, decimals: int) -> str:
    """A number as a caption writes it: fixed decimals, a real minus sign."""
    return f"{value:.{decimals}f}".replace("-", "−")


def power_of_ten(value: float) -> str:
    """1.38e-87 -> '1.4 × 10^−87'."""
    exponent = math.floor(math.log10(value))
    return f"{value / 10**exponent:.1f} × 10^{exponent}".replace("-", "−")


def scene_named(lecture: Lecture, title: str) -> Scene:
    matches = [s for s in lecture.scenes if s.title == title]
    assert len(matches) == 1, f"no single scene titled {title!r}"
    return matches[0]


# -- the built-in lecture -------------------------------------------------------------------


def claims(scene: Scene) -> list[str]:
    """The numbers the caption must contain, computed independently of the lab."""
    x, T, dt = list(scene.logits), scene.temperature, scene.dtype
    p = softmax(x, T, dt)
    title = scene.title
    if title == "What softmax does":
        exps = [math.exp(v) for v in x]
        return [text(v, 3) for v in p] + [text(v, 2) for v in exps] + [text(sum(exps), 2)]
    if title == "Step by step: the probabilities sum to 1":
        shifted = [v - max(x) for v in x]
        exps = [math.exp(v) for v in shifted]
        return (
            [f"{v:g}".replace("-", "−") for v in shifted]
            + [text(v, 3) for v in exps[1:]]
            + [text(sum(exps), 3)]
            + [text(v, 3) for v in p]
        )
    if title in ("Temperature below 1 sharpens", "Temperature above 1 flattens"):
        return [f"T = {T:g}"] + [f"{v / T:g}" for v in x] + [text(v, 3) for v in p]
    if title == "A batch: softmax along dim=1":
        n, c = len(scene.batch), len(scene.batch[0])
        first = softmax(scene.batch, dim=1)[0]
        return [f"{n} × {c}", "dim=1"] + [text(v, 3) for v in first]
    if title == "The dim=0 mistake":
        dim0 = softmax(scene.batch, dim=0)
        return [text(v, 2) for v in dim0.sum(axis=1)] + [text(v, 3) for v in dim0[0]]
    if title == "Large logits overflow a naive exp":
        finfo = torch.finfo(torch.float32)
        return [
            f"10^{math.floor(1000 / math.log(10))}",
            power_of_ten(finfo.max),
            text(math.log(finfo.max), 2),
            *[text(v, 3) for v in p],
            "{:g}, {:g} and {:g}".format(*[v - max(x) for v in x]).replace("-", "−"),
        ]
    if title == "float16 overflows much sooner":
        finfo = torch.finfo(torch.float16)
        return [f"{int(finfo.max):,}", text(math.log(finfo.max), 2)] + [text(v, 3) for v in p]
    if title == "log_softmax, not log(softmax)":
        return [
            power_of_ten(math.exp(x[1])),
            power_of_ten(2.0**-149),  # float32's smallest positive (subnormal) number
            text(x[1], 0),
        ]
    if title in ("Cross-entropy and its gradient", "The double-softmax mistake", "Even a certain model cannot win"):
        logits = t([x], dt).requires_grad_(True)
        target = torch.tensor([scene.target])
        loss_tensor = F.cross_entropy(logits, target)
        loss_tensor.backward()
        loss = loss_tensor.detach().item()
        wrong = F.cross_entropy(torch.softmax(logits.detach(), -1), target).item()
        floor = math.log1p((len(x) - 1) / math.e)
        if title == "Cross-entropy and its gradient":
            return [text(p[0], 3), text(loss, 3)] + [text(float(g), 3) for g in logits.grad[0]]
        if title == "The double-softmax mistake":
            return [text(wrong, 3), text(loss, 3), text(floor, 3)]
        return [text(p[0], 5), text(loss, 5), text(wrong, 3), text(floor, 3)]
    raise AssertionError(f"no claims written for the scene {title!r}: add them to this test")


def test_builtin_lecture_is_packaged_and_tells_the_story():
    from softmax_lab.resources import path

    assert path("lecture.toml") == BUILTIN and BUILTIN.is_file()
    lecture = load_lecture(BUILTIN)
    titles = [s.title for s in lecture.scenes]
    # The classic order: softmax, sum to 1, temperature, dim, overflow, log_softmax, CE, double softmax.
    assert titles[0] == "What softmax does"
    assert lecture.scenes[0].logits == (2.0, 1.0, 0.1)
    temperatures = [s.temperature for s in lecture.scenes]
    assert 0.5 in temperatures and 5.0 in temperatures
    assert {s.dim for s in lecture.scenes if s.batch is not None} == {0, 1}
    large = [s for s in lecture.scenes if s.logits == (1000.0, 999.0, 998.0)]
    assert {s.dtype for s in large} == {"float16", "float32"}
    assert any(s.chart_view == "log-probabilities" for s in lecture.scenes)
    assert {s.panel for s in lecture.scenes} == set(PANELS)
    order = [
        titles.index(name)
        for name in (
            "What softmax does",
            "Temperature below 1 sharpens",
            "A batch: softmax along dim=1",
            "The dim=0 mistake",
            "Large logits overflow a naive exp",
            "log_softmax, not log(softmax)",
            "Cross-entropy and its gradient",
            "The double-softmax mistake",
        )
    ]
    assert order == sorted(order)
    for scene in lecture.scenes:
        assert scene.caption.strip(), f"scene {scene.title!r} has no caption"
        assert "\n" not in scene.caption  # one paragraph


@pytest.mark.parametrize("index", range(len(load_lecture(BUILTIN).scenes)))
def test_every_caption_number_is_what_torch_computes(index):
    scene = load_lecture(BUILTIN).scenes[index]
    missing = [claim for claim in claims(scene) if claim not in scene.caption]
    assert not missing, f"scene {index + 1} {scene.title!r}: caption lacks {missing}"


def test_the_facts_the_captions_state_in_words():
    # Overflow: naive exp/sum is NaN in both dtypes; [1000, 999, 998] are exact in float16.
    for dtype in ("float16", "float32"):
        x = t([1000.0, 999.0, 998.0], dtype)
        naive = torch.exp(x) / torch.exp(x).sum()
        assert torch.isnan(naive).all()
        assert x.tolist() == [1000.0, 999.0, 998.0]
    assert torch.isinf(torch.exp(t([12.0], "float16"))).all()
    # Stable softmax of [1000, 999, 998] is the softmax of [2, 1, 0].
    assert np.allclose(softmax([1000.0, 999.0, 998.0]), softmax([2.0, 1.0, 0.0]), rtol=1e-6)
    # log(softmax) underflows to -inf; log_softmax is exactly -200.
    x = t([0.0, -200.0])
    assert torch.log(torch.softmax(x, -1))[1].item() == -math.inf
    assert torch.log_softmax(x, -1)[1].item() == -200.0
    # dim=0: the columns sum to 1.
    batch = load_lecture(BUILTIN)
    dim0 = [s for s in batch.scenes if s.batch is not None and s.dim == 0][0]
    assert np.allclose(softmax(dim0.batch, dim=0).sum(axis=0), 1.0, atol=1e-6)


@pytest.fixture
def computed_session():
    session = Session()
    Controller(session).start()  # inline: results arrive synchronously
    return session


def test_every_builtin_scene_applies_and_the_lab_computes_what_torch_does(computed_session):
    session = computed_session
    lecture = load_lecture(BUILTIN)
    for scene in lecture.scenes:
        apply_scene(session, scene)
        assert session.logits.tolist() == list(scene.logits)
        assert session.class_names == scene.class_names
        assert (session.temperature, session.dtype) == (scene.temperature, scene.dtype)
        assert session.chart_view == scene.chart_view and session.target == scene.target
        analysis = session.analysis
        assert analysis.request.temperature == scene.temperature
        expected = softmax(list(scene.logits), scene.temperature, scene.dtype)
        np.testing.assert_allclose(
            analysis.result.probabilities[0], expected, rtol=RTOL[scene.dtype], atol=1e-12
        )
        if scene.target is not None:
            # torch's loss in the same dtype: the lab's log-probabilities are the dtype's.
            reference = F.cross_entropy(
                t([list(scene.logits)], scene.dtype) / scene.temperature,
                torch.tensor([scene.target]),
            )
            assert analysis.loss.loss == pytest.approx(reference.item(), rel=RTOL[scene.dtype])
        if scene.batch is not None:
            assert session.batch_dim == scene.dim
            result = session.batch_analysis
            assert result is not None and result.dim == scene.dim
            reference = softmax(scene.batch, scene.temperature, scene.dtype, dim=scene.dim)
            np.testing.assert_allclose(result.row_sums, reference.sum(axis=1), rtol=1e-6)


def test_a_scene_without_a_batch_leaves_a_loaded_batch_alone(computed_session):
    session = computed_session
    loaded = LoadedBatch(np.arange(6.0).reshape(2, 3), Path("mine.npy"))
    session.batch = loaded
    apply_scene(session, Scene("plain", (1.0, 2.0)))
    assert session.batch is loaded
    apply_scene(session, Scene("batch", (1.0, 2.0), batch=((1.0, 2.0), (3.0, 4.0)), dim=0))
    assert session.batch is not loaded and session.batch.data.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert session.batch_dim == 0


def test_apply_scene_is_all_or_nothing():
    session = Session()
    before = (session.logits.copy(), session.class_names, session.temperature)
    changes = []
    session.changed.connect(changes.append)
    bad = Scene("bad", (1.0, 2.0), target=5)  # constructed directly: never read from a file
    with pytest.raises(ValueError, match="out of range"):
        apply_scene(session, bad)
    assert changes == []
    assert session.logits.tolist() == before[0].tolist()
    assert (session.class_names, session.temperature) == before[1:]
    # A good scene changes everything at once, with one emission.
    apply_scene(session, Scene("good", (3.0, 1.0, 0.0), ("a", "b", "c"), temperature=2.0, target=2))
    assert len(changes) == 1 and {"logits", "class_names", "temperature", "target"} <= changes[0]


# -- hostile files --------------------------------------------------------------------------

GOOD_SCENE = 'title = "S"\nlogits = [1.0, 2.0]\n'


def write(tmp_path: Path, text: str, name: str = "talk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[scene]]\ntitle = "Oops"\nlogits = [1.0, 2.0\n', r"talk\.toml is not valid TOML \(in scene 1\)"),
        ('[[scene]]\ntitle = "T"\nlogits = "2, 1"\n', r'scene 1 "T": logits must be a list'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0, "abc"]\n', r'scene 1 "T": logits\[1\]: \'abc\' is not a number'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0, true]\n', r'scene 1 "T": logits\[1\] must be a number'),
        ('[[scene]]\ntitle = "T"\nlogits = []\n', r'scene 1 "T": logits is empty'),
        ('[[scene]]\nlogits = [1.0]\n', r"scene 1: missing field 'title'"),
        ('[[scene]]\ntitle = "Only a title"\n', r'scene 1 "Only a title": missing field \'logits\''),
        (
            f'[[scene]]\n{GOOD_SCENE}\n[[scene]]\ntitle = "Two"\nlogits = [1.0]\npanel = "slides"\n',
            r'scene 2 "Two": panel must be one of chart, steps, overflow, loss, batch',
        ),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ntemperature = -1\n', r'scene 1 "T": temperature must be finite and greater than 0'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ntemperature = "hot"\n', r'scene 1 "T": temperature:'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ndtype = "float8"\n', r'scene 1 "T": dtype must be one of'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0, 2.0]\ntarget = 2\n', r'scene 1 "T": target 2 is out of range'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0, 2.0]\ntarget = 1.0\n', r'scene 1 "T": target must be a whole number'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0, 2.0]\nnames = ["a"]\n', r'scene 1 "T": 1 names for 2 logits'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\nlabel_smoothing = 2\n', r'scene 1 "T": label_smoothing must be between 0 and 1'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ntemprature = 2\n', r"scene 1 \"T\": unknown field 'temprature'"),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ndim = 0\n', r'scene 1 "T": dim is for a batch'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\nbatch = [[1.0, 2.0], [1.0]]\n', r'scene 1 "T": batch rows have different lengths'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\nbatch = [[1.0]]\ndim = 2\n', r'scene 1 "T": dim must be 1'),
        ('[[scene]]\ntitle = "T"\nlogits = [1.0]\ncaption = 3\n', r'scene 1 "T": caption must be text'),
        ('[[scene]]\ntitle = 7\nlogits = [1.0]\n', r"scene 1: title must be text"),
        ("[scene]\n" + GOOD_SCENE, r"write each scene as \[\[scene\]\]"),
        ('title = "No scenes"\n', r"has no scenes"),
        ("[[scenes]]\n" + GOOD_SCENE, r"unknown key 'scenes' \(each scene starts with \[\[scene\]\]\)"),
        ("version = 2\n[[scene]]\n" + GOOD_SCENE, r"version 2 is not supported"),
        ("[[scene]]\ntitle = 'T'\nlogits = [1e400]\n", r'scene 1 "T": logits\[0\] = 1e400 is too large'),
    ],
)
def test_hostile_lecture_files_are_refused_readably(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(LectureError, match=expected) as info:
        load_lecture(path)
    assert "Traceback" not in str(info.value)


def test_huge_lists_and_files_are_refused_before_anything_is_built(tmp_path):
    too_many = ", ".join("1.0" for _ in range(MAX_CLASSES + 1))
    path = write(tmp_path, f'[[scene]]\ntitle = "Vocab"\nlogits = [{too_many}]\n')
    with pytest.raises(LectureError, match=r'scene 1 "Vocab": logits has 1,001 values; a scene holds at most 1,000'):
        load_lecture(path)
    rows = ", ".join("[1.0]" for _ in range(MAX_BATCH_ROWS + 1))
    path = write(tmp_path, f'[[scene]]\ntitle = "B"\nlogits = [1.0]\nbatch = [{rows}]\n')
    with pytest.raises(LectureError, match=r"batch has 101 rows"):
        load_lecture(path)
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(LectureError, match=r"larger than 1,000 kB"):
        load_lecture(huge)


def test_unreadable_files_are_refused_readably(tmp_path):
    with pytest.raises(LectureError, match="no such lecture file"):
        load_lecture(tmp_path / "missing.toml")
    with pytest.raises(LectureError, match="is a folder"):
        load_lecture(tmp_path)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('title = "Café"\n'.encode("latin-1"))
    with pytest.raises(LectureError, match="not UTF-8"):
        load_lecture(latin1)


def test_infinities_as_toml_literals_or_strings():
    lecture = parse_lecture(
        '[[scene]]\ntitle = "Mask"\nlogits = [2.0, -inf, "-inf", "inf", 1]\n'
    )
    assert lecture.scenes[0].logits == (2.0, -math.inf, -math.inf, math.inf, 1.0)
    assert lecture.title == "Lecture"  # no title: the default


# -- writing --------------------------------------------------------------------------------


def test_builtin_lecture_round_trips_through_the_writer(tmp_path):
    lecture = load_lecture(BUILTIN)
    out = tmp_path / "copy.toml"
    save_lecture(out, lecture)
    assert load_lecture(out) == lecture
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file was left behind"


names_strategy = st.lists(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n\r\t"), min_size=1, max_size=12).filter(str.strip),
    min_size=3,
    max_size=3,
)
caption_strategy = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
float_strategy = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(float_strategy, min_size=3, max_size=3),
    names=names_strategy,
    caption=caption_strategy,
    title=st.text(min_size=1, max_size=30).filter(str.strip),
    temperature=st.floats(min_value=1e-3, max_value=1e3),
)
def test_any_scene_round_trips_exactly(logits, names, caption, title, temperature):
    scene = Scene(
        title=title,
        logits=tuple(logits),
        names=tuple(names),
        temperature=temperature,
        caption=caption,
        target=1,
        label_smoothing=0.25,
        batch=((1.5, -math.inf, 2.0),),
        dim=0,
    )
    lecture = Lecture("Any", (scene,))
    assert parse_lecture(lecture_to_toml(lecture)) == lecture


def test_the_written_file_is_readable_by_hand():
    lecture = load_lecture(BUILTIN)
    text_ = lecture_to_toml(lecture)
    assert max(len(line) for line in text_.splitlines()) <= 100
    assert text_.count("[[scene]]") == len(lecture)


def test_save_refuses_an_empty_lecture_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "talk.toml"
    save_lecture(path, load_lecture(BUILTIN))
    before = path.read_bytes()
    with pytest.raises(LectureError, match="no scenes"):
        save_lecture(path, Lecture("Empty"))
    assert path.read_bytes() == before
    with pytest.raises(OSError):
        save_lecture(tmp_path / "no" / "such" / "dir.toml", load_lecture(BUILTIN))


def test_add_scene_then_save_then_load_round_trips(tmp_path, computed_session):
    session = computed_session
    session.set_vector([3.0, -math.inf, 0.5, 1e-7], ["tok a", 'say "hi"', "c\\d", "é"])
    session.update(temperature=0.7000000000000001, dtype="bfloat16", chart_view="logits", target=2, label_smoothing=0.1)
    session.batch = LoadedBatch(np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, -1.0]]), None)
    session.batch_dim = 0
    scene = scene_from_session(session, "My scene", "Look at this.", "batch")
    path = tmp_path / "mine.toml"
    save_lecture(path, Lecture("Mine", (scene,)))
    loaded = load_lecture(path).scenes[0]
    assert loaded == scene
    fresh = Session()
    apply_scene(fresh, loaded)
    for field in ("logits", "class_names", "temperature", "dtype", "chart_view", "target", "label_smoothing", "batch_dim"):
        a, b = getattr(fresh, field), getattr(session, field)
        assert (a.tolist() == b.tolist()) if isinstance(a, np.ndarray) else a == b, field
    assert fresh.batch.data.tolist() == session.batch.data.tolist()


def test_scene_from_session_stores_default_names_as_none_and_refuses_huge_state():
    session = Session()
    scene = scene_from_session(session, "Seed", panel="chart")
    assert scene.names is None and scene.class_names == default_names(3)
    assert scene.batch is None
    session.set_vector(np.zeros(MAX_CLASSES + 1))
    with pytest.raises(LectureError, match="at most 1,000"):
        scene_from_session(session, "Vocab")
    session.set_vector([1.0, 2.0])
    session.batch = LoadedBatch(np.zeros((MAX_BATCH_ROWS + 1, 2)), None)
    with pytest.raises(LectureError, match="too large to keep in a lecture"):
        scene_from_session(session, "Big batch", panel="batch")
    # The batch is only stored for the batch panel.
    assert scene_from_session(session, "No batch", panel="chart").batch is None
    with pytest.raises(LectureError, match="title is empty"):
        scene_from_session(session, "  ")


def test_reorder_insert_remove():
    scenes = tuple(Scene(f"s{i}", (float(i),)) for i in range(4))
    lecture = Lecture("L", scenes)
    assert [s.title for s in lecture.moved(0, 2).scenes] == ["s1", "s2", "s0", "s3"]
    assert [s.title for s in lecture.moved(3, 0).scenes] == ["s3", "s0", "s1", "s2"]
    assert [s.title for s in lecture.moved(1, 99).scenes] == ["s0", "s2", "s3", "s1"]
    assert [s.title for s in lecture.removed(1).scenes] == ["s0", "s2", "s3"]
    assert [s.title for s in lecture.inserted(1, Scene("new", (0.0,))).scenes][:3] == ["s0", "new", "s1"]
    assert lecture.replaced(2, Scene("x", (0.0,))).scenes[2].title == "x"
    assert [s.title for s in lecture.scenes] == ["s0", "s1", "s2", "s3"]  # unchanged
    with pytest.raises(IndexError):
        lecture.removed(4)


def test_resolve_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_lecture_path("builtin") == BUILTIN
    (tmp_path / "builtin").write_text("x")
    assert resolve_lecture_path("builtin") == Path("builtin")


def test_lecture_module_imports_no_qt_and_no_torch():
    code = (
        "import sys, softmax_lab.app.lecture, softmax_lab.compute.snippets\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'torch')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
