"""Side-by-side benchmarks: every installed executor against eager ``gm.forward`` in one process.

Usage::

    python benchmarks/run.py [--quick] [--executors aten,proxy] [--json benchmarks/results/run.json]

Workloads:

* ``chain2000``: a 2000-node chain of small elementwise ops (overhead-bound); reports us/node.
* ``large``: a few matmuls and elementwise ops on 1024x1024 tensors (compute-bound).
* ``cache_hit``: what ``torchexec.execute`` adds to a prepared runner's call, 8 tensor arguments.
* ``import``: ``import torchexec`` on top of ``import torch``, in fresh interpreters.

Timings alternate between the executor and the eager baseline in rounds, and the ratio is the
median of per-round ratios, so that machine noise cancels out.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.fx.experimental.proxy_tensor import make_fx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program, large_program  # noqa: E402
from torchexec._timing import side_by_side  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _usable_executors(only: list[str] | None) -> list[str]:
    names = [i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")]
    return [n for n in names if only is None or n in only]


def bench_program(
    name: str,
    gm: torch.fx.GraphModule,
    args: tuple[Any, ...],
    executors: list[str],
    number: int,
    rounds: int,
    per: int = 1,
) -> list[dict[str, Any]]:
    program = torchexec.normalize(gm, args)
    rows = []
    for ex in executors:
        run = torchexec.prepare(program, *args, executor=ex)
        c, b, r = side_by_side(
            functools.partial(run, *args), functools.partial(gm, *args), number, rounds
        )
        rows.append(
            {
                "workload": name,
                "executor": ex,
                "us_per_call": c * 1e6,
                "eager_us_per_call": b * 1e6,
                "us_per_node": c * 1e6 / per,
                "eager_us_per_node": b * 1e6 / per,
                "ratio": r,
            }
        )
    return rows


def bench_cache_hit(number: int, rounds: int) -> dict[str, Any]:
    args = tuple(torch.randn(2) for _ in range(8))
    gm = make_fx(lambda *xs: xs[0] + xs[7])(*args)
    torchexec.execute(gm, *args)
    runner = torchexec.prepare(gm, *args).runner
    c, b, _ = side_by_side(
        lambda: torchexec.execute(gm, *args), lambda: runner(*args), number, rounds
    )
    return {
        "workload": "cache_hit",
        "executor": "aten",
        "execute_us": c * 1e6,
        "runner_us": b * 1e6,
        "overhead_us": (c - b) * 1e6,
    }


def bench_import(repeat: int) -> dict[str, Any]:
    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    torch_s = statistics.median(run("import torch") for _ in range(repeat))
    both_s = statistics.median(run("import torch, torchexec") for _ in range(repeat))
    return {
        "workload": "import",
        "import_torch_s": torch_s,
        "import_torchexec_extra_ms": (both_s - torch_s) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    p.add_argument("--executors", help="comma-separated executor names (default: all usable)")
    p.add_argument("--json", type=Path, default=RESULTS / "run.json", help="where to write JSON")
    args = p.parse_args(argv)
    rounds = 3 if args.quick else 7
    only = args.executors.split(",") if args.executors else None
    executors = _usable_executors(only)
    torch.set_num_threads(1)

    results: list[dict[str, Any]] = []
    chain, chain_args = chain_program()
    number = 5 if args.quick else 20
    results += bench_program("chain2000", chain, chain_args, executors, number, rounds, per=2000)
    large, large_args = large_program()
    number = 2 if args.quick else 5
    results += bench_program("large", large, large_args, executors, number, rounds)
    results.append(bench_cache_hit(2000 if args.quick else 20000, rounds))
    results.append(bench_import(2 if args.quick else 5))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'workload':<10} {'executor':<10} {'us/call':>10} {'eager us/call':>14} {'ratio':>7}")
    for r in results:
        if "ratio" in r:
            extra = (
                f"   ({r['us_per_node']:.2f} vs {r['eager_us_per_node']:.2f} us/node)"
                if r["workload"] == "chain2000"
                else ""
            )
            print(
                f"{r['workload']:<10} {r['executor']:<10} {r['us_per_call']:>10.1f} "
                f"{r['eager_us_per_call']:>14.1f} {r['ratio']:>6.2f}x{extra}"
            )
    hit = next(r for r in results if r["workload"] == "cache_hit")
    print(
        f"execute() cache hit, 8 tensors: +{hit['overhead_us']:.1f} us over the runner "
        f"({hit['execute_us']:.1f} vs {hit['runner_us']:.1f} us)"
    )
    imp = next(r for r in results if r["workload"] == "import")
    print(f"import torchexec: +{imp['import_torchexec_extra_ms']:.0f} ms over import torch")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "results": results}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
