"""torch.compile with the torchexec backend, side by side with eager and with inductor.

Usage::

    python benchmarks/compile.py [--executor torchbind] [--rounds 15] [--json out.json]

The model is the demo's (``torchexec._demo.DemoModel``: two linear layers, GELU, a residual,
layer norm and softmax) on a ``[32, 64]`` batch, one thread. Two workloads:

* ``inference``: a call under ``torch.no_grad()``;
* ``training``: forward, ``loss.backward()`` (gradients set to ``None`` between steps).

For each, ``torch.compile(model, backend="torchexec", options={"executor": E})`` is timed side by
side with the eager model, with ``torch.compile(model, backend="inductor")``, and with
``torch.compile(model, backend="aot_eager")``: dynamo and ``aot_autograd`` running the same ATen
graphs in Python, which is what the compiled path costs before any executor. Calls alternate
between the two sides in rounds; a ratio is the median of the per-round ratios (below 1: the
first side is faster). The first call of each compiled model (dynamo, aot_autograd and the
executor's prepare, or inductor's code generation) is reported as its compile time, and the
outputs are compared with eager's.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch._dynamo

from torchexec._demo import DemoModel
from torchexec._table import print_table
from torchexec._timing import side_by_side


def _inference(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], Any]:
    def step() -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return step


def _training(
    module: torch.nn.Module, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> Callable[[], Any]:
    def step() -> torch.Tensor:
        for p in module.parameters():
            p.grad = None
        out = model(x)
        torch.autograd.backward(out.square().sum())
        return out

    return step


def _first_call(step: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = step()
    return out, time.perf_counter() - t0


def bench(workload: str, executor: str, number: int, rounds: int) -> dict[str, Any]:
    """One workload: eager, torchexec on ``executor`` and inductor, side by side."""
    torch.manual_seed(0)
    module = DemoModel()
    x = torch.randn(32, 64)
    torch._dynamo.reset()
    ours_module, theirs_module, aot_module = (copy.deepcopy(module) for _ in range(3))
    ours = torch.compile(ours_module, backend="torchexec", options={"executor": executor})
    theirs = torch.compile(theirs_module, backend="inductor")
    aot = torch.compile(aot_module, backend="aot_eager")

    def make(
        owner: torch.nn.Module, model: Callable[[torch.Tensor], torch.Tensor]
    ) -> Callable[[], Any]:
        return _inference(model, x) if workload == "inference" else _training(owner, model, x)

    eager_step = make(module, module)
    ours_step, theirs_step = make(ours_module, ours), make(theirs_module, theirs)
    aot_step = make(aot_module, aot)
    want = eager_step().detach()
    got, ours_compile = _first_call(ours_step)
    other, theirs_compile = _first_call(theirs_step)
    t_ours, t_eager, vs_eager = side_by_side(ours_step, eager_step, number, rounds)
    t_theirs, _, theirs_vs_eager = side_by_side(theirs_step, eager_step, number, rounds)
    _, _, vs_inductor = side_by_side(ours_step, theirs_step, number, rounds)
    t_aot, _, vs_aot = side_by_side(ours_step, aot_step, number, rounds)
    return {
        "workload": workload,
        "executor": executor,
        "torchexec_us": t_ours * 1e6,
        "inductor_us": t_theirs * 1e6,
        "eager_us": t_eager * 1e6,
        "torchexec_vs_eager": vs_eager,
        "inductor_vs_eager": theirs_vs_eager,
        "torchexec_vs_inductor": vs_inductor,
        "aot_eager_us": t_aot * 1e6,
        "torchexec_vs_aot_eager": vs_aot,
        "torchexec_compile_s": ours_compile,
        "inductor_compile_s": theirs_compile,
        "torchexec_max_abs_diff": float((got.detach() - want).abs().max()),
        "torchexec_bit_for_bit": bool(torch.equal(got.detach(), want)),
        "inductor_max_abs_diff": float((other.detach() - want).abs().max()),
    }


def _table(rows: list[dict[str, Any]]) -> list[list[str]]:
    table = [
        [
            "WORKLOAD",
            "EAGER US",
            "TORCHEXEC US",
            "INDUCTOR US",
            "AOT_EAGER US",
            "TORCHEXEC/EAGER",
            "TORCHEXEC/INDUCTOR",
            "TORCHEXEC/AOT_EAGER",
            "INDUCTOR/EAGER",
            "COMPILE S (TORCHEXEC, INDUCTOR)",
            "TORCHEXEC VS EAGER",
            "INDUCTOR VS EAGER",
        ]
    ]
    for r in rows:
        same = "bit for bit" if r["torchexec_bit_for_bit"] else f"{r['torchexec_max_abs_diff']:.1e}"
        table.append(
            [
                r["workload"],
                f"{r['eager_us']:.1f}",
                f"{r['torchexec_us']:.1f}",
                f"{r['inductor_us']:.1f}",
                f"{r['aot_eager_us']:.1f}",
                f"{r['torchexec_vs_eager']:.2f}x",
                f"{r['torchexec_vs_inductor']:.2f}x",
                f"{r['torchexec_vs_aot_eager']:.2f}x",
                f"{r['inductor_vs_eager']:.2f}x",
                f"{r['torchexec_compile_s']:.1f}, {r['inductor_compile_s']:.1f}",
                same,
                f"{r['inductor_max_abs_diff']:.1e}",
            ]
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", default="torchbind", help="torchexec executor (torchbind)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=200, help="calls per round")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [bench(w, args.executor, args.number, args.rounds) for w in ("inference", "training")]
    print(
        f"torch {torch.__version__}, 1 thread, DemoModel on [32, 64]; "
        f"medians of {args.rounds} alternating rounds of {args.number} calls; "
        f"torchexec = backend='torchexec' on {args.executor!r}"
    )
    print_table(_table(rows), sys.stdout)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
