"""The kit checks a priority list as one executor: ``--executor half,aten`` (a partial executor
that claims half of the operators, then aten), so generated programs are cut between the two."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.support import REPO_ROOT, run_kit


def test_kit_on_a_priority_list(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = run_kit(
        ["half,aten"],
        [
            "-p",
            "tests.conformance.half_plugin",
            "--conformance-profile",
            "ci",
            "--max-examples",
            "40",
            "-k",
            "generated or contract",
            "-q",
        ],
        report,
        python_path=[REPO_ROOT],
    )
    assert run.returncode == 0, run.output[-6000:]
    section = run.executor("half,aten")
    assert section["bitwise"] is True
    tier = section["tiers"]["generated"]
    assert tier["examples"] >= 40
    assert tier["passed"] == tier["examples"] and tier["mismatched"] == tier["raised"] == 0, tier
    assert set(section["contract"].values()) == {"passed"}
