"""The command line (app/cli.py): `softmax-lab table`, errors, the window dispatch.

Most tests call ``cli.main`` in-process; a few run a real interpreter to prove
the exit status and that no traceback reaches stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmax_lab.app import cli
from softmax_lab.compute import device as device_module
from softmax_lab.compute import tables
from softmax_lab.compute.device import CudaStatus

ERROR_PREFIX = "softmax-lab: error:"


def _no_constants(name: str):
    raise AssertionError(f"non-standard JSON constant {name!r}")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys, *argv: str) -> dict:
    status, out, err = run(capsys, "table", *argv, "--format", "json")
    assert (status, err) == (0, "")
    return json.loads(out, parse_constant=_no_constants)


def assert_one_line_error(status: int, out: str, err: str) -> None:
    assert status == 2
    assert out == ""
    assert err.startswith(ERROR_PREFIX)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


def subprocess_cli(*argv: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "softmax_lab.app.cli", *argv],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env,
        cwd=cwd,
    )


def _md_column(text: str, name: str) -> list[str]:
    # The first table only: consecutive lines starting with "|".
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    col = header.index(name)
    return [line.strip("|").split("|")[col].strip() for line in lines[2:]]


# ---------------------------------------------------------------------------
# Tables from --logits


def test_seed_markdown_table(capsys):
    status, out, err = run(capsys, "table", "--logits", "2,1,0.1")
    assert (status, err) == (0, "")
    assert _md_column(out, "probability")[:3] == ["0.659", "0.242", "0.099"]
    assert "entropy (nats)" in out and "perplexity" in out


@pytest.mark.parametrize(
    "argv",
    [["--logits", "-inf,0"], ["--logits=-inf,0"], ["--logits", "-inf 0"], ["--logits", "-INF;0"]],
)
def test_negative_and_infinite_logits_parse(capsys, argv):
    doc = run_json(capsys, *argv)
    row = doc["rows"][0]
    assert row["logits"] == ["-inf", 0.0]
    assert row["probabilities"] == [0.0, 1.0]
    assert row["log_probabilities"] == ["-inf", 0.0]


def test_negative_logits_and_dim(capsys):
    doc = run_json(capsys, "--logits", "-1,2", "--dim", "-1", "--temperature", "0.5")
    ref = torch.softmax(torch.tensor([-1.0, 2.0]) / 0.5, 0).numpy()
    np.testing.assert_array_equal(np.float32(doc["rows"][0]["probabilities"]), ref)
    assert doc["dim"] == -1 and doc["temperature"] == 0.5


def test_json_defaults(capsys):
    doc = run_json(capsys, "--logits", "2,1,0.1")
    assert doc["dtype"] == "float32"
    assert doc["dim"] == -1
    assert doc["temperature"] == 1.0
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert doc["device"] == expected_device
    assert doc["mean_cross_entropy"] is None


def test_cross_entropy_with_target_and_label_smoothing(capsys):
    x = [2.0, 1.0, 0.1, -3.0]
    doc = run_json(
        capsys,
        "--logits",
        "2,1,0.1,-3",
        "--target",
        "2",
        "--label-smoothing",
        "0.1",
        "--temperature",
        "2",
        "--dtype",
        "float64",
    )
    expected = F.cross_entropy(
        torch.tensor([x], dtype=torch.float64) / 2.0, torch.tensor([2]), label_smoothing=0.1
    ).item()
    assert doc["rows"][0]["target"] == 2
    assert doc["rows"][0]["cross_entropy"] == pytest.approx(expected, rel=1e-12)
    assert doc["mean_cross_entropy"] == pytest.approx(expected, rel=1e-12)


def test_markdown_with_target_marks_class_and_shows_loss(capsys):
    status, out, _ = run(capsys, "table", "--logits", "2,1,0.1", "--targets", "1")
    assert status == 0
    assert _md_column(out, "class")[:3] == ["0", "1 (target)", "2"]
    expected = F.cross_entropy(torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([1])).item()
    loss_line = next(line for line in out.splitlines() if "cross-entropy (target 1)" in line)
    assert float(loss_line.strip("|").split("|")[1]) == pytest.approx(expected, abs=5e-4)


def test_float16_json_round_trips_to_torch(capsys):
    doc = run_json(capsys, "--logits", "3,1,-2,0,5", "--dtype", "float16", "--device", "cpu")
    expected = torch.softmax(torch.tensor([3.0, 1.0, -2.0, 0.0, 5.0]).half(), 0).numpy()
    np.testing.assert_array_equal(np.float16(doc["rows"][0]["probabilities"]), expected)
    assert doc["dtype"] == "float16"


@pytest.mark.parametrize("fmt", ["csv", "latex", "markdown"])
def test_other_formats(capsys, fmt):
    status, out, _ = run(capsys, "table", "--logits", "2,1,0.1", "--format", fmt)
    assert status == 0
    assert "0.659" in out and "0.242" in out and "0.099" in out
    if fmt == "latex":
        assert r"\toprule" in out and r"\bottomrule" in out


def test_digits_option(capsys):
    status, out, _ = run(capsys, "table", "--logits", "2,1,0.1", "--digits", "5")
    assert status == 0
    assert _md_column(out, "probability")[:3] == ["0.65900", "0.24243", "0.09857"]


# ---------------------------------------------------------------------------
# Tables from files (compute/loaders.py)


def test_csv_file_2d_with_header_gives_classes(capsys, tmp_path):
    path = tmp_path / "logits.csv"
    path.write_text("cat,dog,owl\n2,1,0.1\n0,5,-1\n", encoding="utf-8")
    doc = run_json(capsys, str(path))
    assert doc["classes"] == ["cat", "dog", "owl"]
    x = torch.tensor([[2.0, 1.0, 0.1], [0.0, 5.0, -1.0]])
    ref = torch.softmax(x, dim=-1).numpy()
    for row, p in zip(doc["rows"], ref, strict=True):
        np.testing.assert_array_equal(np.float32(row["probabilities"]), p)


def test_npy_file_dim0_rows_are_columns(capsys, tmp_path):
    x = np.array([[2.0, 1.0, 0.1], [0.0, 5.0, -1.0]])
    np.save(tmp_path / "x.npy", x)
    doc = run_json(capsys, str(tmp_path / "x.npy"), "--dim", "0", "--dtype", "float64")
    assert doc["dim"] == 0 and len(doc["rows"]) == 3
    ref = torch.softmax(torch.tensor(x), dim=0).numpy()
    for j, row in enumerate(doc["rows"]):
        np.testing.assert_allclose(row["probabilities"], ref[:, j], rtol=1e-15)


def test_npz_name_and_target_for_every_row(capsys, tmp_path):
    x = np.array([[2.0, 1.0, 0.1], [0.0, 5.0, -1.0]])
    np.savez(tmp_path / "arrays.npz", other=np.zeros(3), logits=x)
    doc = run_json(
        capsys,
        str(tmp_path / "arrays.npz"),
        "--name",
        "logits",
        "--target",
        "1",
        "--dtype",
        "float64",
    )
    none = F.cross_entropy(torch.tensor(x), torch.tensor([1, 1]), reduction="none").numpy()
    assert [r["target"] for r in doc["rows"]] == [1, 1]
    assert [r["cross_entropy"] for r in doc["rows"]] == pytest.approx(list(none), rel=1e-12)
    assert doc["mean_cross_entropy"] == pytest.approx(none.mean(), rel=1e-12)


def test_targets_list_and_file_with_ignore_index(capsys, tmp_path):
    x = np.array([[2.0, 1.0, 0.1], [0.0, 5.0, -1.0], [1.0, 1.0, 1.0]])
    np.save(tmp_path / "x.npy", x)
    targets = [0, -100, 2]
    ref_none = F.cross_entropy(
        torch.tensor(x), torch.tensor(targets), reduction="none", label_smoothing=0.2
    ).numpy()
    ref_mean = F.cross_entropy(torch.tensor(x), torch.tensor(targets), label_smoothing=0.2).item()
    (tmp_path / "targets.csv").write_text("0\n-100\n2\n", encoding="utf-8")
    for spec in ("0,-100,2", str(tmp_path / "targets.csv")):
        doc = run_json(
            capsys,
            str(tmp_path / "x.npy"),
            "--targets",
            spec,
            "--label-smoothing",
            "0.2",
            "--dtype",
            "float64",
        )
        got = [r["cross_entropy"] for r in doc["rows"]]
        assert got[1] is None  # ignored row
        assert got[0] == pytest.approx(ref_none[0], rel=1e-12)
        assert got[2] == pytest.approx(ref_none[2], rel=1e-12)
        assert doc["mean_cross_entropy"] == pytest.approx(ref_mean, rel=1e-12)


def test_3d_file_is_refused_with_one_line(capsys, tmp_path):
    # The loaders take (C,) or (N, C); 3-D inputs are covered by tests/compute/test_tables.py.
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4)))
    status, out, err = run(capsys, "table", str(tmp_path / "x.npy"), "--dim", "1")
    assert_one_line_error(status, out, err)
    assert "reshape" in err


def test_large_input_gives_summary(capsys, tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((30, 4)))
    status, out, _ = run(capsys, "table", str(tmp_path / "big.npy"))
    assert status == 0
    assert out.count("### ") == 1
    assert "summary" in out and len(_md_column(out, "row")) == 30


# ---------------------------------------------------------------------------
# -o


def test_output_file_infers_format_and_replaces(capsys, tmp_path):
    path = tmp_path / "seed.json"
    path.write_text("old", encoding="utf-8")
    status, out, err = run(capsys, "table", "--logits", "2,1,0.1", "-o", str(path))
    assert (status, out, err) == (0, "", "")
    doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constants)
    assert doc["rows"][0]["probabilities"][0] == pytest.approx(0.659, abs=5e-4)
    status, _, _ = run(capsys, "table", "--logits", "2,1,0.1", "-o", str(path), "--format", "csv")
    assert status == 0 and path.read_text(encoding="utf-8").startswith('"softmax of 3 logits')
    assert os.listdir(tmp_path) == ["seed.json"]


def test_output_same_as_stdout(capsys, tmp_path):
    _, shown, _ = run(capsys, "table", "--logits", "2,1,0.1", "--format", "latex")
    run(capsys, "table", "--logits", "2,1,0.1", "--format", "latex", "-o", str(tmp_path / "t.tex"))
    assert (tmp_path / "t.tex").read_text(encoding="utf-8") == shown


def test_output_failure_keeps_old_file(capsys, tmp_path, monkeypatch):
    path = tmp_path / "t.md"
    path.write_text("old table\n", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables.os, "replace", boom)
    assert_one_line_error(*run(capsys, "table", "--logits", "1,2", "-o", str(path)))
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old table\n"
    assert os.listdir(tmp_path) == ["t.md"]


def test_output_into_missing_directory(capsys, tmp_path):
    status, out, err = run(capsys, "table", "--logits", "1,2", "-o", str(tmp_path / "no" / "t.md"))
    assert_one_line_error(status, out, err)
    assert "cannot write" in err


# ---------------------------------------------------------------------------
# Errors: status 2 and one line


@pytest.mark.parametrize(
    "argv",
    [
        ["--logits", "1,abc"],
        ["--logits", "1_000,2"],
        ["--logits", ""],
        ["--logits", "1,2", "--temperature", "0"],
        ["--logits", "1,2", "--temperature", "-1"],
        ["--logits", "1,2", "--temperature", "nan"],
        ["--logits", "1,2", "--temperature", "inf"],
        ["--logits", "1,2", "--temperature", "hot"],
        ["--logits", "1,2", "--target", "2"],
        ["--logits", "1,2", "--target", "-1"],
        ["--logits", "1,2", "--targets", "0,1"],
        ["--logits", "1,2", "--target", "0", "--targets", "0"],
        ["--logits", "1,2", "--target", "x"],
        ["--logits", "1,2", "--label-smoothing", "0.1"],
        ["--logits", "1,2", "--target", "0", "--label-smoothing", "1.5"],
        ["--logits", "1,2", "--dim", "1"],
        ["--logits", "1,2", "--dim", "x"],
        ["--logits", "1,2", "--dtype", "float8"],
        ["--logits", "1,2", "--device", "tpu"],
        ["--logits", "1,2", "--format", "html"],
        ["--logits", "1,2", "--digits", "0"],
        ["--logits", "1,2", "--name", "x"],
        ["--logits", "1,2", "--bogus"],
        ["--logits"],
        [],
    ],
)
def test_errors_are_one_line_with_status_2(capsys, argv):
    assert_one_line_error(*run(capsys, "table", *argv))


def test_file_and_logits_together(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    assert_one_line_error(*run(capsys, "table", str(tmp_path / "x.npy"), "--logits", "1"))


def test_unreadable_files(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "table", str(tmp_path / "missing.csv")))
    (tmp_path / "bad.csv").write_text("1,2\nthree,4\n", encoding="utf-8")
    assert_one_line_error(*run(capsys, "table", str(tmp_path / "bad.csv")))
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file at all")
    assert_one_line_error(*run(capsys, "table", str(tmp_path / "garbage.npy")))


def test_cuda_requested_but_absent(capsys, monkeypatch):
    monkeypatch.setattr(
        device_module, "cuda_status", lambda: CudaStatus(False, "no GPU in this test")
    )
    status, out, err = run(capsys, "table", "--logits", "1,2", "--device", "cuda")
    assert_one_line_error(status, out, err)
    assert "CUDA" in err


def test_help_exits_0(capsys):
    status, out, err = run(capsys, "table", "--help")
    assert (status, err) == (0, "")
    assert out.startswith("usage: softmax-lab table")
    assert "More than 20 distributions" in out and "more than 50 classes" in out
    assert "-o replaces" in out
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "softmax-lab table" in out


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("softmax-lab ")


# ---------------------------------------------------------------------------
# The window


def test_window_arguments_reach_launch_window(capsys, monkeypatch):
    calls = []

    def launch_window(**kwargs):
        calls.append(kwargs)
        return 7

    fake = types.ModuleType("softmax_lab.app.gui")
    fake.launch_window = launch_window
    monkeypatch.setitem(sys.modules, "softmax_lab.app.gui", fake)
    assert cli.main(["logits.csv", "--quit-after", "250"]) == 7
    assert cli.main([]) == 7
    assert calls == [
        {"file": "logits.csv", "quit_after_ms": 250},
        {"file": None, "quit_after_ms": None},
    ]
    assert_one_line_error(*run(capsys, "--no-such-option"))
    assert_one_line_error(*run(capsys, "--quit-after", "-5"))


# ---------------------------------------------------------------------------
# Real processes


def test_import_loads_neither_qt_nor_torch():
    code = (
        "import sys, softmax_lab.app.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch'))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_subprocess_seed_table():
    done = subprocess_cli("table", "--logits", "2,1,0.1")
    assert done.returncode == 0, done.stderr
    assert _md_column(done.stdout, "probability")[:3] == ["0.659", "0.242", "0.099"]
    assert done.stderr == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["table", "--logits", "1,zwei"],
        ["table", "--logits", "1,2", "--temperature", "0"],
        ["table", "--logits", "1,2", "--dtype", "float8"],
    ],
)
def test_subprocess_errors_have_no_traceback(argv):
    done = subprocess_cli(*argv)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(ERROR_PREFIX)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_subprocess_unreadable_file(tmp_path):
    done = subprocess_cli("table", str(tmp_path / "missing.npy"))
    assert done.returncode == 2
    assert done.stderr.startswith(ERROR_PREFIX) and done.stderr.count("\n") == 1


@pytest.mark.cuda
def test_cuda_device_is_reported_and_agrees_with_cpu(capsys):
    x = "3,-1,0.5,2,7"
    gpu = run_json(capsys, "--logits", x, "--device", "cuda", "--target", "1")
    cpu = run_json(capsys, "--logits", x, "--device", "cpu", "--target", "1")
    assert gpu["device"].startswith("cuda") and cpu["device"] == "cpu"
    np.testing.assert_allclose(
        gpu["rows"][0]["probabilities"], cpu["rows"][0]["probabilities"], rtol=1e-6
    )
    assert gpu["mean_cross_entropy"] == pytest.approx(cpu["mean_cross_entropy"], rel=1e-6)
