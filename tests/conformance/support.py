"""Running the conformance kit in a child pytest, as an executor author would, and reading back
its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
XFAILS = HERE / "xfails.txt"
OUR_EXECUTORS = ("aten", "proxy", "torchbind")


@dataclass
class KitRun:
    """A finished child run: its exit code, terminal output and JSON report."""

    returncode: int
    output: str
    report: dict[str, Any]

    def executor(self, name: str) -> dict[str, Any]:
        """The report section of executor ``name``."""
        section: dict[str, Any] = self.report["executors"][name]
        return section

    def failures(self, name: str) -> list[dict[str, Any]]:
        """The failures recorded for executor ``name``."""
        return list(self.executor(name)["failures"])


def run_kit(
    executors: Sequence[str],
    args: Sequence[str],
    report: Path,
    *,
    python_path: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 1200,
) -> KitRun:
    """``python -m pytest --pyargs torchexec.testing --executor ... ARGS`` in a child process."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "torchexec.testing",
        "-p",
        "no:cacheprovider",
    ]
    cmd += [f"--executor={e}" for e in executors]
    cmd += ["--conformance-report", str(report), *args]
    child_env = dict(os.environ)
    child_env.pop("PYTEST_ADDOPTS", None)
    if python_path:
        parts = [str(p) for p in python_path]
        if child_env.get("PYTHONPATH"):
            parts.append(child_env["PYTHONPATH"])
        child_env["PYTHONPATH"] = os.pathsep.join(parts)
    child_env.update(env or {})
    proc = subprocess.run(
        cmd,
        check=False,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=report.parent,
    )
    output = proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return KitRun(proc.returncode, output, data)


def installed_executors() -> list[str]:
    """Our executors (aten, proxy, torchbind) that are installed and load."""
    import torchexec

    names = {i.name for i in torchexec.list_executors()}
    out = []
    for name in OUR_EXECUTORS:
        if name not in names:
            continue
        try:
            torchexec.get_executor(name)
        except torchexec.TorchexecError:
            continue
        out.append(name)
    return out
