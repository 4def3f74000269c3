"""The kit fails a wrong executor and names the operator (deliberately broken executors from
``broken_executors.py``, registered in a child pytest run with ``-p broken_executors``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

import torchexec
from tests.conformance.broken_executors import BrokenExecutor
from tests.conformance.support import HERE, KitRun, run_kit
from torchexec.testing import main

CI = ["--conformance-profile", "quick", "--hypothesis-seed", "1", "--max-examples", "40"]


def _run(tmp_path: Path, executor: str, *args: str) -> KitRun:
    return run_kit(
        [executor], ["-p", "broken_executors", *args], tmp_path / "report.json", python_path=[HERE]
    )


def _reproduces(code: str, executor: str) -> None:
    """The failure's reproduction script fails when the broken executor is installed."""
    with torchexec.register_executor(BrokenExecutor(executor)), pytest.raises(AssertionError):
        exec(compile(code, "<reproduction>", "exec"), {"__name__": "reproduction"})


@pytest.mark.parametrize(
    ("executor", "operator"),
    [("perturb_mul", "aten.mul.Tensor"), ("drop_neg", "aten.neg.default")],
)
def test_generated_tier_names_the_operator(tmp_path: Path, executor: str, operator: str) -> None:
    run = _run(tmp_path, executor, *CI, "-k", "generated")
    assert run.returncode == 1, run.output[-4000:]
    failures = run.failures(executor)
    assert [f["operator"] for f in failures] == [operator]
    failure = failures[0]
    assert failure["status"] == "mismatched"
    assert failure["id"] == f"{executor}::generated::{operator}"
    assert failure["seed"].startswith("1 (rerun with --hypothesis-seed=1)")
    assert f"torch.ops.{operator}(" in failure["reproduction"]
    # minimised: the one failing call, its arguments given as inputs
    assert failure["operators"] == [operator]
    assert (
        f"FAILED {executor}::generated::{operator} [mismatched] operator {operator}" in run.output
    )
    assert "seed: 1 (rerun with --hypothesis-seed=1)" in run.output
    assert "minimal reproduction (1 of " in run.output
    tier = run.executor(executor)["tiers"]["generated"]
    assert tier["mismatched"] >= 1
    if executor == "perturb_mul":  # products are off by exactly 1 (bool outputs measure 0)
        assert failure["max_abs_error"] in (0.0, 1.0)
    else:  # -x became x
        assert failure["max_abs_error"] > 0
    _reproduces(failure["reproduction"], executor)


def test_opinfo_tier_names_the_opinfo(tmp_path: Path) -> None:
    run = _run(tmp_path, "perturb_mul", "--opinfo-samples", "1", "-k", "test_opinfo and mul")
    assert run.returncode == 1, run.output[-4000:]
    ids = [f["id"] for f in run.failures("perturb_mul") if f["tier"] == "opinfo"]
    assert "perturb_mul::opinfo::mul::0" in ids
    failure = next(
        f for f in run.failures("perturb_mul") if f["id"] == "perturb_mul::opinfo::mul::0"
    )
    assert failure["operator"] == "mul"
    assert "aten.mul.Tensor" in failure["operators"]
    assert 'sample_program("mul", 0)' in failure["reproduction"]
    _reproduces(failure["reproduction"], "perturb_mul")
    assert run.executor("perturb_mul")["opinfo"]["mismatched"] >= 1


def test_skips_file_turns_failures_into_xfails(tmp_path: Path) -> None:
    skips = tmp_path / "skips.txt"
    skips.write_text(
        "# known bugs\n"
        "perturb_mul::generated::aten.mul   products are off by one on purpose\n"
        "perturb_mul::generated::aten.no_such_op   a typo: matches nothing\n"
        "perturb_mul::generated::aten.neg   negation is fine: nothing to excuse\n"
        "nonexistent_executor::generated   names no installed executor\n"
    )
    run = _run(tmp_path, "perturb_mul", *CI, "-k", "generated", "--conformance-skips", str(skips))
    assert run.returncode == 0, run.output[-4000:]
    tier = run.executor("perturb_mul")["tiers"]["generated"]
    assert tier["xfailed"] >= 1
    assert tier["mismatched"] == 0
    [xfail] = run.executor("perturb_mul")["xfails"]
    assert xfail["id"] == "perturb_mul::generated::aten.mul"
    assert xfail["count"] == tier["xfailed"]
    unmatched = {s["id"]: s["why"] for s in run.report["unmatched_skips"]}
    assert set(unmatched) == {
        "perturb_mul::generated::aten.no_such_op",
        "nonexistent_executor::generated",
    }
    assert (
        "no executor named 'nonexistent_executor'" in unmatched["nonexistent_executor::generated"]
    )
    assert (
        "WARNING skips entry matches nothing: perturb_mul::generated::aten.no_such_op" in run.output
    )


def test_declared_unsupported_operator_is_not_a_failure(tmp_path: Path) -> None:
    run = _run(tmp_path, "perturb_mul_declared", *CI, "-k", "generated")
    assert run.returncode == 0, run.output[-4000:]
    tier = run.executor("perturb_mul_declared")["tiers"]["generated"]
    assert tier["unsupported"] >= 1
    assert tier["mismatched"] == 0
    assert tier["passed"] + tier["unsupported"] == tier["examples"]


def test_contract_failure_is_named(tmp_path: Path) -> None:
    run = _run(tmp_path, "loose_options", "-k", "contract")
    assert run.returncode == 1
    contract = run.executor("loose_options")["contract"]
    assert "InvalidOptionsError" in contract["options"]
    assert contract["metadata"] == "passed"
    assert [f["id"] for f in run.failures("loose_options")] == ["loose_options::contract::options"]
    assert "test_contract[loose_options-options]" in run.output


def test_crash_is_recorded_by_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    code = main(
        ["abort_neg"],
        [
            "-p",
            "broken_executors",
            *CI,
            "-k",
            "generated",
            "-q",
            "--conformance-report",
            str(report),
        ],
    )
    assert code == 128 + signal.SIGABRT
    import json

    data = json.loads(report.read_text())
    crash = data["crashed"]
    assert crash["executor"] == "abort_neg"
    assert crash["status"] == "crashed"
    assert "aten.neg.default" in crash["operators"]
    assert "torch.ops.aten.neg.default(" in crash["reproduction"]
    assert data["executors"]["abort_neg"]["failures"] == [crash]
    assert not report.with_suffix(".journal").exists()


def test_unknown_executor_is_a_usage_error(tmp_path: Path) -> None:
    run = run_kit(["atn"], [], tmp_path / "report.json")
    assert run.returncode == 4
    assert "--executor atn: no such executor. Did you mean 'aten'?" in run.output


def test_kit_needs_an_executor(tmp_path: Path) -> None:
    run = run_kit([], [], tmp_path / "report.json")
    assert run.returncode == 4
    assert "needs --executor NAME" in run.output


def test_reference_is_deterministic_for_generated_inputs() -> None:
    # The comparisons are bit for bit: the kit's inputs must be the same every time.
    from torchexec.testing import InputSpec, make_input

    spec = InputSpec((3, 4), torch.float16, "transposed", seed=7, specials=True)
    a, b = make_input(spec), make_input(spec)
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(a.nan_to_num(), b.nan_to_num())
    assert a.stride() == b.stride() == (1, 3)
