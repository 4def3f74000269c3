"""The conformance report: counts per executor and tier, operators covered, failures with code.

``--conformance-report PATH`` writes :meth:`Report.to_json`; the terminal summary prints
:meth:`Report.summary_lines`. The JSON layout::

    {"reference": "aten", "profile": "ci", "seed": "derandomized", "torch": "2.13.0", ...,
     "examples": {"generated": 300, "torchbind": 50},          # programs run on the reference
     "operators": {"aten.add.Tensor": 41, ...},                 # catalog operator -> calls
     "graph_operators": {"aten.add.Tensor": 39, ...},           # after torchexec.normalize
     "opinfo": {"opinfos": 620, "samples": 1180, "traced": 1160, "exported": 1154, ...},
     "opinfo_skipped": {"item::0": "make_fx: ...", ...},      # samples not run, and why
     "executors": {"proxy": {
         "bitwise": true, "distribution": "torchexec-proxy 0.1.0",
         "tiers": {"generated": {"examples": 300, "passed": 300, "mismatched": 0, ...}, ...},
         "opinfo": {"run": 1150, "agreed": 1148, "agreement": 0.998, ...},
         "contract": {"metadata": "passed", ...},
         "failures": [{"id": ..., "operator": ..., "dtype": "int64", "inputs": [...],
                       "max_abs_error": ..., "reproduction": ...}],
         "xfails": [{"id": ..., "reason": ..., "count": 3}],
         "coverage": {"aten.div.Tensor": {"int64": {"status": "passed", "exercised": 9,
                                                    "passed": 9}, ...}, ...},
         "coverage_totals": {"passed": 670, "not claimed": 6}}},
     "coverage_declared": {"aten.div.Tensor": ["float32", ..., "int64"], ...},
     "unmatched_skips": [...],       # skips entries that match no id of the run (typos)
     "unused_skips": [...],          # entries that matched, but nothing they cover failed
     "warnings": [...]}
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torchexec.testing._coverage_report import CoverageCell, coverage_json, coverage_lines, totals

__all__ = ["STATUSES", "ExecutorReport", "Failure", "OpInfoCounts", "Report", "TierCounts"]

STATUSES = ("passed", "mismatched", "raised", "crashed", "unsupported", "xfailed")


@dataclass
class TierCounts:
    """Examples of one tier on one executor, by outcome."""

    examples: int = 0
    passed: int = 0
    mismatched: int = 0
    raised: int = 0
    crashed: int = 0
    unsupported: int = 0
    xfailed: int = 0

    def add(self, status: str) -> None:
        """Count one example with ``status``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.examples += 1
        setattr(self, status, getattr(self, status) + 1)

    @property
    def failed(self) -> int:
        """Mismatched, raised and crashed examples."""
        return self.mismatched + self.raised + self.crashed


@dataclass
class OpInfoCounts:
    """The OpInfo tier for one executor (``agreement`` = agreed / traced samples)."""

    run: int = 0
    agreed: int = 0
    mismatched: int = 0
    raised: int = 0
    unsupported: int = 0
    xfailed: int = 0

    def as_dict(self, traced: int) -> dict[str, Any]:
        """The JSON view; ``traced`` is the number of samples that traced to ATen."""
        data: dict[str, Any] = asdict(self)
        data["agreement"] = round(self.agreed / traced, 4) if traced else None
        return data


@dataclass
class Failure:
    """One failing example, minimised where the tier can minimise."""

    id: str
    executor: str
    tier: str
    status: str
    operator: str | None
    message: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    operators: list[str] = field(default_factory=list)
    seed: str = ""
    reproduction: str = ""
    dtype: str = ""
    inputs: list[str] = field(default_factory=list)


@dataclass
class ExecutorReport:
    """Everything the kit found for one executor."""

    name: str
    bitwise: bool
    distribution: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    tiers: dict[str, TierCounts] = field(default_factory=dict)
    opinfo: OpInfoCounts = field(default_factory=OpInfoCounts)
    contract: dict[str, str] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    xfails: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    coverage: dict[tuple[str, str], CoverageCell] = field(default_factory=dict)

    def cell(self, operator: str, dtype: str) -> CoverageCell:
        """The coverage of ``operator`` on ``dtype`` (created on first use)."""
        return self.coverage.setdefault((operator, dtype), CoverageCell())

    def tier(self, name: str) -> TierCounts:
        """The counts of tier ``name`` (created on first use)."""
        return self.tiers.setdefault(name, TierCounts())


@dataclass
class Report:
    """The whole run (see the module docstring for the JSON layout)."""

    reference: str = "aten"
    profile: str = "quick"
    seed: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    executors: dict[str, ExecutorReport] = field(default_factory=dict)
    examples: Counter[str] = field(default_factory=Counter)
    operators: Counter[str] = field(default_factory=Counter)
    graph_operators: Counter[str] = field(default_factory=Counter)
    catalog: list[str] = field(default_factory=list)
    opinfo: Counter[str] = field(default_factory=Counter)
    opinfo_skipped: dict[str, str] = field(default_factory=dict)
    unmatched_skips: list[dict[str, str]] = field(default_factory=list)
    unused_skips: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    coverage_declared: dict[str, list[str]] = field(default_factory=dict)

    def executor(self, name: str) -> ExecutorReport:
        """The section of executor ``name`` (must have been added)."""
        return self.executors[name]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-friendly data."""
        traced = self.opinfo.get("traced", 0)
        return {
            "reference": self.reference,
            "profile": self.profile,
            "seed": self.seed,
            **self.versions,
            "examples": dict(self.examples),
            "operators": {op: self.operators.get(op, 0) for op in self.catalog}
            | dict(self.operators),
            "graph_operators": dict(sorted(self.graph_operators.items())),
            "opinfo": dict(self.opinfo),
            "opinfo_skipped": dict(self.opinfo_skipped),
            "executors": {
                name: {
                    "bitwise": e.bitwise,
                    "distribution": e.distribution,
                    "capabilities": e.capabilities,
                    "tiers": {t: asdict(c) for t, c in e.tiers.items()},
                    "opinfo": e.opinfo.as_dict(traced),
                    "contract": dict(e.contract),
                    "failures": [asdict(f) for f in e.failures],
                    "xfails": [
                        {"id": i, "reason": r, "source": s, "count": n}
                        for (i, r, s), n in sorted(e.xfails.items())
                    ],
                    "coverage": coverage_json(e.coverage, self.coverage_declared),
                    "coverage_totals": dict(totals(e.coverage, self.coverage_declared)),
                }
                for name, e in self.executors.items()
            },
            "coverage_declared": dict(self.coverage_declared),
            "unmatched_skips": list(self.unmatched_skips),
            "unused_skips": list(self.unused_skips),
            "warnings": list(self.warnings),
        }

    def write(self, path: str | Path) -> None:
        """Write the JSON report to ``path``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")

    # --- terminal ----------------------------------------------------------------------------

    def summary_lines(self, *, width: int = 100, all_operators: bool = True) -> list[str]:
        """The terminal summary: counts table, operators covered, failures with code."""
        lines = [
            f"reference {self.reference}; profile {self.profile}; seed {self.seed}; "
            + ", ".join(f"{k} {v}" for k, v in self.versions.items())
        ]
        rows = [["executor", "tier", "examples", *STATUSES[:-1], "xfailed"]]
        for name, e in self.executors.items():
            for tier, c in e.tiers.items():
                rows.append([name, tier, *(str(getattr(c, k)) for k in ("examples", *STATUSES))])
        if len(rows) > 1:
            lines += _table(rows)
        traced = self.opinfo.get("traced", 0)
        if self.opinfo:
            lines.append("opinfo: " + ", ".join(f"{k} {v}" for k, v in self.opinfo.items()))
            for name, e in self.executors.items():
                d = e.opinfo.as_dict(traced)
                agreement = "n/a" if d["agreement"] is None else f"{100 * d['agreement']:.1f}%"
                lines.append(
                    f"  {name}: run {d['run']}, agreed {d['agreed']} ({agreement} of traced), "
                    f"mismatched {d['mismatched']}, raised {d['raised']}, "
                    f"unsupported {d['unsupported']}, xfailed {d['xfailed']}"
                )
        for name, e in self.executors.items():
            if e.contract:
                bad = {k: v for k, v in e.contract.items() if v not in ("passed", "skipped")}
                status = "all passed" if not bad else f"{len(bad)} failed"
                lines.append(f"contract {name}: {len(e.contract)} checks, {status}")
                lines += [f"  {k}: {v}" for k, v in bad.items()]
        for name, e in self.executors.items():
            lines += coverage_lines(name, e.coverage, self.coverage_declared)
        if self.catalog and self.examples:
            covered = sum(1 for op in self.catalog if self.operators.get(op, 0) > 0)
            programs = ", ".join(f"{k} {v}" for k, v in self.examples.items())
            lines.append(
                f"operators covered: {covered}/{len(self.catalog)} catalog operators "
                f"in {sum(self.examples.values())} programs ({programs})"
            )
            missing = [op for op in self.catalog if self.operators.get(op, 0) == 0]
            if 0 < len(missing) <= 20:
                lines.append("  not exercised: " + ", ".join(missing))
            elif missing:
                lines.append(f"  {len(missing)} not exercised (run more examples: --max-examples)")
            if all_operators and any(self.operators.values()):
                cells = [f"{op} {self.operators.get(op, 0)}" for op in self.catalog]
                lines += _columns(cells, width)
        for e in self.executors.values():
            for f in e.failures:
                err = ""
                if f.max_abs_error is not None:
                    err = f", max abs error {f.max_abs_error:.3g}, max rel error {f.max_rel_error:.3g}"
                on = f" on {f.dtype}" if f.dtype else ""
                lines.append(
                    f"FAILED {f.id} [{f.status}] operator {f.operator or '?'}{on}{err}: {f.message}"
                )
                lines += [f"  input {x}" for x in f.inputs]
                if f.seed:
                    lines.append(f"  seed: {f.seed}")
                if f.reproduction:
                    lines.append("  reproduction:")
                    lines += ["    " + ln for ln in f.reproduction.rstrip().splitlines()]
        for s in self.unmatched_skips:
            lines.append(f"WARNING skips entry matches nothing: {s['id']} ({s['source']})")
        for s in self.unused_skips:
            lines.append(f"note: skips entry never needed (nothing it covers failed): {s['id']}")
        lines += [f"WARNING {w}" for w in self.warnings]
        return lines


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _columns(cells: list[str], width: int) -> list[str]:
    cw = max(len(c) for c in cells) + 2
    per = max(1, width // cw)
    return [
        "  " + "".join(c.ljust(cw) for c in cells[i : i + per]).rstrip()
        for i in range(0, len(cells), per)
    ]
