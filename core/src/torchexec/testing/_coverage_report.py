"""Coverage per (operator, dtype): what the report and the terminal summary show of it.

Each executor's section of the report holds a :class:`CoverageCell` per (catalog operator,
dtype the operator declares): how many calls on that dtype ran on the executor (in the coverage
pass and in generated programs), how many passed, failed, were listed as known failures,
were skipped (the reference or the export refused the call) or were not claimed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CELL_STATUSES", "CoverageCell", "coverage_json", "coverage_lines", "never_exercised"]

CELL_STATUSES = (
    "passed",
    "failed",
    "xfailed",
    "exercised",
    "skipped",
    "not claimed",
    "not exercised",
)
"""A cell's status, in the order of :attr:`CoverageCell.status`'s precedence (but ``failed``
wins over ``passed``)."""

_MARKS = {
    "passed": "ok",
    "failed": "FAIL",
    "xfailed": "xf",
    "exercised": "ran",
    "skipped": "skip",
    "not claimed": "n/c",
    "not exercised": "MISS",
}


@dataclass
class CoverageCell:
    """One (operator, dtype) on one executor.

    Attributes:
        exercised: calls on this dtype the executor ran (coverage cases, and calls inside
            generated programs).
        passed: of those, in a case or program that agreed with the reference.
        failed: coverage cases that disagreed (mismatched or raised).
        xfailed: failures a skips file lists.
        skipped: cases not judged: the reference or the export refused them.
        unsupported: cases the executor does not claim (capabilities or ``supports()``).
        reason: why it was skipped, listed or not claimed (the last reason seen).
    """

    exercised: int = 0
    passed: int = 0
    failed: int = 0
    xfailed: int = 0
    skipped: int = 0
    unsupported: int = 0
    reason: str = ""

    @property
    def status(self) -> str:
        """One of :data:`CELL_STATUSES`."""
        if self.failed:
            return "failed"
        if self.xfailed:
            return "xfailed"
        if self.passed:
            return "passed"
        if self.exercised:
            return "exercised"
        if self.unsupported:
            return "not claimed"
        if self.skipped:
            return "skipped"
        return "not exercised"


Cells = Mapping[tuple[str, str], CoverageCell]


def coverage_json(cells: Cells, declared: Mapping[str, list[str]]) -> dict[str, Any]:
    """``{operator: {dtype: {"status": ..., "exercised": ..., ...}}}`` over the declared pairs."""
    out: dict[str, Any] = {}
    for op, dtypes in declared.items():
        row: dict[str, Any] = {}
        for dtype in dtypes:
            cell = cells.get((op, dtype), CoverageCell())
            data = {k: v for k, v in asdict(cell).items() if v}
            row[dtype] = {"status": cell.status, **data}
        out[op] = row
    return out


def totals(cells: Cells, declared: Mapping[str, list[str]]) -> Counter[str]:
    """How many declared pairs have each status."""
    return Counter(
        cells.get((op, d), CoverageCell()).status for op, dtypes in declared.items() for d in dtypes
    )


def never_exercised(cells: Cells, declared: Mapping[str, list[str]]) -> list[str]:
    """``operator on dtype`` of every declared pair that the executor claims but never ran."""
    return [
        f"{op} on {d}" + (f" ({cells[(op, d)].reason})" if (op, d) in cells else "")
        for op, dtypes in declared.items()
        for d in dtypes
        if cells.get((op, d), CoverageCell()).status in ("not exercised", "skipped")
    ]


def coverage_lines(name: str, cells: Cells, declared: Mapping[str, list[str]]) -> list[str]:
    """The terminal table: one row per operator, one column per dtype."""
    if not declared:
        return []
    count = totals(cells, declared)
    pairs = sum(count.values())
    summary = ", ".join(f"{count[s]} {s}" for s in CELL_STATUSES if count[s])
    lines = [f"coverage {name}: {pairs} (operator, dtype) pairs: {summary}"]
    columns = list(dict.fromkeys(d for dtypes in declared.values() for d in dtypes))
    rows = [["  operator", *columns]]
    for op, dtypes in declared.items():
        marks = [
            _MARKS[cells.get((op, d), CoverageCell()).status] if d in dtypes else "."
            for d in columns
        ]
        rows.append([f"  {op}", *marks])
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) + 1)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    legend = ", ".join(f"{m} {s}" for s, m in _MARKS.items())
    lines.append(f"  ({legend}; . not declared by the catalog)")
    for op, dtypes in declared.items():
        for d in dtypes:
            cell = cells.get((op, d))
            if cell is not None and cell.reason and cell.status != "passed":
                lines.append(f"  {op} on {d}: {cell.status}: {cell.reason}")
    return lines
