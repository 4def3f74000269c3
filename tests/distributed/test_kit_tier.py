"""The conformance kit's distributed tier (``--distributed 2``): generated programs with
functional collectives on 2 gloo ranks started by the kit, on our executors and on one that
gets a collective wrong."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conformance.support import REPO_ROOT, run_kit
from torchexec.testing._collectives import COLLECTIVES

BROKEN = "tests.distributed.broken_collectives"


def test_tier_passes_on_proxy_and_torchbind(tmp_path: Path) -> None:
    run = run_kit(
        ["proxy", "torchbind"],
        ["--distributed", "2", "--conformance-profile", "ci", "-k", "distributed"],
        tmp_path / "report.json",
    )
    assert run.returncode == 0, run.output[-4000:]
    for name in ("proxy", "torchbind"):
        tier = run.executor(name)["tiers"]["distributed"]
        assert tier["examples"] >= 20
        assert tier["passed"] == tier["examples"], tier
    operators = run.report["operators"]
    for kind in COLLECTIVES:  # every collective ran, each followed by a wait
        assert operators[f"_c10d_functional.{kind}.default"] >= 1, kind
    assert operators["_c10d_functional.wait_tensor.default"] >= len(COLLECTIVES)
    assert run.report["warnings"] == []


def test_tier_names_the_wrong_collective(tmp_path: Path) -> None:
    run = run_kit(
        ["wrong_gather"],
        ["-p", BROKEN, "--distributed-setup", BROKEN, "--distributed", "2",
         "--hypothesis-seed", "1", "-k", "distributed"],
        tmp_path / "report.json",
        python_path=[REPO_ROOT],
    )  # fmt: skip
    assert run.returncode == 1, run.output[-4000:]
    failures = run.failures("wrong_gather")
    assert failures, run.output[-4000:]
    gather = "_c10d_functional.all_gather_into_tensor.default"
    assert {f["operator"] for f in failures} == {gather}
    failure = failures[0]
    assert failure["id"] == f"wrong_gather::distributed::{gather}"
    assert failure["status"] == "mismatched"
    assert failure["message"].startswith("rank ")
    assert 'dist.init_process_group("gloo")' in failure["reproduction"]
    assert f"torch.ops.{gather}(" in failure["reproduction"]
    tier = run.executor("wrong_gather")["tiers"]["distributed"]
    assert tier["mismatched"] == len(failures)
    assert tier["passed"] + tier["mismatched"] == tier["examples"]


def test_a_hung_collective_fails_the_tier_in_time(tmp_path: Path) -> None:
    start = time.monotonic()
    run = run_kit(
        ["skips_reduce"],
        ["-p", BROKEN, "--distributed-setup", BROKEN, "--distributed", "2",
         "--distributed-timeout", "30", "--hypothesis-seed", "1", "-k", "distributed"],
        tmp_path / "report.json",
        python_path=[REPO_ROOT],
    )  # fmt: skip
    assert run.returncode == 1, run.output[-4000:]
    assert time.monotonic() - start < 120
    [failure] = run.failures("skips_reduce")
    assert failure["status"] == "crashed", failure
    assert "rank 0 did not finish within 30 s (a hung collective?)" in failure["message"]
    # the rank's last words say where it hung
    assert "rank 0: program 0 on skips_reduce: " in failure["message"]
