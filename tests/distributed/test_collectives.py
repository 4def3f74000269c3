"""Programs with functional collectives, per rank over gloo, on every executor (2 processes
started by the test, each with a timeout: a hung collective fails instead of hanging CI)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(case: str, folder: Path, timeout: float = 240) -> list[dict[str, Any]]:
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.distributed.worker",
                case,
                str(r),
                str(WORLD),
                str(port),
                str(folder),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(WORLD)
    ]
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank of case {case!r} did not finish within {timeout} s")
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        assert lines, out[-4000:]
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    return results


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Each rank exports, saves and runs the programs (``tp_rank{rank}.pt2``, ...)."""
    folder = tmp_path_factory.mktemp("ranks")
    return folder, _launch("programs", folder)


def test_collectives_run_bit_for_bit_on_every_executor(
    saved: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, results = saved
    assert [r["rank"] for r in results] == [0, 1]
    for r in results:
        assert "error" not in r, r
        for name in ("tp", "collectives"):
            assert r[name]["proxy"] and r[name]["torchbind"], (name, r)
    # all_reduce: both ranks hold the same tensor-parallel output
    assert results[0]["tp"]["aten_sum"] == results[1]["tp"]["aten_sum"]


def test_a_rank_that_raises_does_not_hang_the_others(tmp_path: Path) -> None:
    results = _launch("raise", tmp_path, timeout=120)
    by_rank = {r["rank"]: r for r in results}
    assert "index 99 is out of bounds" in by_rank[1]["error"], by_rank[1]
    assert "error" in by_rank[0], by_rank[0]  # the peer's failure surfaced as an error


@pytest.mark.parametrize("executor", ["proxy", "torchbind"])
def test_torchrun_runs_each_rank_s_archive(
    saved: tuple[Path, list[dict[str, Any]]], executor: str
) -> None:
    folder, _ = saved
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(WORLD),
        "--master-port",
        str(_free_port()),
        "-m",
        "torchexec",
        "run",
        str(folder / "tp_rank{rank}.pt2"),
        "--executor",
        executor,
        "--repeat",
        "3",
    ]
    done = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for rank in range(WORLD):
        assert f"tp_rank{rank}.pt2" in done.stdout
        assert f"rank      {rank} of {WORLD}" in done.stdout


def test_rank_field_needs_torchrun(saved: tuple[Path, list[dict[str, Any]]]) -> None:
    folder, _ = saved
    cmd = [sys.executable, "-m", "torchexec", "run", str(folder / "tp_rank{rank}.pt2")]
    done = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "RANK is not set: start the command with torchrun" in done.stderr
