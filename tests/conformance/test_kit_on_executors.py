"""The conformance kit on our executors (aten, proxy, torchbind: those installed), CI profile.

One child run checks every installed executor (each generated program is exported once and run
on all of them); the tests below read its JSON report. Known failures are listed with their
reasons in ``xfails.txt``.
"""

from __future__ import annotations

import pytest

from tests.conformance.support import XFAILS, KitRun, installed_executors, run_kit
from torchexec.testing.catalog import CATALOG
from torchexec.testing.contract import CHECKS
from torchexec.testing.skips import SkipList

EXECUTORS = installed_executors()
LISTED = {(e.prefix, e.reason) for e in SkipList.load([XFAILS]).entries}
"""``(id prefix, reason)`` of every known failure: ``xfails.txt`` and the kit's shipped list."""


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    """The kit on every installed executor of ours, CI profile."""
    report = tmp_path_factory.mktemp("conformance") / "report.json"
    # The OpInfo tier on float32 only: one sample of every other dtype (the ci default) adds
    # about 5,600 samples and over 15 minutes on two cores; the coverage pass covers every
    # catalog operator on every dtype.
    args = ["--conformance-profile", "ci", "--opinfo-dtype-samples", "0"]
    args += ["--conformance-skips", str(XFAILS), "-q"]
    return run_kit(EXECUTORS, args, report)


def test_run_passes(ci_run: KitRun) -> None:
    assert ci_run.returncode == 0, ci_run.output[-8000:]
    assert "torchexec conformance" in ci_run.output
    assert set(ci_run.report["executors"]) == set(EXECUTORS)


def _listed_xfails(ci_run: KitRun, name: str, tier: str) -> int:
    """How many of ``name``'s examples in ``tier`` failed as a listed entry says they would;
    fails if the report counts an xfail no list has."""
    xfails = ci_run.executor(name)["xfails"]
    assert [x for x in xfails if (x["id"], x["reason"]) not in LISTED] == []
    return sum(x["count"] for x in xfails if x["id"].split("::")[1] == tier)


def _assert_all_accounted(ci_run: KitRun, name: str, tier: str) -> None:
    """Every example of ``tier`` passed, except the listed known failures: our executors
    declare nothing unsupported, so nothing is skipped as unsupported either."""
    counts = ci_run.executor(name)["tiers"][tier]
    assert counts["mismatched"] == counts["raised"] == counts["crashed"] == 0, counts
    assert counts["unsupported"] == 0, counts
    assert counts["xfailed"] == _listed_xfails(ci_run, name, tier)
    assert counts["passed"] == counts["examples"] - counts["xfailed"], counts


@pytest.mark.parametrize("name", EXECUTORS)
def test_generated_programs_agree(ci_run: KitRun, name: str) -> None:
    assert ci_run.executor(name)["tiers"]["generated"]["examples"] >= 300
    _assert_all_accounted(ci_run, name, "generated")


@pytest.mark.parametrize("name", EXECUTORS)
def test_coverage_pass_agrees(ci_run: KitRun, name: str) -> None:
    """Every catalog operator on every dtype it declares, four variants, passed."""
    assert ci_run.executor(name)["tiers"]["coverage"]["examples"] >= 2500
    _assert_all_accounted(ci_run, name, "coverage")
    totals = ci_run.executor(name)["coverage_totals"]
    assert set(totals) == {"passed"}, totals
    assert totals["passed"] == sum(map(len, ci_run.report["coverage_declared"].values())) >= 650


@pytest.mark.parametrize("name", EXECUTORS)
def test_torchbind_programs_agree(ci_run: KitRun, name: str) -> None:
    pytest.importorskip("torchexec_torchbind", reason="torchexec-torchbind is not installed")
    assert ci_run.executor(name)["tiers"]["torchbind"]["examples"] >= 30
    _assert_all_accounted(ci_run, name, "torchbind")
    calls = ci_run.report["operators"]
    for op in ("Scale.apply", "Scale.get_weight", "Accumulator.add", "scale_add.default"):
        assert calls[f"torchexec_testing.{op}"] > 0, op


@pytest.mark.parametrize("name", EXECUTORS)
def test_control_flow_programs_agree(ci_run: KitRun, name: str) -> None:
    """cond, while_loop, map and scan run everywhere; the functionalized custom operator runs on
    aten and proxy and is declared unsupported by torchbind's engine."""
    counts = ci_run.executor(name)["tiers"]["control_flow"]
    assert counts["examples"] >= 40
    assert counts["mismatched"] == counts["raised"] == counts["crashed"] == 0, counts
    functionalized = ci_run.report["graph_operators"]["higher_order.auto_functionalized_v2"]
    assert functionalized >= 1
    if name == "torchbind":
        assert 1 <= counts["unsupported"] <= functionalized, counts
    else:
        assert counts["unsupported"] == 0, counts
    assert counts["passed"] + counts["unsupported"] == counts["examples"], counts


@pytest.mark.parametrize("name", EXECUTORS)
def test_contract(ci_run: KitRun, name: str) -> None:
    contract = ci_run.executor(name)["contract"]
    assert set(contract) == set(CHECKS)
    for check, result in contract.items():
        assert result == "passed" or result.startswith("xfailed: "), (check, result)


@pytest.mark.parametrize("name", EXECUTORS)
def test_opinfo_tier_agrees(ci_run: KitRun, name: str) -> None:
    totals = ci_run.report["opinfo"]
    assert totals["opinfos"] >= 600
    assert totals["traced"] >= 0.95 * totals["samples"]
    tier = ci_run.executor(name)["opinfo"]
    assert tier["mismatched"] == tier["raised"] == tier["unsupported"] == 0, tier
    assert tier["xfailed"] == _listed_xfails(ci_run, name, "opinfo")
    assert tier["agreed"] == tier["run"] - tier["xfailed"], tier
    assert tier["agreement"] >= 0.95, tier  # of the traced samples, most export and run


def test_every_catalog_operator_exercised(ci_run: KitRun) -> None:
    calls = ci_run.report["operators"]
    missing = [op.name for op in CATALOG if calls.get(op.name, 0) == 0]
    assert missing == []
    assert sum(calls[op.name] for op in CATALOG) >= 10 * len(CATALOG)


def test_xfails_file_is_current(ci_run: KitRun) -> None:
    ours = (*EXECUTORS, "*")
    stale = [s for s in ci_run.report["unmatched_skips"] if s["id"].split("::", 1)[0] in ours]
    assert stale == []
    assert ci_run.report["unused_skips"] == []
