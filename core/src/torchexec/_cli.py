"""The ``torchexec`` command: ``list``, ``run``, ``demo`` and ``check``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from torchexec._choice import parse_executor_arg
from torchexec._placement import format_operator_counts
from torchexec._table import print_table

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    import torchexec

    infos = torchexec.list_executors()
    if args.json:
        json.dump([i.as_dict() for i in infos], out, indent=2)
        print(file=out)
        return 0
    if not infos:
        print("No executors installed. Install one, e.g. 'pip install torchexec-aten'.", file=out)
        return 0
    rows = [["NAME", "STATUS", "DISTRIBUTION", "VERSION", "DEVICES", "DESCRIPTION"]]
    for i in infos:
        devices = ",".join(i.capabilities.devices) if i.capabilities else "-"
        rows.append([i.name, i.status, i.distribution, i.version, devices, i.description])
    print_table(rows, out)
    problems = [i for i in infos if i.error]
    if problems:
        print(file=out)
        for i in problems:
            print(f"{i.name} ({i.distribution} {i.version}) is {i.status}: {i.error}", file=out)
    return 0


def _describe(x: Any) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        return f"{str(x.dtype).removeprefix('torch.')}{list(x.shape)}"
    return type(x).__name__


def _time_call(fn: Any, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    import torch
    import torch.utils._pytree as pytree

    import torchexec
    from torchexec._distributed import rank_path, rank_process_group

    path = rank_path(args.program)
    program = torchexec.Program.from_path(path)
    sample = program.example_inputs()
    if sample is None:
        print(f"{path} stores no sample inputs to run with.", file=sys.stderr)
        return 2
    a, kw = sample
    inputs = pytree.tree_leaves((a, kw))
    device = next((x.device.type for x in inputs if isinstance(x, torch.Tensor)), "cpu")
    with rank_process_group(device) as distributed:
        t0 = time.perf_counter()
        prepared = torchexec.prepare(program, *a, executor=parse_executor_arg(args.executor), **kw)
        prep = time.perf_counter() - t0
        result = prepared(*a, **kw)
        per_call = _time_call(lambda: prepared(*a, **kw), args.repeat)
        ranks = (
            (torch.distributed.get_rank(), torch.distributed.get_world_size())
            if distributed
            else None
        )
    leaves = pytree.tree_leaves(result)
    print(f"program   {path}", file=out)
    if ranks is not None:
        print(f"rank      {ranks[0]} of {ranks[1]}", file=out)
    print(f"executor  {args.executor}", file=out)
    print(f"inputs    {', '.join(_describe(x) for x in inputs)}", file=out)
    print(f"outputs   {', '.join(_describe(x) for x in leaves)}", file=out)
    print(f"prepare   {prep * 1e3:.1f} ms", file=out)
    print(f"per call  {per_call * 1e6:.1f} us (median of {args.repeat})", file=out)
    return 0


def _cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    import torchexec

    placement = torchexec.explain(args.program, executor=parse_executor_arg(args.executor))
    if args.json:
        print(json.dumps(placement.as_dict(), indent=2), file=out)
        return 0
    print(f"program   {args.program}", file=out)
    print(f"executor  {args.executor}", file=out)
    print(file=out)
    print(placement, file=out)
    print(file=out)
    rows = [["PARTITION", "EXECUTOR", "NODES", "OPERATORS"]]
    for part in placement.partitions:
        ops = format_operator_counts(part.operators, limit=6)
        rows.append([str(part.index), part.executor, str(part.nodes), ops])
    print_table(rows, out)
    return 0


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from torchexec._demo import run_demo

    return run_demo(out, repeat=args.repeat)


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from torchexec.testing import main as check_main
    except ImportError as exc:
        print(f"The conformance kit needs its test dependencies: {exc}", file=sys.stderr)
        print("Install them with: pip install 'torchexec[testing]'", file=sys.stderr)
        return 2
    return int(check_main(list(args.executors), list(args.pytest_args)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="torchexec", description="Run PyTorch programs on interchangeable executors."
    )
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list installed executors and their status")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_cmd_list)
    run = sub.add_parser("run", help="run a .pt2 archive on its stored sample inputs")
    run.add_argument(
        "program",
        help="path of a .pt2 archive written by torch.export.save; under torchrun, {rank} in "
        "the path is replaced by the rank",
    )
    run.add_argument(
        "--executor",
        default="aten",
        help="executor name, or a priority list such as 'mine,aten' (default: aten)",
    )
    run.add_argument("--repeat", type=int, default=20, help="timed calls (default: 20)")
    run.set_defaults(func=_cmd_run)
    explain = sub.add_parser(
        "explain", help="show which executor would run which operators, running nothing"
    )
    explain.add_argument("program", help="path of a .pt2 archive or ExportedProgram .json file")
    explain.add_argument(
        "--executor", required=True, help="executor name or priority list, e.g. 'mine,aten'"
    )
    explain.add_argument("--json", action="store_true", help="print JSON instead of tables")
    explain.set_defaults(func=_cmd_explain)
    demo = sub.add_parser("demo", help="export a small model and run it on every executor")
    demo.add_argument("--repeat", type=int, default=50, help="timed calls per executor")
    demo.set_defaults(func=_cmd_demo)
    check = sub.add_parser("check", help="run the conformance kit against executors")
    check.add_argument("executors", nargs="+", help="executor names")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    check.set_defaults(func=_cmd_check)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``torchexec`` command; returns the exit status."""
    import torchexec

    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        return int(args.func(args, stream))
    except torchexec.TorchexecError as exc:
        print(f"torchexec: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
