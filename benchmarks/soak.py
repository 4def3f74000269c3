"""Soak: many calls per executor on a small program; resident memory, live tensors, cache entries.

Usage::

    python benchmarks/soak.py [--calls 100000] [--executors aten,proxy,torchbind]

For each executor: warm up with 5% of the calls (at least 1000), record resident memory (VmRSS), the number of live
``torch.Tensor`` objects and the cache size, run the calls through ``torchexec.execute``, and record
them again. Growth after warm-up should be under 1% with no growth in live tensors or cache entries.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec

RESULTS = Path(__file__).parent / "results"


def rss_kib() -> int:
    """Resident set size of this process in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some torch module objects warns
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def soak(executor: str, calls: int) -> dict[str, Any]:
    def f(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(a * b + 1.0)
        return h.sum(0), torch.cat([a, h]).amax(1)

    a, b = torch.randn(8, 8), torch.randn(8, 8)
    gm = make_fx(f)(a, b)
    for _ in range(max(1000, calls // 20)):
        torchexec.execute(gm, a, b, executor=executor)
    before = (rss_kib(), live_tensors(), torchexec.cache_info().currsize)
    t0 = time.perf_counter()
    for _ in range(calls):
        torchexec.execute(gm, a, b, executor=executor)
    seconds = time.perf_counter() - t0
    after = (rss_kib(), live_tensors(), torchexec.cache_info().currsize)
    return {
        "executor": executor,
        "calls": calls,
        "us_per_call": seconds / calls * 1e6,
        "rss_kib_before": before[0],
        "rss_kib_after": after[0],
        "rss_growth_pct": (after[0] - before[0]) / before[0] * 100,
        "live_tensors_before": before[1],
        "live_tensors_after": after[1],
        "cache_entries_before": before[2],
        "cache_entries_after": after[2],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--executors", help="comma-separated names (default: every usable executor)")
    p.add_argument("--json", type=Path, default=RESULTS / "soak.json")
    args = p.parse_args(argv)
    usable = [i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")]
    names = args.executors.split(",") if args.executors else usable
    rows = [soak(name, args.calls) for name in names]
    print(
        f"{'executor':<10} {'calls':>8} {'us/call':>8} {'RSS growth':>11} {'live tensors':>13} {'cache':>6}"
    )
    for r in rows:
        print(
            f"{r['executor']:<10} {r['calls']:>8} {r['us_per_call']:>8.1f} "
            f"{r['rss_growth_pct']:>10.2f}% "
            f"{r['live_tensors_before']:>6}->{r['live_tensors_after']:<6} "
            f"{r['cache_entries_before']}->{r['cache_entries_after']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
