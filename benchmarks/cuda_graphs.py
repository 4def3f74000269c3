"""``cuda_graphs=True`` against eager ``gm.forward`` on a GPU, side by side.

Usage (needs CUDA)::

    python benchmarks/cuda_graphs.py [--executors aten,proxy,torchbind] [--json out.json]

Workloads: ``chain2000`` (2000 small elementwise nodes on 16-element tensors: launch-bound; goal
<= 0.15x of eager) and ``large`` (matmuls on 1024x1024: compute-bound; goal <= 1.0x). For each
executor it prints the time per call with and without CUDA graphs, the ratio to eager measured
in alternating rounds, and the peak memory of one call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program, large_program, peak_bytes  # noqa: E402
from torchexec._timing import side_by_side  # noqa: E402


def _synced(fn: Any) -> Any:
    def run() -> None:
        fn()
        torch.cuda.synchronize()

    return run


def bench(
    name: str, gm: torch.fx.GraphModule, args: tuple[Any, ...], executor: str, number: int
) -> dict[str, Any]:
    eager = _synced(lambda: gm(*args))
    graphed = torchexec.prepare(gm, *args, executor=executor, cuda_graphs=True)
    plain = torchexec.prepare(gm, *args, executor=executor)
    assert torch.equal(graphed(*args), gm(*args))
    t_graph, t_eager, ratio = side_by_side(_synced(lambda: graphed(*args)), eager, number, 7)
    t_plain, _, plain_ratio = side_by_side(_synced(lambda: plain(*args)), eager, number, 7)
    device = args[0].device
    return {
        "workload": name,
        "executor": executor,
        "graph_us": t_graph * 1e6,
        "plain_us": t_plain * 1e6,
        "eager_us": t_eager * 1e6,
        "graph_vs_eager": ratio,
        "plain_vs_eager": plain_ratio,
        "graph_peak_bytes": peak_bytes(lambda: graphed(*args), device),
        "eager_peak_bytes": peak_bytes(lambda: gm(*args), device),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="aten,proxy,torchbind")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/cuda_graphs.py needs CUDA", file=sys.stderr)
        return 2
    cuda = torch.device("cuda")
    workloads = [
        ("chain2000", *chain_program(2000, device=cuda), 20),
        ("large", *large_program(cuda), 20),
    ]
    rows = []
    for ex in args.executors.split(","):
        for name, gm, inputs, number in workloads:
            rows.append(bench(name, gm, inputs, ex, number))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; medians of 7 rounds")
    print(
        f"{'workload':<10} {'executor':<10} {'graph us':>10} {'plain us':>10} {'eager us':>10} "
        f"{'graph/eager':>11} {'plain/eager':>11} {'peak MiB graph/eager':>22}"
    )
    for r in rows:
        print(
            f"{r['workload']:<10} {r['executor']:<10} {r['graph_us']:10.1f} {r['plain_us']:10.1f} "
            f"{r['eager_us']:10.1f} {r['graph_vs_eager']:10.3f}x {r['plain_vs_eager']:10.3f}x "
            f"{r['graph_peak_bytes'] / 2**20:10.2f} / {r['eager_peak_bytes'] / 2**20:.2f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
