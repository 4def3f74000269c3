"""What partitioned execution costs, side by side.

Usage::

    python benchmarks/partition.py [--executor proxy] [--json benchmarks/results/partition.json]

Workloads:

* ``whole``: ``executor=[E, "aten"]`` (``[E, "proxy"]`` for aten) where ``E`` claims every node of the 2000-node chain,
  against ``executor=E`` alone: one partition, so the ratio should be ~1.00 (goal <= 1.05).
* ``striped``: a 200-node chain cut every 10 nodes between two executors that both run ``E``'s
  runner (``stripes`` claims even stripes, ``E`` the rest: 20 partitions), against ``E`` alone
  on the whole chain. The difference, divided by the number of boundaries, is what one boundary
  costs per call: one more call of the executor's runner, plus the core moving values between
  partitions. The second part is measured alone too (the stitched runner against calling each
  partition's runner on its inputs back to back); goal <= 2 us on CPU.

Timings alternate between the two sides in rounds; ratios are medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program  # noqa: E402
from torchexec._timing import side_by_side  # noqa: E402


class Stripes:
    """Claims the operator nodes of even-numbered stripes of ``width`` nodes; runs what it is
    given on ``inner``."""

    description = "Benchmark executor: claims every other stripe of nodes"

    def __init__(self, inner: str, width: int) -> None:
        self.name = "stripes"
        self._inner = torchexec.get_executor(inner)
        self.capabilities = self._inner.capabilities
        self._width = width
        self._index: dict[torch.fx.Node, int] = {}

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        return torchexec.validate_options(self.name, (), options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool:
        if node not in self._index:
            ops = [n for n in node.graph.nodes if n.op == "call_function"]
            self._index.update({n: i for i, n in enumerate(ops)})
        return (self._index[node] // self._width) % 2 == 0

    def prepare(self, program: torchexec.Program, options: Mapping[str, object]) -> Any:
        return self._inner.prepare(program, self._inner.validate_options(None))


def bench_whole(executor: str, number: int, rounds: int) -> dict[str, Any]:
    gm, args = chain_program(2000)
    alone = torchexec.prepare(gm, *args, executor=executor)
    fallback = "proxy" if executor == "aten" else "aten"
    listed = torchexec.prepare(gm, *args, executor=[executor, fallback])
    assert len(listed.placement.partitions) == 1
    t_list, t_alone, ratio = side_by_side(
        lambda: listed(*args), lambda: alone(*args), number, rounds
    )
    return {
        "workload": "whole",
        "executor": executor,
        "list_us": t_list * 1e6,
        "alone_us": t_alone * 1e6,
        "ratio": ratio,
    }


def bench_striped(executor: str, number: int, rounds: int, width: int = 10) -> dict[str, Any]:
    gm, args = chain_program(200)
    with torchexec.register_executor(Stripes(executor, width)):
        cut = torchexec.prepare(gm, *args, executor=["stripes", executor])
    alone = torchexec.prepare(gm, *args, executor=executor)
    parts = len(cut.placement.partitions)
    assert torch.equal(cut(*args), alone(*args))
    t_cut, t_alone, ratio = side_by_side(lambda: cut(*args), lambda: alone(*args), number, rounds)
    t_stitch, t_parts, _ = side_by_side(
        lambda: cut.runner(*args), _parts_alone(cut.runner, args), number, rounds
    )
    return {
        "workload": "striped",
        "executor": executor,
        "partitions": parts,
        "cut_us": t_cut * 1e6,
        "alone_us": t_alone * 1e6,
        "ratio": ratio,
        "us_per_boundary": (t_cut - t_alone) * 1e6 / (parts - 1),
        "stitch_us_per_boundary": (t_stitch - t_parts) * 1e6 / (parts - 1),
    }


def _parts_alone(stitched: Any, args: tuple[Any, ...]) -> Any:
    """A call of every partition's runner on its recorded inputs, without the stitcher: the
    difference to the stitched runner is what the core itself adds (reads the stitcher's plan)."""
    calls = []
    env = stitched._template.copy()
    env[stitched._user_start : stitched._user_end] = args
    for runner, gather, start, stop, _ in stitched._steps:
        inputs = gather(env)
        env[start:stop] = runner(*inputs)
        calls.append((runner, inputs))

    def run() -> None:
        for runner, inputs in calls:
            runner(*inputs)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--executor",
        action="append",
        help="executor(s) to cut (default: all of aten, proxy, torchbind installed)",
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    installed = {i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")}
    executors = args.executor or [e for e in ("aten", "proxy", "torchbind") if e in installed]
    rows = []
    for ex in executors:
        rows.append(bench_whole(ex, number=20, rounds=args.rounds))
        rows.append(bench_striped(ex, number=200, rounds=args.rounds))
    print(f"torch {torch.__version__}, 1 thread; medians of {args.rounds} alternating rounds")
    for r in rows:
        if r["workload"] == "whole":
            print(
                f"whole    {r['executor']:<10} as a list {r['list_us']:8.1f} us  "
                f"alone {r['alone_us']:8.1f} us  ratio {r['ratio']:.3f}x"
            )
        else:
            print(
                f"striped  {r['executor']:<10} {r['partitions']} partitions {r['cut_us']:8.1f} us  "
                f"alone {r['alone_us']:8.1f} us  ratio {r['ratio']:.3f}x  "
                f"{r['us_per_boundary']:.2f} us per boundary, of which the core's stitching "
                f"{r['stitch_us_per_boundary']:.2f} us"
            )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
