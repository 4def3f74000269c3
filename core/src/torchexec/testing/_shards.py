"""Sharding the kit over processes with pytest-xdist: each worker sends its part, the controller
merges.

``pytest -n 2 --pyargs torchexec.testing --executor NAME`` runs the kit's tests on two worker
processes. Every worker builds its own :class:`~torchexec.testing._kit.Kit` and runs a share of
the tests; at the end of its session it puts :func:`shard_state` into ``workeroutput`` (only
JSON types travel over xdist's channel). The controller, which runs no test, folds each
worker's state into its own kit with :func:`merge_shard` when the worker goes down, then checks
the skips files and writes one report, exactly as a serial run does. Counts add up, so a
derandomized run gives the same counts on any number of workers.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from torchexec.testing._coverage_report import CoverageCell
from torchexec.testing.report import (
    ExecutorReport,
    Failure,
    OpInfoCounts,
    Report,
    TierCounts,
)

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["WORKEROUTPUT_KEY", "merge_report", "merge_shard", "report_from_json", "shard_state"]

WORKEROUTPUT_KEY = "torchexec_kit"
"""The key of a worker's state in xdist's ``workeroutput``."""

_CELL_COUNTS = ("exercised", "passed", "failed", "xfailed", "skipped", "unsupported")
_OPINFO_FIELDS = ("run", "agreed", "mismatched", "raised", "unsupported", "xfailed")


def shard_state(kit: Kit) -> dict[str, Any]:
    """What one worker found: its report, the skips entries it used (by position: every process
    loads the same files), the ids it could have produced, and the tiers it ran."""
    return {
        # through JSON: xdist's channel takes plain types only (not TorchVersion, a str subclass)
        "report": json.loads(json.dumps(kit.report.to_json())),
        "used_skips": [i for i, e in enumerate(kit.skips.entries) if e in kit.skips.used],
        "known_ids": sorted(kit.known_ids),
        "tiers_run": sorted(kit.tiers_run),
    }


def merge_shard(kit: Kit, state: dict[str, Any]) -> None:
    """Fold one worker's :func:`shard_state` into the controller's ``kit``."""
    merge_report(kit.report, report_from_json(state["report"]))
    for index in state["used_skips"]:
        kit.skips.mark_used(kit.skips.entries[index])
    kit.known_ids.update(state["known_ids"])
    kit.tiers_run.update(state["tiers_run"])


def report_from_json(data: dict[str, Any]) -> Report:
    """The :class:`Report` that :meth:`Report.to_json` wrote as ``data``."""
    known = {"reference", "profile", "seed", "examples", "operators", "graph_operators"}
    known |= {"opinfo", "opinfo_skipped", "executors", "unmatched_skips", "unused_skips"}
    known |= {"warnings", "coverage_declared"}
    report = Report(
        reference=data["reference"],
        profile=data["profile"],
        seed=data["seed"],
        versions={k: v for k, v in data.items() if k not in known},
        examples=Counter(data["examples"]),
        operators=Counter({k: v for k, v in data["operators"].items() if v}),
        graph_operators=Counter(data["graph_operators"]),
        catalog=list(data["operators"]),
        opinfo=Counter(data["opinfo"]),
        opinfo_skipped=dict(data["opinfo_skipped"]),
        unmatched_skips=list(data["unmatched_skips"]),
        unused_skips=list(data["unused_skips"]),
        warnings=list(data["warnings"]),
        coverage_declared={op: list(d) for op, d in data.get("coverage_declared", {}).items()},
    )
    for name, section in data["executors"].items():
        report.executors[name] = ExecutorReport(
            name=name,
            bitwise=section["bitwise"],
            distribution=section["distribution"],
            capabilities=dict(section["capabilities"]),
            tiers={t: TierCounts(**c) for t, c in section["tiers"].items()},
            opinfo=OpInfoCounts(**{k: section["opinfo"][k] for k in _OPINFO_FIELDS}),
            contract=dict(section["contract"]),
            failures=[Failure(**f) for f in section["failures"]],
            xfails=Counter(
                {(x["id"], x["reason"], x["source"]): x["count"] for x in section["xfails"]}
            ),
            coverage={
                (op, dtype): CoverageCell(**{k: v for k, v in cell.items() if k != "status"})
                for op, row in section.get("coverage", {}).items()
                for dtype, cell in row.items()
            },
        )
    return report


def merge_report(into: Report, part: Report) -> None:
    """Add ``part``'s counts, operators, failures and warnings to ``into`` (same run, another
    share of its tests). Executors are the same in both; the catalog is kept from ``into``."""
    into.examples.update(part.examples)
    into.operators.update(part.operators)
    into.graph_operators.update(part.graph_operators)
    into.opinfo.update(part.opinfo)
    into.opinfo_skipped.update(part.opinfo_skipped)
    into.warnings += part.warnings
    into.coverage_declared = into.coverage_declared or part.coverage_declared
    for name, src in part.executors.items():
        dst = into.executors.setdefault(name, src)
        if dst is src:
            continue
        for tier, counts in src.tiers.items():
            total = dst.tier(tier)
            for key, value in vars(counts).items():
                setattr(total, key, getattr(total, key) + value)
        for key in _OPINFO_FIELDS:
            setattr(dst.opinfo, key, getattr(dst.opinfo, key) + getattr(src.opinfo, key))
        dst.contract.update(src.contract)
        dst.failures += src.failures
        dst.xfails.update(src.xfails)
        for pair, cell in src.coverage.items():
            merged = dst.cell(*pair)
            for count in _CELL_COUNTS:
                setattr(merged, count, getattr(merged, count) + getattr(cell, count))
            merged.reason = cell.reason or merged.reason
