"""The kit on an executor from a separate distribution, run as its author would run it.

``tests/fixtures/torchexec_example`` is pip-installed (``fixture_sites`` in ``tests/conftest.py``)
into its own folder, which the child process gets on ``PYTHONPATH``: the executor is found
through its entry point, exactly as after ``pip install torchexec-example``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conformance.support import run_kit


def test_pytest_pyargs_on_a_third_party_executor(
    tmp_path: Path, fixture_sites: dict[str, Path]
) -> None:
    site = fixture_sites["torchexec_example"]
    run = run_kit(
        ["example"],
        ["--max-examples", "30", "--opinfo-samples", "1", "-k", "not opinfo or add or mul"],
        tmp_path / "report.json",
        python_path=[site],
    )
    assert run.returncode == 0, run.output[-4000:]
    section = run.executor("example")
    assert section["distribution"] == "torchexec-example 0.3.1"
    assert section["failures"] == []
    assert all(v == "passed" for v in section["contract"].values())
    assert section["tiers"]["generated"]["passed"] >= 30
    assert section["opinfo"]["agreed"] >= 2
    assert re.search(r"^example\s+generated\s+\d+\s+\d+\s+0\s+0\s+0", run.output, re.M), run.output


def test_torchexec_testing_main_on_a_third_party_executor(
    tmp_path: Path, fixture_sites: dict[str, Path]
) -> None:
    env = dict(os.environ, PYTHONPATH=str(fixture_sites["torchexec_example"]))
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "torchexec.testing", "example", "-q", "-p", "no:cacheprovider",
         "--max-examples", "10", "--opinfo-samples", "0", "--conformance-report", str(report)],
        check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert report.exists()
    assert "torchexec conformance" in proc.stdout
