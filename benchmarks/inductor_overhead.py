"""The inductor executor side by side with the loaded AOTInductor model and with eager PyTorch.

Usage::

    python benchmarks/inductor_overhead.py [--quick] [--json PATH]

For each workload, on one thread (``torch.set_num_threads(1)``), the same AOTInductor package is
called five ways:

* ``runner``: the executor's runner (``executor.prepare(program, options)``), the hot path: it
  checks the inputs against the compiled spec, then calls the package;
* ``prepared``: ``torchexec.prepare(...)`` called as users do (adds the core's input checks);
* ``raw``: the loaded ``AOTICompiledModel`` called directly, ``model(x)``, as the AOTInductor
  documentation shows (it parses its pytree specs on every call);
* ``boxed``: the package's loader called on the flat tensor list, ``model.loader.boxed_run([x])``,
  the lowest call Python can make (what the runner calls after its input checks);
* ``eager``: the workload's eager forward (``model(x)``; ``gm.forward`` for the chain).

The runner gets the package from the disk cache (``$TORCHEXEC_CACHE_DIR``, default
``~/.cache/torchexec``): the first run compiles each workload (10-50 s on 2 cores), later runs
load it. Workloads: ``demo_mlp`` (``torchexec._demo.DemoModel``, input [32, 64]) and
``chain200`` (a 200-node chain of small elementwise operators on 16 elements). Target: runner
<= 1.10x of raw; its cost over ``boxed`` is the input checks.

Each ratio is the median of per-round ratios of alternating rounds, so that load that comes and
goes on the machine hits both sides alike. Results go to the terminal and, with ``--json``, to a
file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program  # noqa: E402
from torchexec._demo import DemoModel  # noqa: E402
from torchexec._timing import time_per_call  # noqa: E402


def compare(
    ways: dict[str, Callable[[], object]], base: str, number: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Median s/call of each way and the median of its per-round ratio to ``base``."""
    for fn in ways.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in ways}
    ratios: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        row = {k: time_per_call(fn, number) for k, fn in ways.items()}
        for k, t in row.items():
            times[k].append(t)
            ratios[k].append(t / row[base])
    return {
        k: {"us_per_call": statistics.median(times[k]) * 1e6, "ratio": statistics.median(ratios[k])}
        for k in ways
    }


def workload(
    program: Any, eager: Callable[[], object], x: torch.Tensor, args: argparse.Namespace
) -> dict[str, Any]:
    """Prepare ``program`` on inductor and time the ways of calling its package."""
    t0 = time.perf_counter()
    prog = torchexec.normalize(program, (x,))
    executor = torchexec.get_executor("inductor")
    runner: Any = executor.prepare(prog, executor.validate_options(None))
    prepare_s = time.perf_counter() - t0
    prepared = torchexec.prepare(prog, x, executor="inductor")
    model = runner.model
    with torch.no_grad():
        diff = float((runner(x)[0] - eager()).abs().max())
    ways: dict[str, Callable[[], object]] = {
        "runner": lambda: runner(x),
        "prepared": lambda: prepared(x),
        "raw": lambda: model(x),
        "boxed": lambda: model.loader.boxed_run([x]),
        "eager": eager,
    }
    with torch.no_grad():
        timings = compare(ways, "raw", args.number, args.rounds)
    return {"prepare_s": prepare_s, "max_abs_diff_vs_eager": diff, **timings}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    p.add_argument("--json", type=Path, default=None, help="where to write JSON")
    args = p.parse_args(argv)
    args.rounds = 3 if args.quick else 15
    args.number = 200 if args.quick else 1000
    torch.set_num_threads(1)
    torch.manual_seed(0)
    results: dict[str, Any] = {
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "threads": torch.get_num_threads(),
        "workloads": {},
    }
    model = DemoModel().eval()
    x = torch.randn(32, 64)
    ep = torch.export.export(model, (x,))
    with torch.no_grad():
        results["workloads"]["demo_mlp"] = workload(ep, lambda: model(x), x, args)
    gm, (cx,) = chain_program(200)
    results["workloads"]["chain200"] = workload(gm, lambda: gm(cx), cx, args)

    print(f"torch {results['torch']}, {results['threads']} thread(s), {results['machine']}")
    header = f"{'workload':<10} {'way':<9} {'us/call':>9} {'vs raw':>7}"
    print(header)
    print("-" * len(header))
    for name, r in results["workloads"].items():
        for way in ("runner", "prepared", "raw", "boxed", "eager"):
            print(f"{name:<10} {way:<9} {r[way]['us_per_call']:>9.1f} {r[way]['ratio']:>6.2f}x")
        print(
            f"{name:<10} prepare {r['prepare_s']:.1f} s (compile or cache load), max abs diff vs "
            f"eager {r['max_abs_diff_vs_eager']:.1e}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
