"""Load time of the proxy executor on a 10,000-node program, against ``torch.export.load``.

Usage::

    python benchmarks/proxy_load.py [--nodes 10000] [--repeat 5] [--json PATH] [--archive PATH]

Builds a chain of small elementwise ops (``sin``, ``mul``/``add`` with a scalar, ``relu``, ``neg``)
with ``torch.export`` and saves it with ``torch.export.save`` (about 15-30 s; ``--archive`` keeps
the file and reuses it on the next run). Then, in one process, takes the best of ``--repeat``
timings of:

* ``json.loads``: parsing ``models/model.json`` with the standard library alone, with the cyclic
  garbage collector paused as the loader pauses it;
* ``msgspec.json.decode``: the same with the decoder the loader uses, side by side;
* ``load_plan_from_json``: JSON bytes in memory -> validated Plan;
* ``load_plan``: the ``.pt2`` file -> validated Plan (zip, weights, JSON, plan);
* ``prepare``: the ``.pt2`` file -> runner, what ``torchexec.prepare(path, executor="proxy")``
  spends in the executor;
* ``torchexec.prepare(path, x, executor="proxy")``: the whole call as a user makes it, on a new
  ``Program`` each time (the core reads the program's call signature too);
* ``torch.export.load(path).module()``: the eager path the proxy replaces (fewer repeats: slow).

Prints a table (wall-clock and CPU seconds of this process, each the best of the repeats) and
writes JSON to ``benchmarks/results/proxy_load.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import torch

import torchexec
from torchexec.archive import Pt2Archive
from torchexec_proxy import ProxyExecutor, load_plan, load_plan_from_json

RESULTS = Path(__file__).parent / "results"


class Chain(torch.nn.Module):
    """``nodes`` elementwise ATen nodes on a small tensor."""

    def __init__(self, nodes: int) -> None:
        super().__init__()
        self.rounds = nodes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.rounds):
            x = torch.sin(x)
            x = x * 0.5 if i % 2 else x + 0.25
            x = torch.relu(x)
            x = torch.neg(x)
        return x


def build_archive(path: Path, nodes: int) -> float:
    """Export and save the chain; return the seconds it took."""
    t0 = time.perf_counter()
    ep = torch.export.export(Chain(nodes), (torch.randn(16),), strict=False)
    torch.export.save(ep, path)
    return time.perf_counter() - t0


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The shortest wall-clock and the shortest CPU time of this process over ``repeat`` calls:
    on a machine shared with other jobs, the other jobs only ever add time, so the minimum is
    the steadiest figure (as ``timeit`` advises)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def gc_paused(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with the cyclic garbage collector paused, as the loader parses."""

    def run() -> object:
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()

    return run


def measure(path: Path, repeat: int, export_repeat: int) -> dict[str, Any]:
    with Pt2Archive(path) as archive:
        model_json = archive.model_json()
    program = torchexec.Program.from_path(path)
    plan = load_plan(program)
    executor = ProxyExecutor()
    options = executor.validate_options(None)
    x = torch.randn(16)
    reference = torch.export.load(path).module()
    runner = executor.prepare(program, options)
    if not torch.equal(runner(x)[0], reference(x)):
        raise SystemExit("the proxy's result differs from torch.export.load(path).module()")
    timed = {
        "json_loads": best_time(gc_paused(lambda: json.loads(model_json)), repeat),
        "msgspec_decode": best_time(gc_paused(lambda: msgspec.json.decode(model_json)), repeat),
        "load_plan_from_json": best_time(lambda: load_plan_from_json(model_json, {}, {}), repeat),
        "load_plan": best_time(lambda: load_plan(program), repeat),
        "prepare": best_time(lambda: executor.prepare(program, options), repeat),
        "torchexec_prepare": best_time(
            lambda: torchexec.prepare(path, x, executor="proxy"), repeat
        ),
        "export_load_module": best_time(lambda: torch.export.load(path).module(), export_repeat),
    }
    rows = {key: wall for key, (wall, _) in timed.items()}
    return {
        "nodes": len(plan.nodes),
        "slots": plan.num_slots,
        "model_json_bytes": len(model_json),
        "seconds": rows,
        "cpu_seconds": {key: cpu for key, (_, cpu) in timed.items()},
        "speedup_vs_export_load": rows["export_load_module"] / rows["load_plan"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--nodes", type=int, default=10_000, help="program size (default 10000)")
    p.add_argument("--repeat", type=int, default=5, help="timings per loader (default 5)")
    p.add_argument("--export-repeat", type=int, default=2, help="torch.export.load timings")
    p.add_argument("--archive", type=Path, help="keep/reuse the .pt2 at this path")
    p.add_argument("--json", type=Path, default=RESULTS / "proxy_load.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    build_s = None
    with tempfile.TemporaryDirectory() as tmp:
        path = args.archive or Path(tmp) / "chain.pt2"
        if not (args.archive and path.exists() and zipfile.is_zipfile(path)):
            build_s = build_archive(path, args.nodes)
        result = measure(path, args.repeat, args.export_repeat)
        size = os.path.getsize(path)

    result.update(
        {
            "archive_bytes": size,
            "build_seconds": build_s,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "threads": torch.get_num_threads(),
        }
    )
    secs = result["seconds"]
    print(
        f"{result['nodes']} nodes, {result['slots']} slots, model.json "
        f"{result['model_json_bytes'] / 1e6:.1f} MB; torch {torch.__version__}"
    )
    cpu = result["cpu_seconds"]
    print(f"{'step':<46} {'seconds':>9} {'CPU s':>9}")
    labels = {
        "json_loads": "json.loads(model.json), GC paused",
        "msgspec_decode": "msgspec.json.decode(model.json), GC paused",
        "load_plan_from_json": "load_plan_from_json (JSON -> Plan)",
        "load_plan": "load_plan (.pt2 -> Plan)",
        "prepare": "ProxyExecutor.prepare (.pt2 -> runner)",
        "torchexec_prepare": "torchexec.prepare(path, x, executor='proxy')",
        "export_load_module": "torch.export.load(path).module()",
    }
    for key, label in labels.items():
        print(f"{label:<46} {secs[key]:>9.3f} {cpu[key]:>9.3f}")
    print(f"load_plan is {result['speedup_vs_export_load']:.1f}x faster than torch.export.load")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
