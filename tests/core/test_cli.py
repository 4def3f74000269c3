"""The torchexec command: list, run, demo (output asserted, not only the exit status)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchexec._cli import main


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_list_table() -> None:
    code, text = _run(["list"])
    assert code == 0
    header, rule, *rows = text.splitlines()
    assert header.split()[:5] == ["NAME", "STATUS", "DISTRIBUTION", "VERSION", "DEVICES"]
    assert set(rule) <= {"-", " "}
    aten = next(r for r in rows if r.startswith("aten "))
    assert "torchexec-aten" in aten and "0.1.0" in aten and "cpu,cuda" in aten


def test_list_json() -> None:
    code, text = _run(["list", "--json"])
    assert code == 0
    rows = {r["name"]: r for r in json.loads(text)}
    assert rows["aten"]["distribution"] == "torchexec-aten"
    assert rows["aten"]["capabilities"]["bitwise"] is True
    assert rows["aten"]["error"] is None


@pytest.fixture
def pt2(tmp_path: Path) -> Path:
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(m, (torch.randn(2, 4),)), path)
    return path


def test_run_pt2(pt2: Path) -> None:
    code, text = _run(["run", str(pt2), "--executor", "aten", "--repeat", "3"])
    assert code == 0
    lines = dict(line.split(None, 1) for line in text.splitlines() if line.strip())
    assert lines["executor"] == "aten"
    assert lines["inputs"] == "float32[2, 4]"
    assert lines["outputs"] == "float32[2, 3]"
    assert lines["per"].startswith("call") and lines["per"].endswith("(median of 3)")


def test_run_unknown_executor_is_clean_error(pt2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(["run", str(pt2), "--executor", "atne"])
    assert code == 1
    assert "Did you mean 'aten'" in capsys.readouterr().err


def test_run_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(["run", "/nope/m.pt2"])
    assert code == 1
    assert "No such program file: /nope/m.pt2" in capsys.readouterr().err


def test_demo_as_a_user_runs_it(tmp_path: Path) -> None:
    import os

    import torchexec

    env = {**os.environ, "TORCHEXEC_CACHE_DIR": str(tmp_path)}  # compiling executors cache here
    out = subprocess.run(
        [sys.executable, "-m", "torchexec", "demo", "--repeat", "3"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Exported DemoModel")
    aten = next(line for line in lines if line.startswith("aten "))
    assert "ok" in aten and "bit for bit" in aten and aten.rstrip().endswith("x")
    for info in torchexec.list_executors():  # every installed executor agrees with aten
        row = next(line for line in lines if line.startswith(info.name + " "))
        bitwise = info.capabilities is not None and info.capabilities.bitwise
        assert ("bit for bit" if bitwise else "within 1e-05") in row or "bit for bit" in row, row
