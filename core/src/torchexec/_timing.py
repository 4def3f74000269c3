"""Side-by-side timing used by ``torchexec demo`` and ``benchmarks/``: noise cancels out."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["side_by_side", "time_per_call"]


def time_per_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def side_by_side(
    candidate: Callable[[], object], baseline: Callable[[], object], number: int, rounds: int
) -> tuple[float, float, float]:
    """``(candidate s/call, baseline s/call, ratio)`` over alternating rounds.

    Each round times ``number`` calls of the candidate, then of the baseline; the ratio is the
    median of the per-round ratios, so that load that comes and goes hits both alike.
    """
    candidate()
    baseline()
    cand, base, ratios = [], [], []
    for _ in range(rounds):
        c = time_per_call(candidate, number)
        b = time_per_call(baseline, number)
        cand.append(c)
        base.append(b)
        ratios.append(c / b)
    return statistics.median(cand), statistics.median(base), statistics.median(ratios)
