"""Generated programs on inductor, batched: many kit programs compiled as ONE program.

An AOTInductor compile costs 10-50 s here, so compiling each generated program alone would allow
only a handful per CI run. This test draws ``N`` programs with the kit's public strategy
(``torchexec.testing.programs``), wraps them in one module whose forward runs each program on
its own inputs and returns all their outputs, exports and compiles that once, and compares each
program's slice of the outputs with aten within the kit's tolerances
(``torchexec.testing.compare_outputs``). Known disagreements are in
``plugins/inductor/conformance-skips.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.utils._pytree as pytree
from hypothesis import HealthCheck, Phase, given, settings

import torchexec
from torchexec.testing import GeneratedProgram, SkipList, Tolerances, compare_outputs, programs

N = 60
MAX_NODES = 5
SKIPS = Path(__file__).resolve().parents[3] / "plugins" / "inductor" / "conformance-skips.txt"


def draw_programs(n: int) -> list[GeneratedProgram]:
    """``n`` programs from the kit's strategy, the same ones on every run (derandomized)."""
    found: list[GeneratedProgram] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(programs(max_nodes=MAX_NODES))
    def collect(program: GeneratedProgram) -> None:
        found.append(program)

    collect()
    return found


class Batch(torch.nn.Module):
    """Runs each program on its slice of the flat inputs; returns every program's outputs."""

    def __init__(self, parts: Sequence[GeneratedProgram]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(p.graph_module() for p in parts)
        self.arity = [len(p.ir.inputs) for p in parts]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs: list[torch.Tensor] = []
        start = 0
        for gm, n in zip(self.parts, self.arity, strict=True):
            outs += pytree.tree_leaves(gm(*inputs[start : start + n]))
            start += n
        return tuple(outs)


def _inputs(parts: Sequence[GeneratedProgram]) -> list[torch.Tensor]:
    return [x for p in parts for x in p.make_inputs()]


def test_generated_programs_agree_with_aten() -> None:
    parts = draw_programs(N)
    assert len(parts) == N
    assert len({op for p in parts for op in p.operators}) >= 30  # a broad mix of operators
    batch = Batch(parts)
    ep = torch.export.export(batch, tuple(_inputs(parts)), strict=False)
    expected = torchexec.prepare(ep, *_inputs(parts), executor="aten")(*_inputs(parts))
    # One compile for all of them; cache=False: nothing of this run is kept on disk.
    run = torchexec.prepare(
        ep, *_inputs(parts), executor="inductor", executor_parameters={"cache": False}
    )
    actual = run(*_inputs(parts))
    assert len(actual) == len(expected)
    skips = SkipList.load([SKIPS], shipped=False)
    tolerances = Tolerances.shipped()
    failures: list[str] = []
    passed = xfailed = start = 0
    for p in parts:
        n = len(p.ir.outputs)
        got, want = list(actual[start : start + n]), list(expected[start : start + n])
        start += n
        cmp = compare_outputs(
            got, want, bitwise=False, tolerances=tolerances, operators=p.operators
        )
        if cmp.ok:
            passed += 1
        elif skips.match(f"inductor::generated::{op}" for op in p.operators) is not None:
            xfailed += 1
        else:
            failures.append(f"{p}: output {cmp.output}: {cmp.reason}\n{p.code()}")
    assert start == len(actual)
    assert not failures, "\n\n".join(failures)
    assert passed >= 0.9 * N, (passed, xfailed)
