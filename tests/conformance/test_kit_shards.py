"""The kit sharded over processes with pytest-xdist (``-n 2``) writes the report a serial run
writes: same counts, same xfails, same skips-file warnings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conformance.support import HERE, run_kit
from torchexec.testing._shards import merge_report, report_from_json
from torchexec.testing.report import ExecutorReport, Failure, Report

ARGS = [
    "-p", "broken_executors", "--conformance-profile", "ci", "--max-examples", "20",
    "--opinfo-samples", "1", "-k", "contract or generated or (opinfo and (add or mul or sum))",
]  # fmt: skip
SKIPS = (
    "perturb_mul::contract   products are off by one on purpose\n"
    "perturb_mul::opinfo   products are off by one on purpose\n"
    "proxy::generated::aten.no_such_op   a typo: matches nothing\n"
)


def test_sharded_report_matches_serial(tmp_path: Path) -> None:
    skips = tmp_path / "skips.txt"
    skips.write_text(SKIPS)
    reports = {}
    for label, extra in (("serial", []), ("sharded", ["-n", "2"])):
        folder = tmp_path / label
        folder.mkdir()
        run = run_kit(
            ["proxy", "perturb_mul"],
            [*ARGS, "--conformance-skips", str(skips), *extra],
            folder / "report.json",
            python_path=[HERE],
        )
        assert run.returncode == 0, run.output[-4000:]
        reports[label] = run.report
    serial, sharded = reports["serial"], reports["sharded"]
    assert sharded == serial
    # the run was real: every tier ran, perturb_mul's wrong products were excused, and the
    # skips file's typo was found by the controller from the workers' ids
    tiers = serial["executors"]["proxy"]["tiers"]
    assert tiers["generated"]["passed"] == 20
    assert serial["executors"]["proxy"]["opinfo"]["agreed"] > 0
    assert len(serial["executors"]["proxy"]["contract"]) >= 7
    xfails = {x["id"]: x["count"] for x in serial["executors"]["perturb_mul"]["xfails"]}
    assert xfails["perturb_mul::opinfo"] >= 2
    assert "xfailed" in serial["executors"]["perturb_mul"]["contract"]["repeat"]
    unmatched = [s["id"] for s in serial["unmatched_skips"]]
    assert unmatched == ["proxy::generated::aten.no_such_op"]


def _part(examples: int, failure: str | None, xfail: int) -> Report:
    report = Report(seed="derandomized", catalog=["aten.add.Tensor", "aten.mul.Tensor"])
    report.versions = {"torch": "2.13.0"}
    report.examples["generated"] = examples
    report.operators.update({"aten.add.Tensor": examples})
    section = ExecutorReport(name="x", bitwise=True)
    for _ in range(examples):
        section.tier("generated").add("passed")
    section.opinfo.run = section.opinfo.agreed = examples
    section.contract["metadata"] = "passed"
    if failure is not None:
        section.tier("generated").add("mismatched")
        section.failures.append(Failure(failure, "x", "generated", "mismatched", None, "m"))
    section.xfails[("x::opinfo::mul", "known", "skips.txt")] = xfail
    report.executors["x"] = section
    report.opinfo.update({"samples": examples, "traced": examples, "run": examples})
    return report


def test_merge_adds_every_count() -> None:
    whole = report_from_json(_part(3, "x::generated::a", 2).to_json())
    merge_report(whole, report_from_json(_part(4, "x::generated::b", 1).to_json()))
    data = whole.to_json()
    assert data["examples"] == {"generated": 7}
    assert data["operators"] == {"aten.add.Tensor": 7, "aten.mul.Tensor": 0}
    assert data["opinfo"] == {"samples": 7, "traced": 7, "run": 7}
    x = data["executors"]["x"]
    assert x["tiers"]["generated"]["examples"] == 9
    assert x["tiers"]["generated"]["passed"] == 7
    assert x["tiers"]["generated"]["mismatched"] == 2
    assert x["opinfo"]["agreed"] == 7
    assert x["opinfo"]["agreement"] == 1.0
    assert [f["id"] for f in x["failures"]] == ["x::generated::a", "x::generated::b"]
    assert x["xfails"] == [
        {"id": "x::opinfo::mul", "reason": "known", "source": "skips.txt", "count": 3}
    ]
    assert data["torch"] == "2.13.0"


def test_report_survives_its_json() -> None:
    report = _part(2, "x::generated::a", 1)
    again = report_from_json(report.to_json())
    assert again.to_json() == report.to_json()
    assert again.executors["x"].xfails == Counter({("x::opinfo::mul", "known", "skips.txt"): 1})
