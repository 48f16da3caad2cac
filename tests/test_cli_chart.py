"""`softmax-lab chart`: each view to PNG, SVG and PDF from the command line, and its errors.

Most tests call ``cli.main`` in-process (the suite's QApplication is reused);
two run the installed console script in a real process, where Qt starts on
the offscreen platform by itself, to prove the exit status and a clean stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from softmax_lab.app import cli
from tests import export_readback as rb

ERROR_PREFIX = "softmax-lab: error:"
SCRIPT = Path(sys.executable).parent / "softmax-lab"
ACCEPTED_STDERR = ("This plugin does not support propagateSizeHints()",)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["chart", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, out: str, err: str) -> str:
    assert status == 2
    assert out == ""
    assert err.startswith(ERROR_PREFIX), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def softmax_ref(logits, temperature: float = 1.0, dim: int = -1) -> np.ndarray:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(x / temperature, dim=dim).numpy()


@pytest.fixture
def batch_file(tmp_path: Path) -> Path:
    data = np.zeros((5, 4))
    data[np.arange(5), np.arange(5) % 4] = 12.0
    path = tmp_path / "batch.npy"
    np.save(path, data)
    return path


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_each_view_in_each_format(capsys, qapp, tmp_path, batch_file, fmt):
    for view in ("probabilities", "log", "overflow", "steps", "heatmap"):
        out = tmp_path / f"{view}.{fmt}"
        source = [str(batch_file)] if view == "heatmap" else ["--logits", "2,1,0.1"]
        status, stdout, err = run(
            capsys,
            *source,
            "--view",
            view,
            "--width",
            "600",
            "--height",
            "400",
            "--dpi",
            "120",
            "-o",
            str(out),
        )
        assert (status, stdout, err) == (0, "", ""), err
        rb.check_file(out, fmt, (600, 400), 120)


def test_png_bars_follow_the_temperature_and_the_theme(capsys, qapp, tmp_path):
    out = tmp_path / "t.png"
    logits = [3.0, 1.0, 0.0]
    status, _, err = run(
        capsys, "--logits", "3,1,0", "--temperature", "2", "--theme", "dark", "-o", str(out)
    )
    assert status == 0, err
    data = out.read_bytes()
    assert rb.png_size(data) == (1600, 1000), "the default size"
    assert abs(rb.png_dpi(data)[0] - 200) < rb.DPI_TOLERANCE, "the default DPI"
    rgb = rb.png_pixels(data)
    assert max(rb.background(rgb)) < 60
    argmax = rb.bars(rb.colour_mask(rgb, rb.ARGMAX))
    plain = rb.bars(rb.colour_mask(rgb, rb.BAR))
    assert len(argmax) == 1 and len(plain) == 2
    heights = np.array([argmax[0][3] - argmax[0][2], *(b[3] - b[2] for b in plain)], float)
    p = softmax_ref(logits, 2.0)
    np.testing.assert_allclose(heights / heights[0], p / p[0], atol=0.02)


def test_svg_of_a_row_of_a_file_renders_back_with_its_bars(capsys, qapp, tmp_path):
    data = np.array([[0.0, 1.0, 2.0], [4.0, 0.5, 1.0]])
    np.save(tmp_path / "x.npy", data)
    out = tmp_path / "row1.svg"
    status, _, err = run(capsys, str(tmp_path / "x.npy"), "--row", "1", "-o", str(out))
    assert status == 0, err
    rgb = rb.render_svg(out.read_bytes(), 1600, 1000)
    argmax = rb.bars(rb.colour_mask(rgb, rb.ARGMAX))
    plain = rb.bars(rb.colour_mask(rgb, rb.BAR))
    assert len(argmax) == 1 and len(plain) == 2
    assert argmax[0][0] < plain[0][0], "row 1's argmax is class 0"
    p = softmax_ref(data[1])
    heights = np.array([argmax[0][3] - argmax[0][2], *(b[3] - b[2] for b in plain)], float)
    np.testing.assert_allclose(heights / heights[0], p / p[0], atol=0.02)


def test_steps_svg_holds_the_probabilities_and_the_csv_class_names(capsys, qapp, tmp_path):
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("cat,dog,bird\n2,1,0.1\n", encoding="utf-8")
    out = tmp_path / "steps.svg"
    status, _, err = run(capsys, str(csv_file), "--view", "steps", "-o", str(out))
    assert status == 0, err
    texts = rb.svg_texts(out.read_bytes())
    assert {"cat", "dog", "bird"} <= set(texts)
    for value in softmax_ref([2.0, 1.0, 0.1]).astype(np.float32):
        assert f"{float(value):.4g}" in texts


def test_gradient_and_heatmap_with_targets(capsys, qapp, tmp_path, batch_file):
    grad = tmp_path / "g.pdf"
    status, _, err = run(
        capsys, "--logits", "2,1,0.1", "--view", "gradient", "--target", "1", "-o", str(grad)
    )
    assert status == 0, err
    rb.check_pdf(grad.read_bytes())
    heat = tmp_path / "h.png"
    status, _, err = run(
        capsys,
        str(batch_file),
        "--view",
        "heatmap",
        "--targets",
        "0,1,2,3,0",
        "--dim",
        "0",
        "-o",
        str(heat),
    )
    assert status == 0, err
    assert rb.png_size(heat.read_bytes()) == (1600, 1000)


def test_output_replaces_an_existing_file(capsys, qapp, tmp_path):
    out = tmp_path / "c.png"
    out.write_bytes(b"old")
    status, _, err = run(capsys, "--logits", "1,2", "-o", str(out))
    assert status == 0, err
    assert out.read_bytes()[:8] == rb.PNG_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--logits", "2,1", "--view", "pie", "-o", "x.png"], "invalid choice: 'pie'"),
        (["--logits", "2,1", "-o", "x.gif"], ".png, .svg or .pdf"),
        (["--logits", "2,1"], "-o/--output"),
        (["--logits", "2,1", "--view", "heatmap", "-o", "x.png"], "needs 2-D logits from FILE"),
        (["--logits", "2,1", "--view", "gradient", "-o", "x.png"], "needs a target"),
        (["--logits", "2,1", "--row", "1", "-o", "x.png"], "--row 1 is out of range"),
        (["--logits", "2,1", "--width", "5", "-o", "x.png"], "between 16 and 12000"),
        (["--logits", "2,1", "--dpi", "nan", "-o", "x.png"], "between 10 and 2400"),
        (["--logits", "2,1", "--theme", "blue", "-o", "x.png"], "invalid choice: 'blue'"),
        (["--logits", "2,1", "--temperature", "0", "-o", "x.png"], "temperature"),
        (["--logits", "2,1", "--target", "5", "-o", "x.png"], "out of range"),
        (["-o", "x.png"], "no logits"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    err = assert_one_line_error(*run(capsys, *args))
    assert says in err
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_heatmap_of_a_vector_file_says_it_needs_2d(capsys, tmp_path):
    np.save(tmp_path / "v.npy", np.array([1.0, 2.0]))
    err = assert_one_line_error(
        *run(capsys, str(tmp_path / "v.npy"), "--view", "heatmap", "-o", str(tmp_path / "h.png"))
    )
    assert "2-D" in err


def test_unwritable_output_exits_2_and_keeps_the_old_file(capsys, qapp, tmp_path, monkeypatch):
    out = tmp_path / "c.svg"
    out.write_bytes(b"keep me")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    err = assert_one_line_error(*run(capsys, "--logits", "1,2", "-o", str(out)))
    assert "cannot write" in err and "Permission denied" in err
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.svg"]


def test_help_lists_the_views(capsys):
    assert cli.main(["chart", "--help"]) == 0
    out = capsys.readouterr().out
    for view in ("probabilities", "log", "overflow", "steps", "heatmap"):
        assert view in out
    assert "--dpi" in out and "--theme" in out and "--width" in out


def test_chart_views_match_the_exporter():
    from softmax_lab.widgets.chart_export import EXPORT_VIEWS, THEMES

    assert cli.CHART_VIEWS == EXPORT_VIEWS
    assert cli.CHART_THEMES == THEMES


# -- real processes ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Nothing tells the command to go offscreen: it must do so by itself.
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def test_chart_in_a_real_process_exits_0_with_a_clean_stderr(tmp_path):
    assert SCRIPT.exists(), f"console script not installed next to the interpreter: {SCRIPT}"
    out = tmp_path / "x.png"
    done = subprocess.run(
        [str(SCRIPT), "chart", "--logits", "2,1,0.1", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
    )
    extra = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and line.strip() not in ACCEPTED_STDERR
    ]
    assert done.returncode == 0 and extra == [], done.stderr
    assert done.stdout == ""
    assert rb.png_size(out.read_bytes()) == (1600, 1000)


def test_bad_view_in_a_real_process_exits_2_with_one_line(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "softmax_lab.app.cli",
            "chart",
            "--logits",
            "2,1",
            "--view",
            "bars",
            "-o",
            "x.png",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(ERROR_PREFIX)
    assert "bars" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_json_table_and_chart_agree(capsys, qapp, tmp_path):
    # The chart draws what `softmax-lab table` computes: same options, same numbers.
    status = cli.main(["table", "--logits", "0.5,2,-1", "--temperature", "0.7", "--format", "json"])
    table = json.loads(capsys.readouterr().out)
    assert status == 0
    out = tmp_path / "c.svg"
    status, _, err = run(
        capsys, "--logits", "0.5,2,-1", "--temperature", "0.7", "--view", "steps", "-o", str(out)
    )
    assert status == 0, err
    texts = rb.svg_texts(out.read_bytes())
    for value in table["rows"][0]["probabilities"]:
        assert f"{value:.4g}" in texts
