"""``torchexec.testing.main``: run the kit in a child pytest and report crashes.

The kit runs in a child process so that an executor that kills the process (a segfault in a C++
kernel) is reported as *crashed*, with the program it was running, instead of taking the caller
down: before every executor call the kit writes what it is about to run to a journal file next
to the report, and when the child dies from a signal this reads the journal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchexec.testing._env import TEMP_REPORT_ENV

__all__ = ["cli", "main"]


def _report_arg(argv: list[str]) -> Path | None:
    for i, a in enumerate(argv):
        if a == "--conformance-report" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if a.startswith("--conformance-report="):
            return Path(a.split("=", 1)[1])
    return None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _record_crash(report: Path, code: int) -> dict[str, Any]:
    journal = report.with_suffix(".journal")
    try:
        entry: dict[str, Any] = json.loads(journal.read_text())
    except (OSError, json.JSONDecodeError):
        entry = {}
    executor = str(entry.get("executor", "?"))
    tier = str(entry.get("tier", "?"))
    operators = list(entry.get("operators", []))
    crash = {
        "id": f"{executor}::{tier}::{entry.get('case', '?')}",
        "executor": executor,
        "tier": tier,
        "status": "crashed",
        "operator": operators[-1] if operators else None,
        "message": f"the process died ({_signal_name(code)}) while {executor!r} ran this program",
        "operators": operators,
        "reproduction": entry.get("code", ""),
    }
    try:
        data: dict[str, Any] = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        data = {"executors": {}}
    section = data.setdefault("executors", {}).setdefault(executor, {})
    section.setdefault("failures", []).append(crash)
    data["crashed"] = crash
    report.write_text(json.dumps(data, indent=2) + "\n")
    if journal.exists():
        journal.unlink()
    return crash


def main(executors: Sequence[str], argv: Sequence[str] = ()) -> int:
    """Run the conformance kit on ``executors``; what ``torchexec check NAME...`` calls.

    Args:
        executors: executor names to check against ``aten``.
        argv: extra pytest arguments, e.g. ``["--conformance-profile", "ci", "-x"]``.

    Returns:
        pytest's exit code (0: everything passed or is a listed xfail), or ``128 + signal``
        when the run crashed; the crash is printed and recorded in the report.
    """
    names: list[str] = []
    extra = list(argv)
    for i, name in enumerate(executors):
        if name.startswith("-"):  # 'torchexec check NAME -- -k x' hands pytest options here
            extra = list(executors[i:]) + extra
            break
        if name:
            names.append(name)
    if not names:
        print("torchexec check: name at least one executor", file=sys.stderr)
        return 4
    if extra[:1] == ["--"]:
        extra = extra[1:]
    report = _report_arg(extra)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if report is None:
        tmp = tempfile.TemporaryDirectory(prefix="torchexec-check-")
        report = Path(tmp.name) / "report.json"
        extra += ["--conformance-report", str(report)]
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "torchexec.testing"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        cmd += ["-p", "torchexec.testing.plugin"]
    cmd += [f"--executor={n}" for n in names] + extra
    env = dict(os.environ)
    if tmp is not None:
        env[TEMP_REPORT_ENV] = "1"  # the plugin does not print the path of a report about to go
    try:
        code = subprocess.call(cmd, env=env)
        if code < 0:
            crash = _record_crash(report, code)
            print(
                f"\ntorchexec check: {crash['message']} ({crash['id']}).\n"
                f"Reproduction:\n{crash['reproduction']}",
                file=sys.stderr,
            )
            if tmp is None:
                print(f"The crash is recorded in {report}.", file=sys.stderr)
            return 128 - code
        return code
    finally:
        if tmp is not None:
            tmp.cleanup()


def cli(argv: Sequence[str]) -> int:
    """``python -m torchexec.testing NAME [NAME...] [pytest args]``."""
    args = list(argv)
    names: list[str] = []
    while args and not args[0].startswith("-"):
        names.append(args.pop(0))
    if not names:
        print(
            "usage: python -m torchexec.testing EXECUTOR [EXECUTOR...] [pytest options]\n"
            "       e.g. python -m torchexec.testing my_executor --conformance-profile ci",
            file=sys.stderr,
        )
        return 4
    return main(names, args)
