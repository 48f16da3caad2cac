"""Table writers and the JSON contract (compute/tables.py). No Qt here.

References are torch's own functions or float64 formulas, never the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from softmax_lab.compute import tables
from softmax_lab.compute.losses import cross_entropy
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.tables import (
    Num,
    Table,
    format_exact,
    format_number,
    latex_escape,
    probability_table,
    result_tables,
    result_to_json,
    stats_table,
    steps_table,
    write_table,
    write_tables,
    write_text_atomic,
)
from softmax_lab.compute.types import SoftmaxRequest

TOP_KEYS = {"temperature", "dtype", "device", "dim", "rows", "mean_cross_entropy"}
ROW_KEYS = {
    "logits",
    "probabilities",
    "log_probabilities",
    "naive_probabilities",
    "naive_overflow",
    "naive_underflow",
    "entropy",
    "argmax",
    "target",
    "cross_entropy",
}
ARRAY_KEYS = ("logits", "probabilities", "log_probabilities", "naive_probabilities")


def _result(logits, temperature=1.0, dim=-1, dtype="float32"):
    return compute_softmax(
        SoftmaxRequest(np.asarray(logits, dtype=np.float64), temperature, dim, dtype, "cpu")
    )


def _no_constants(name: str):
    raise AssertionError(f"non-standard JSON constant {name!r}")


def strict_loads(text: str):
    """json.loads that refuses NaN/Infinity literals: the output must be strict JSON."""
    return json.loads(text, parse_constant=_no_constants)


def _floats(values) -> np.ndarray:
    return np.array([float(v) for v in values], dtype=np.float64)  # float("nan"/"inf") ok


def _check_contract(doc: dict, num_rows: int, num_classes: int) -> None:
    assert set(doc) >= TOP_KEYS
    assert isinstance(doc["temperature"], float)
    assert isinstance(doc["dtype"], str) and isinstance(doc["device"], str)
    assert isinstance(doc["dim"], int)
    assert len(doc["rows"]) == num_rows
    for row in doc["rows"]:
        assert set(row) == ROW_KEYS
        for key in ARRAY_KEYS:
            assert len(row[key]) == num_classes
            for v in row[key]:
                assert isinstance(v, float) or v in ("nan", "inf", "-inf"), (key, v)
        assert isinstance(row["naive_overflow"], bool)
        assert isinstance(row["naive_underflow"], bool)
        assert isinstance(row["entropy"], float) or row["entropy"] in ("nan", "inf")
        assert row["argmax"] is None or isinstance(row["argmax"], int)
        assert row["target"] is None or isinstance(row["target"], int)
        assert row["cross_entropy"] is None or isinstance(row["cross_entropy"], float)


# ---------------------------------------------------------------------------
# JSON contract


def test_json_contract_1d_matches_torch():
    x = [2.0, 1.0, 0.1]
    doc = strict_loads(result_to_json(_result(x)))
    _check_contract(doc, 1, 3)
    assert doc["temperature"] == 1.0
    assert doc["dtype"] == "float32"
    assert doc["device"] == "cpu"
    assert doc["dim"] == -1
    assert doc["mean_cross_entropy"] is None
    assert "classes" not in doc
    row = doc["rows"][0]
    ref = torch.tensor(x, dtype=torch.float64)
    np.testing.assert_allclose(row["probabilities"], torch.softmax(ref, 0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        row["log_probabilities"], torch.log_softmax(ref, 0).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(row["naive_probabilities"], torch.softmax(ref, 0).numpy(), rtol=1e-6)
    p = torch.softmax(ref, 0).numpy()
    assert row["entropy"] == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-6)
    assert row["argmax"] == 0
    assert row["target"] is None and row["cross_entropy"] is None
    assert row["naive_overflow"] is False and row["naive_underflow"] is False


def test_json_float32_values_are_shortest_round_trip():
    text = result_to_json(_result([2.0, 1.0, 0.1]))
    # 0.1 stored in float32 is 0.100000001490116...; the shortest float32 decimal is 0.1.
    assert re.search(r'"logits": \[2\.0, 1\.0, 0\.1\]', text)
    doc = strict_loads(text)
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.1]), 0).numpy()  # float32
    np.testing.assert_array_equal(np.float32(doc["rows"][0]["probabilities"]), expected)


@pytest.mark.parametrize("dim", [1, -1, 0, -2])
def test_json_2d_rows_are_slices_along_dim(dim):
    x = np.array([[2.0, 1.0, 0.1], [0.5, -3.0, 4.0]])
    doc = strict_loads(result_to_json(_result(x, dim=dim)))
    ref = torch.softmax(torch.tensor(x), dim=dim).numpy()
    lref = torch.log_softmax(torch.tensor(x), dim=dim).numpy()
    along_columns = dim % 2 == 0  # dim 0: each column of x is one distribution
    if along_columns:
        ref, lref, slices = ref.T, lref.T, x.T
    else:
        slices = x
    _check_contract(doc, *slices.shape)
    assert doc["dim"] == dim  # as the user gave it, not normalised
    for row, p, lp, logits in zip(doc["rows"], ref, lref, slices, strict=True):
        np.testing.assert_allclose(row["probabilities"], p, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(row["log_probabilities"], lp, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(row["logits"], logits, rtol=1e-7)
        assert row["argmax"] == int(np.argmax(p))


def test_json_3d_rows_follow_c_order_of_the_other_axes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4)) * 3
    dim = 1
    doc = strict_loads(result_to_json(_result(x, dim=dim, dtype="float64")))
    _check_contract(doc, 8, 3)
    assert doc["shape"] == [2, 3, 4]
    ref = torch.softmax(torch.tensor(x), dim=dim).numpy()
    expected = [ref[i, :, k] for i in range(2) for k in range(4)]  # C order over (0, 2)
    for row, p in zip(doc["rows"], expected, strict=True):
        np.testing.assert_allclose(row["probabilities"], p, rtol=1e-14)
        h = float(-(p * np.log(p)).sum())
        assert row["entropy"] == pytest.approx(h, rel=1e-12)


def test_json_is_strict_with_inf_and_nan_inputs():
    x = np.array([[math.inf, 0.0, 1.0], [math.nan, 1.0, 2.0], [-math.inf] * 3, [-math.inf, 0, 1]])
    text = result_to_json(_result(x))
    doc = strict_loads(text)
    _check_contract(doc, 4, 3)
    ref = torch.softmax(torch.tensor(x, dtype=torch.float32), dim=-1).numpy()
    for row, p in zip(doc["rows"], ref, strict=True):
        # float32 values read back exactly; assert_array_equal treats NaN == NaN.
        np.testing.assert_array_equal(_floats(row["probabilities"]).astype(np.float32), p)
    assert doc["rows"][0]["logits"][0] == "inf"
    assert doc["rows"][2]["logits"] == ["-inf", "-inf", "-inf"]
    assert doc["rows"][3]["log_probabilities"][0] == "-inf"
    assert doc["rows"][0]["argmax"] is None  # a NaN row has no argmax
    assert doc["rows"][0]["entropy"] == "nan"
    assert doc["rows"][3]["argmax"] == 2


def test_json_float16_round_trips_to_torch_float16_softmax():
    # Integer logits: x - max is exact in float16, so the lab's stable path and
    # torch.softmax(x.half()) must agree bit for bit.
    rng = np.random.default_rng(7)
    x = rng.integers(-8, 9, size=(5, 6)).astype(np.float64)
    text = result_to_json(_result(x, dtype="float16"))
    doc = strict_loads(text)
    th = torch.tensor(x).half()
    p16 = torch.softmax(th, dim=-1).numpy()
    lp16 = torch.log_softmax(th, dim=-1).numpy()
    for row, p, lp in zip(doc["rows"], p16, lp16, strict=True):
        np.testing.assert_array_equal(np.array(row["probabilities"], dtype=np.float16), p)
        np.testing.assert_array_equal(np.array(row["log_probabilities"], dtype=np.float16), lp)


def test_json_float16_writes_short_decimals():
    text = result_to_json(_result([2.0, 1.0, 0.1], dtype="float16"))
    doc = strict_loads(text)
    probabilities = doc["rows"][0]["probabilities"]
    assert probabilities[0] == 0.659  # not 0.6591796875
    for v in probabilities:
        # float16 has ~3.3 significant digits: never more than 5 are needed.
        digits = re.sub(r"[^0-9]", "", repr(v).split("e")[0]).lstrip("0")
        assert len(digits) <= 5, v


def test_json_with_targets_matches_torch_cross_entropy():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5, 4)) * 2
    targets = np.array([0, 3, -100, 2, 1])
    t, smoothing = 0.7, 0.1
    r = _result(x, temperature=t, dtype="float64")
    ce = cross_entropy(r.logits, targets, temperature=t, label_smoothing=smoothing, dtype="float64")
    doc = strict_loads(result_to_json(r, targets=targets, ce=ce))
    _check_contract(doc, 5, 4)
    xt = torch.tensor(x) / t
    tt = torch.tensor(targets)
    none = F.cross_entropy(xt, tt, reduction="none", label_smoothing=smoothing).numpy()
    mean = F.cross_entropy(xt, tt, reduction="mean", label_smoothing=smoothing).item()
    for i, row in enumerate(doc["rows"]):
        assert row["target"] == int(targets[i])
        if targets[i] == -100:
            assert row["cross_entropy"] is None
        else:
            assert row["cross_entropy"] == pytest.approx(none[i], rel=1e-12)
    assert doc["mean_cross_entropy"] == pytest.approx(mean, rel=1e-12)


def test_json_cross_entropy_without_smoothing_float32():
    x = np.array([[2.0, 1.0, 0.1], [0.0, 5.0, -1.0]])
    targets = np.array([0, 2])
    r = _result(x)
    ce = cross_entropy(r.logits, targets)
    doc = strict_loads(result_to_json(r, targets=targets, ce=ce))
    ref = F.cross_entropy(torch.tensor(x), torch.tensor(targets), reduction="none").numpy()
    got = [row["cross_entropy"] for row in doc["rows"]]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert doc["mean_cross_entropy"] == pytest.approx(ref.mean(), rel=1e-6)


def test_json_classes_only_when_known():
    r = _result([1.0, 2.0])
    assert strict_loads(result_to_json(r, class_names=("cat", "dog")))["classes"] == ["cat", "dog"]
    assert "classes" not in strict_loads(result_to_json(r, class_names=("only one",)))


def test_json_requires_targets_and_ce_together():
    r = _result([1.0, 2.0])
    with pytest.raises(ValueError):
        result_to_json(r, targets=[0])


# ---------------------------------------------------------------------------
# Number formatting


@given(st.floats(allow_nan=False, allow_infinity=False, width=16))
def test_format_exact_float16_round_trips(v):
    text = format_exact(v, "float16")
    assert np.float16(float(text)) == np.float16(v)
    assert float(json.loads(text)) == float(text)  # a valid JSON number


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_format_exact_float32_round_trips(v):
    text = format_exact(v, "float32")
    assert np.float32(float(text)) == np.float32(v)


@given(st.floats(min_value=-3e38, max_value=3e38, allow_nan=False))
def test_format_exact_bfloat16_round_trips_through_torch(x):
    v = torch.tensor(x, dtype=torch.float64).to(torch.bfloat16).item()
    text = format_exact(v, "bfloat16")
    assert torch.tensor(float(text), dtype=torch.bfloat16).item() == v
    json.loads(text)
    # Shortest: one significant digit fewer does not read back.
    mantissa = text.split("e")[0].replace("-", "").replace(".", "").strip("0")
    if len(mantissa) > 1:
        shorter = f"{v:.{len(mantissa) - 1}g}"
        assert torch.tensor(float(shorter), dtype=torch.bfloat16).item() != v


def test_format_exact_non_finite():
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        assert format_exact(math.inf, dtype) == "inf"
        assert format_exact(-math.inf, dtype) == "-inf"
        assert format_exact(math.nan, dtype) == "nan"


def test_format_number_rules():
    assert format_number(0.6590011) == "0.659"
    assert format_number(0.0985659) == "0.099"
    assert format_number(-1.9) == "-1.900"
    assert format_number(0.0) == "0"
    assert format_number(-0.0) == "0"
    assert format_number(4.54e-5) == "4.54e-05"
    assert format_number(1234567.0) == "1.23e+06"
    assert format_number(math.nan) == "nan"
    assert format_number(-math.inf) == "-inf"
    assert format_number(0.123456, digits=5) == "0.12346"


# ---------------------------------------------------------------------------
# Table data


def _md_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_markdown_seed_table_shows_tutorial_values():
    text = write_table(probability_table(_result([2.0, 1.0, 0.1])), "markdown")
    rows = _md_rows(text)
    header = rows[0]
    col = header.index("probability")
    probabilities = [r[col] for r in rows[2:5]]
    assert probabilities == ["0.659", "0.242", "0.099"]
    assert rows[1][col].endswith(":")  # numbers right-aligned
    assert rows[1][0].startswith(":")  # class names left-aligned
    assert rows[5][0] == "sum"
    assert float(rows[5][col]) == pytest.approx(1.0)
    assert header[2] == "x − max"
    # logits shown as given, not padded with zeros
    assert [r[1] for r in rows[2:5]] == ["2", "1", "0.1"]


def test_probability_table_values_match_float64_reference():
    x = np.array([3.0, -1.0, 0.5, 2.0])
    t = 2.0
    table = probability_table(_result(x, temperature=t, dtype="float64"), digits=6)
    assert table.header[2] == "(x − max)/T"
    assert table.header[3] == "exp((x − max)/T)"
    shifted = (x - x.max()) / t
    e = np.exp(shifted)
    p = e / e.sum()
    for k, row in enumerate(table.rows):
        assert isinstance(row[2], Num)
        assert row[2].value == pytest.approx(shifted[k], abs=1e-12)
        assert row[3].value == pytest.approx(e[k], rel=1e-12)
        assert row[4].value == pytest.approx(p[k], rel=1e-12)
        assert row[5].value == pytest.approx(np.log(p[k]), rel=1e-12)
        assert row[4].text == f"{p[k]:.6f}"
    assert table.footer[0][3].value == pytest.approx(e.sum(), rel=1e-12)


def test_probability_table_marks_target_and_uses_class_names():
    table = probability_table(_result([1.0, 2.0, 3.0]), class_names=("cat", "dog", "owl"), target=1)
    assert [r[0] for r in table.rows] == ["cat", "dog (target)", "owl"]


def test_stats_table_matches_reference_and_cross_entropy():
    x = np.array([2.0, 1.0, 0.1, -1.0])
    r = _result(x, dtype="float64")
    ce = cross_entropy(r.logits, [2], label_smoothing=0.2, dtype="float64")
    table = stats_table(r, ce=ce, target=2, digits=8)
    values = {row[0]: row[1] for row in table.rows}
    p = torch.softmax(torch.tensor(x), 0).numpy()
    h = float(-(p * np.log(p)).sum())
    assert values["entropy (nats)"].value == pytest.approx(h, rel=1e-12)
    assert values["entropy (bits)"].value == pytest.approx(h / math.log(2), rel=1e-12)
    assert values["perplexity"].value == pytest.approx(math.exp(h), rel=1e-12)
    assert values["max probability"].value == pytest.approx(p.max(), rel=1e-12)
    top = np.sort(p)
    assert values["margin (top-1 − top-2)"].value == pytest.approx(top[-1] - top[-2], rel=1e-12)
    assert values["argmax"].value == 0
    assert values["naive exp/sum"] == "ok"
    label = "cross-entropy (target 2, label smoothing 0.2)"
    expected = F.cross_entropy(torch.tensor(x)[None], torch.tensor([2]), label_smoothing=0.2).item()
    assert values[label].value == pytest.approx(expected, rel=1e-12)


def test_stats_table_reports_naive_overflow():
    values = {r[0]: r[1] for r in stats_table(_result([1000.0, 0.0])).rows}
    assert values["naive exp/sum"] == "overflows"
    values = {r[0]: r[1] for r in stats_table(_result([-1000.0, -1001.0])).rows}
    assert values["naive exp/sum"] == "underflows"


def test_steps_table_columns_and_sums():
    x = np.array([1.0, 3.0, -2.0])
    t = 0.5
    table = steps_table(_result(x, temperature=t, dtype="float64"), digits=6)
    assert table.header[:4] == ("class", "x", "x/T", "(x − max)/T")
    assert [r[2].value for r in table.rows] == pytest.approx(list(x / t))
    naive = np.exp(x / t)
    assert [r[7].value for r in table.rows] == pytest.approx(list(naive), rel=1e-12)
    assert [r[8].value for r in table.rows] == pytest.approx(list(naive / naive.sum()), rel=1e-12)
    assert table.footer[0][7].value == pytest.approx(naive.sum(), rel=1e-12)


def test_row_labels_for_3d_input():
    r = _result(np.zeros((2, 3, 4)), dim=1)
    assert tables.row_label(r, 0) == "x[0, :, 0]"
    assert tables.row_label(r, 5) == "x[1, :, 1]"
    assert probability_table(r, 5).title.startswith("row 5: x[1, :, 1]")


def test_row_out_of_range_is_an_input_error():
    with pytest.raises(ValueError, match="out of range"):
        probability_table(_result([1.0, 2.0]), row=1)


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError):
        Table("t", ("a", "b"), (("only one",),))


def test_result_tables_full_for_small_and_summary_for_large():
    small = result_tables(_result(np.zeros((20, 50))))
    assert len(small) == 40  # a probability table and a statistics table per row
    assert [t.title.split(":")[0] for t in small[::2]] == [f"row {i}" for i in range(20)]
    many_rows = result_tables(_result(np.zeros((21, 3))))
    assert len(many_rows) == 1
    assert len(many_rows[0].rows) == 21
    assert any("summary line" in n for n in many_rows[0].notes)
    many_classes = result_tables(_result(np.arange(51.0)))
    assert len(many_classes) == 1 and len(many_classes[0].rows) == 1
    assert many_classes[0].rows[0][1].value == 50  # argmax


def test_summary_table_with_targets_has_mean_footer():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(25, 3))
    targets = rng.integers(0, 3, size=25)
    r = _result(x, dtype="float64")
    ce = cross_entropy(r.logits, targets, dtype="float64")
    (table,) = result_tables(r, ce=ce, targets=targets, digits=8)
    assert table.header[-2:] == ("target", "cross-entropy")
    ref = F.cross_entropy(torch.tensor(x), torch.tensor(targets), reduction="none").numpy()
    assert [row[-1].value for row in table.rows] == pytest.approx(list(ref), rel=1e-12)
    assert table.footer[0][-1].value == pytest.approx(ref.mean(), rel=1e-12)


def test_result_tables_batch_mean_and_notes():
    x = np.array([[2.0, 1.0], [-math.inf, 0.0]])
    r = _result(x, dtype="float64")
    ce = cross_entropy(r.logits, [0, 1], dtype="float64")
    doc = result_tables(r, ce=ce, targets=[0, 1])
    assert doc[-1].title == "batch"
    ref = F.cross_entropy(torch.tensor(x), torch.tensor([0, 1])).item()
    assert doc[-1].rows[0][1].value == pytest.approx(ref, rel=1e-12)
    assert any("-inf" in n for n in doc[0].notes)


# ---------------------------------------------------------------------------
# Writers


NASTY = ("=SUM(A1:A9)", "+1", "-cmd", "@x", "plain", "a,b")


def test_csv_guards_text_cells_but_not_numbers():
    r = _result([-math.inf, 1.0, 2.0, 3.0, 4.0, 5.0])
    text = write_table(probability_table(r, class_names=NASTY), "csv")
    rows = list(csv.reader(io.StringIO(text)))
    header_at = next(i for i, row in enumerate(rows) if row and row[0] == "class")
    body = rows[header_at + 1 : header_at + 7]
    assert [row[0] for row in body] == ["'=SUM(A1:A9)", "'+1", "'-cmd", "'@x", "plain", "a,b"]
    assert body[0][1] == "-inf"  # a number: no guard
    assert body[0][5] == "-inf"
    assert body[1][2] == "-4.000"
    assert tables.csv_guard("-1.5") == "'-1.5"  # as text it would be guarded


def test_latex_escapes_specials_and_uses_booktabs():
    names = ("a&b", "50%", "$x$", "#1", "snake_case", "{x}", "~", "^", "back\\slash")
    r = _result([-math.inf] + [1.0] * 8)
    text = write_table(probability_table(r, class_names=names), "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrr}"):
        assert rule in text
    for escaped in (
        r"a\&b",
        r"50\%",
        r"\$x\$",
        r"\#1",
        r"snake\_case",
        r"\{x\}",
        r"\textasciitilde{}",
        r"\textasciicircum{}",
        r"back\textbackslash{}slash",
    ):
        assert escaped in text
    first = next(line for line in text.splitlines() if line.startswith("a\\&b"))
    assert r"$-\infty$" in first
    assert "−" not in text  # U+2212 is not plain LaTeX
    assert latex_escape("x − max ≈ 1") == "x $-$ max $\\approx$ 1"


def test_markdown_escapes_pipes_in_names():
    text = write_table(probability_table(_result([1.0, 2.0]), class_names=("a|b", "c")), "markdown")
    assert "a\\|b" in text
    assert all(len(row) == 6 for row in _md_rows(text.replace("\\|", "/")))


def test_table_json_is_strict():
    doc = strict_loads(write_table(probability_table(_result([-math.inf, 0.0])), "json"))
    assert doc["header"][0] == "class"
    assert doc["rows"][0][1] == "-inf"
    many = strict_loads(write_tables(result_tables(_result([1.0, 2.0])), "json"))
    assert isinstance(many, list) and len(many) == 2


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown table format"):
        write_table(probability_table(_result([1.0])), "html")


# ---------------------------------------------------------------------------
# Atomic writes


def test_write_text_atomic_creates_and_replaces(tmp_path):
    path = tmp_path / "out.md"
    write_text_atomic(path, "first −\n")
    assert path.read_text(encoding="utf-8") == "first −\n"
    path.chmod(0o640)
    write_text_atomic(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # keeps the old file's permissions
    assert os.listdir(tmp_path) == ["out.md"]


def test_write_text_atomic_new_file_respects_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "new.csv", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_write_text_atomic_failure_keeps_old_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "table.csv"
    path.write_text("old contents\n", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, "new contents\n")
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old contents\n"
    assert os.listdir(tmp_path) == ["table.csv"]  # no temporary file left behind


def test_write_text_atomic_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "nope" / "t.md", "x")
    assert os.listdir(tmp_path) == []


def test_write_text_atomic_writes_through_symlink(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "new"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_format_exact_array_round_trips_through_torch(dtype):
    rng = np.random.default_rng(1)
    raw = np.concatenate([rng.normal(size=300) * 10, [0.0, -0.0, math.inf, -math.inf, math.nan]])
    stored = torch.tensor(raw).to(getattr(torch, dtype)).double().numpy()
    texts = tables.format_exact_array(stored, dtype)
    back = torch.tensor([float(t) for t in texts], dtype=torch.float64).to(getattr(torch, dtype))
    np.testing.assert_array_equal(back.double().numpy(), stored)
    assert texts[-5:] == ["0.0", "-0.0", "inf", "-inf", "nan"]
    assert texts == [format_exact(v, dtype) for v in stored]
