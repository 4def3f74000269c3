"""The torchbind engine side by side with ``gm.forward`` in one process.

Usage::

    python benchmarks/torchbind_engine.py [--quick] [--device cpu|cuda] [--json PATH]

Measures, for the ``torchbind`` executor's C++ engine:

* ``chain2000``: a 2000-node chain of small elementwise ops (16 elements): per-node run time of
  ``engine.run`` and of the prepared program, as a ratio of ``gm.forward`` (target <= 0.45x on CPU,
  <= 1.0x on CUDA), with TorchScript's interpreter on the same graph for reference;
* ``large``: matmuls and elementwise ops on 1024x1024 tensors (target <= 1.02x);
* peak memory of the large graph and of a chain of large elementwise ops, engine vs
  ``gm.forward`` (CPU: from the profiler's allocation events; CUDA: ``max_memory_allocated``);
* how long ``torchexec.prepare`` takes for the 2000-node chain, and how much of it is building
  (decoding, validating, compiling) the engine from its encoded plan.

Timings alternate between the candidate and ``gm.forward`` in rounds; a ratio is the median of
the per-round ratios, so that machine noise cancels out. Results go to the terminal and to
``benchmarks/results/torchbind_engine.json``.
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
from typing import Any, cast

import torch
from torch.fx.experimental.proxy_tensor import make_fx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program, large_program, peak_bytes  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def big_chain_program(device: torch.device) -> tuple[Any, torch.Tensor]:
    """Twelve elementwise nodes on a 4 MiB tensor: peak memory is all intermediates."""

    def f(x: torch.Tensor) -> torch.Tensor:
        for _ in range(4):
            x = torch.sin(x) * 1.5 + 0.5
        return x

    x = torch.randn(1 << 20, device=device)
    return make_fx(f)(x), x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], number: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / number


def side_by_side(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    number: int,
    rounds: int,
    device: torch.device,
) -> dict[str, float]:
    """Median seconds per call of each, and the median of per-round ratios."""
    for _ in range(2):
        candidate()
        baseline()
    cand, base, ratios = [], [], []
    for _ in range(rounds):
        c = _time(candidate, number, device)
        b = _time(baseline, number, device)
        cand.append(c)
        base.append(b)
        ratios.append(c / b)
    return {
        "s_per_call": statistics.median(cand),
        "eager_s_per_call": statistics.median(base),
        "ratio": statistics.median(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--json", type=Path, default=None, help="where to write JSON")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    rounds = 3 if args.quick else 9
    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "torch": torch.__version__,
        "device": str(device)
        if device.type == "cpu"
        else f"cuda ({torch.cuda.get_device_name(device)})",
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }

    gm, (x,) = chain_program(device=device)
    nodes = sum(1 for n in gm.graph.nodes if n.op == "call_function")
    t0 = time.perf_counter()
    run = torchexec.prepare(gm, x, executor="torchbind")
    results["chain_prepare_s"] = time.perf_counter() - t0
    engine = cast(Any, run.runner).engine
    from torchexec_torchbind import engine_from_plan_state

    plan_state = engine.plan()
    t0 = time.perf_counter()
    engine_from_plan_state(plan_state)
    results["chain_engine_build_s"] = time.perf_counter() - t0
    number = 10 if args.quick else 40
    eng = side_by_side(lambda: engine.run([x]), lambda: gm(x), number, rounds, device)
    prep = side_by_side(lambda: run(x), lambda: gm(x), number, rounds, device)
    ts = {"s_per_call": float("nan"), "ratio": float("nan")}
    if device.type == "cpu":
        # TorchScript is the CPU reference point only: on CUDA its profiling executor spends
        # minutes trying to fuse a 2000-node graph before it settles.
        scripted = torch.jit.trace(gm, (x,))  # type: ignore[no-untyped-call]
        ts = side_by_side(lambda: scripted(x), lambda: gm(x), number, rounds, device)
    results["chain2000"] = {
        "nodes": nodes,
        "engine_us_per_node": eng["s_per_call"] * 1e6 / nodes,
        "prepared_us_per_node": prep["s_per_call"] * 1e6 / nodes,
        "torchscript_us_per_node": ts["s_per_call"] * 1e6 / nodes,
        "eager_us_per_node": eng["eager_s_per_call"] * 1e6 / nodes,
        "engine_ratio": eng["ratio"],
        "prepared_ratio": prep["ratio"],
        "torchscript_ratio": ts["ratio"],
    }

    large, largs = large_program(device)
    lrun = torchexec.prepare(large, *largs, executor="torchbind")
    number = 2 if args.quick else 5
    lg = side_by_side(lambda: lrun(*largs), lambda: large(*largs), number, rounds, device)
    results["large"] = {
        "engine_ms": lg["s_per_call"] * 1e3,
        "eager_ms": lg["eager_s_per_call"] * 1e3,
        "ratio": lg["ratio"],
        "engine_peak_bytes": peak_bytes(lambda: lrun(*largs), device),
        "eager_peak_bytes": peak_bytes(lambda: large(*largs), device),
    }

    big, bx = big_chain_program(device)
    brun = torchexec.prepare(big, bx, executor="torchbind")
    brun(bx)
    results["big_chain_memory"] = {
        "engine_peak_bytes": peak_bytes(lambda: brun(bx), device),
        "eager_peak_bytes": peak_bytes(lambda: big(bx), device),
    }

    c = results["chain2000"]
    print(f"torch {results['torch']} on {results['device']}, {results['threads']} thread(s)")
    print(
        f"chain2000 ({c['nodes']} nodes): engine.run {c['engine_us_per_node']:.3f} us/node = "
        f"{c['engine_ratio']:.3f}x of gm.forward ({c['eager_us_per_node']:.3f} us/node); "
        f"prepared call {c['prepared_ratio']:.3f}x; TorchScript {c['torchscript_ratio']:.3f}x"
    )
    print(
        f"chain2000 prepare (export, plan, build): {results['chain_prepare_s']:.2f} s, of which "
        f"building the engine from its encoded plan {results['chain_engine_build_s'] * 1e3:.1f} ms"
    )
    lr = results["large"]
    print(
        f"large: {lr['engine_ms']:.2f} ms vs {lr['eager_ms']:.2f} ms = {lr['ratio']:.3f}x; "
        f"peak {lr['engine_peak_bytes'] / 2**20:.1f} MiB vs {lr['eager_peak_bytes'] / 2**20:.1f} MiB"
    )
    bm = results["big_chain_memory"]
    print(
        f"big chain peak: {bm['engine_peak_bytes'] / 2**20:.2f} MiB vs "
        f"{bm['eager_peak_bytes'] / 2**20:.2f} MiB (gm.forward)"
    )
    path = args.json or RESULTS / f"torchbind_engine_{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
