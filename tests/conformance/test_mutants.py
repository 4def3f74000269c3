"""The kit measured by mutation: every mutant of ``mutants.py`` (aten with one wrong kernel) must
fail the ``ci`` profile, with a failure naming the wrong operator and the dtype.

One child run checks every mutant (the coverage pass's batches are exported once and run on all
of them); the contract checks run too, for the mutant only a contract check can see.
"""

from __future__ import annotations

from typing import Any

import pytest

import torchexec
from tests.conformance.mutants import MUTANTS, MutantExecutor
from tests.conformance.support import HERE, KitRun, run_kit

ARGS = ["--conformance-profile", "ci", "-k", "coverage or contract", "-q", "-p", "mutants"]


@pytest.fixture(scope="module")
def mutant_run(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    report = tmp_path_factory.mktemp("mutants") / "report.json"
    return run_kit(list(MUTANTS), ARGS, report, python_path=[HERE])


def killed_by(run: KitRun, name: str) -> list[dict[str, Any]]:
    """The failures of mutant ``name`` that name its wrong operator (and dtype, where the bug
    is in one dtype only)."""
    mutant = MUTANTS[name]
    out = []
    for f in run.failures(name):
        if f["tier"] != mutant.tier:
            continue
        if mutant.tier == "contract":
            if f["id"] == f"{name}::contract::{mutant.operator}":
                out.append(f)
        elif f["operator"] == mutant.operator and f["dtype"] and mutant.dtype in (None, f["dtype"]):
            out.append(f)
    return out


def test_the_run_fails(mutant_run: KitRun) -> None:
    assert mutant_run.returncode == 1, mutant_run.output[-4000:]
    assert set(mutant_run.report["executors"]) == set(MUTANTS)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_killed_naming_operator_and_dtype(mutant_run: KitRun, name: str) -> None:
    assert killed_by(mutant_run, name), [
        (f["id"], f["message"][:200]) for f in mutant_run.failures(name)
    ]


@pytest.mark.parametrize("name", [n for n, m in MUTANTS.items() if m.tier == "coverage"])
def test_only_the_wrong_operator_fails(mutant_run: KitRun, name: str) -> None:
    failing = {f["operator"] for f in mutant_run.failures(name) if f["tier"] == "coverage"}
    assert failing == {MUTANTS[name].operator}


def test_kill_rate_is_complete(mutant_run: KitRun) -> None:
    killed = [name for name in MUTANTS if killed_by(mutant_run, name)]
    assert len(killed) == len(MUTANTS), sorted(set(MUTANTS) - set(killed))


def test_int_true_division_failure_names_dtype_and_values(mutant_run: KitRun) -> None:
    [failure] = killed_by(mutant_run, "int_true_div")
    assert failure["id"] == "int_true_div::coverage::aten.div.Tensor::int64"
    assert failure["status"] == "mismatched"
    inputs = failure["inputs"]
    assert len(inputs) == 2 and all(x.startswith(f"x{i}: int64[") for i, x in enumerate(inputs))
    assert "= [" in inputs[0]
    code = failure["reproduction"]
    assert "aten.div.Tensor on int64 (contiguous): mismatched" in code
    assert "torch.ops.aten.div.Tensor(x0, x1)" in code
    assert "dtype=torch.int64" in code
    assert (
        "FAILED int_true_div::coverage::aten.div.Tensor::int64 [mismatched] operator "
        "aten.div.Tensor on int64" in mutant_run.output
    )
    with (
        torchexec.register_executor(MutantExecutor("int_true_div")),
        pytest.raises(AssertionError),
    ):
        exec(compile(code, "<reproduction>", "exec"), {"__name__": "reproduction"})


def test_view_layout_failure_says_what_differs(mutant_run: KitRun) -> None:
    messages = [str(f["message"]) for f in killed_by(mutant_run, "copy_view")]
    assert any("the reference returns a view of its input" in m for m in messages), messages


def test_coverage_table_marks_failed_cells(mutant_run: KitRun) -> None:
    cells = mutant_run.executor("int_true_div")["coverage"]
    assert cells["aten.div.Tensor"]["int64"]["status"] == "failed"
    assert cells["aten.div.Tensor"]["float32"]["status"] == "passed"
    assert mutant_run.executor("int_true_div")["coverage_totals"]["failed"] == 1
    assert "coverage int_true_div: " in mutant_run.output
