"""The kit's control-flow tier: generated programs with cond, while_loop, map, scan and a
functionalized mutating custom operator; executors that get one wrong are caught and named,
executors that declare one unsupported are skipped for it."""

from __future__ import annotations

from pathlib import Path

import torch

import torchexec
from tests.conformance.support import HERE, KitRun, run_kit
from torchexec.testing._control_flow import scale_add_

HOPS = ("cond", "while_loop", "map_impl", "scan", "auto_functionalized_v2")


def _run(tmp_path: Path, executor: str, *args: str) -> KitRun:
    return run_kit(
        [executor],
        ["-p", "broken_hops", "--hypothesis-seed", "1", "-k", "control_flow", *args],
        tmp_path / "report.json",
        python_path=[HERE],
    )


def test_every_kind_runs_and_agrees_on_the_reference(tmp_path: Path) -> None:
    run = _run(tmp_path, "aten")
    assert run.returncode == 0, run.output[-4000:]
    tier = run.executor("aten")["tiers"]["control_flow"]
    assert tier["passed"] == tier["examples"] >= 10
    graph = run.report["graph_operators"]
    for hop in HOPS:
        assert graph[f"higher_order.{hop}"] >= 1, hop
    assert run.report["operators"]["torchexec_kit.scale_add_.default"] >= 1


def test_a_swapped_branch_is_caught(tmp_path: Path) -> None:
    run = _run(tmp_path, "swapped_cond")
    assert run.returncode == 1, run.output[-4000:]
    failures = run.failures("swapped_cond")
    assert failures
    assert {f["operator"] for f in failures} == {"higher_order.cond"}
    failure = failures[0]
    assert failure["id"] == "swapped_cond::control_flow::higher_order.cond"
    assert failure["status"] == "mismatched"
    assert "torch.cond(" in failure["reproduction"]
    # the reproduction is a script that fails while the broken executor is installed
    from tests.conformance.broken_hops import HopExecutor

    with torchexec.register_executor(HopExecutor("swapped_cond")):
        try:
            exec(compile(failure["reproduction"], "<reproduction>", "exec"), {})
        except AssertionError:
            pass
        else:
            raise AssertionError("the reproduction passed on the broken executor")


def test_a_lost_input_mutation_is_caught(tmp_path: Path) -> None:
    run = _run(tmp_path, "lost_mutation")
    assert run.returncode == 1, run.output[-4000:]
    failures = run.failures("lost_mutation")
    assert {f["operator"] for f in failures} == {"torchexec_kit.scale_add_.default"}
    assert all("input 0 after the call" in f["message"] for f in failures), failures


def test_declared_unsupported_is_skipped(tmp_path: Path) -> None:
    run = _run(tmp_path, "no_scan")
    assert run.returncode == 0, run.output[-4000:]
    tier = run.executor("no_scan")["tiers"]["control_flow"]
    assert tier["unsupported"] >= 2
    assert tier["passed"] + tier["unsupported"] == tier["examples"]


def test_the_kit_operator_mutates_in_place() -> None:
    x = torch.ones(3)
    scale_add_(x, torch.arange(3.0), 2)
    assert torch.equal(x, torch.tensor([1.0, 3.0, 5.0]))
