"""Hypothesis strategies that build valid random ATen programs and their inputs.

>>> from hypothesis import given
>>> from torchexec.testing.strategies import programs
>>> @given(programs(max_nodes=5))
... def test_runs(program):
...     gm = program.graph_module()          # ATen-level torch.fx.GraphModule
...     out = gm(*program.make_inputs())

A :class:`GeneratedProgram` has 1 to ``max_nodes`` calls of catalog operators
(:mod:`torchexec.testing.catalog`) that reuse earlier results, several outputs (every result
no later call reads, plus inputs and intermediate views now and then), unused inputs and constant
tensors; inputs span float32/float64/float16/bfloat16/int64/bool, ranks 0-4, size-0 and size-1
dims and non-contiguous layouts. Every call was run on the example inputs while the program was
built, so the program is valid for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.fx
from hypothesis import strategies as st

from torchexec.testing._builder import Builder, GenerationConfig, OpSpec, Rejected
from torchexec.testing._ir import ProgramIR, Ref
from torchexec.testing._values import ALL_DTYPES, InputSpec, Layout
from torchexec.testing.catalog import CATALOG, by_name

__all__ = [
    "Builder",
    "GeneratedProgram",
    "GenerationConfig",
    "Rejected",
    "input_specs",
    "programs",
    "torchbind_programs",
]


class GeneratedProgram:
    """A generated program and how to run it.

    Attributes:
        ir: the program by name (inputs, constants, objects, calls, outputs).
        rejected: per operator, how many drawn calls the eager kernel refused while building
            (those calls are not in the program).
    """

    def __init__(self, ir: ProgramIR, rejected: dict[str, int] | None = None) -> None:
        self.ir = ir
        self.rejected = dict(rejected or {})

    @property
    def operators(self) -> list[str]:
        """Catalog names of the operators called, in order (repeats included)."""
        return self.ir.operators

    def graph_module(self) -> torch.fx.GraphModule:
        """The program as an ATen-level ``torch.fx.GraphModule``."""
        return self.ir.graph_module()

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        """Fresh input tensors; the same values and strides every call."""
        return self.ir.make_inputs()

    def code(self) -> str:
        """Python source defining ``Program`` (an ``nn.Module``) and ``make_inputs()``."""
        return self.ir.module_code()

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.ir.inputs) or "no inputs"
        ops = ", ".join(self.operators)
        return f"GeneratedProgram({len(self.ir.calls)} calls [{ops}] on {ins})"


def _finish(draw: st.DrawFn, b: Builder) -> GeneratedProgram:
    ir = b.ir
    if not ir.calls:  # every drawn call was refused: fall back to one that always works
        b.call(by_name("aten.clone.default"))
    if draw(st.integers(0, 5)) == 0:  # an input the program never reads
        b.fresh(b.shape(), constant=False)
    read = {r for c in ir.calls for r in c.refs()}
    leaves = [r for c in ir.calls for r in c.results() if r not in read]
    values: list[Ref] = [r for r, _ in b.pool]
    extras = draw(st.lists(st.sampled_from(values), max_size=2)) if values else []
    ir.outputs = leaves + [r for r in extras if not r.name.startswith("c")]
    return GeneratedProgram(ir, dict(b.rejected))


@st.composite
def programs(
    draw: st.DrawFn,
    *,
    max_nodes: int = 30,
    operators: Iterable[OpSpec] | None = None,
    config: GenerationConfig | None = None,
) -> GeneratedProgram:
    """Random valid ATen programs of 1 to ``max_nodes`` calls.

    Args:
        max_nodes: the most calls a program has.
        operators: the catalog entries to draw from (default: the whole catalog).
        config: dtypes, ranks and layouts of fresh inputs (:class:`GenerationConfig`).
    """
    ops = list(operators) if operators is not None else list(CATALOG)
    if not ops:
        raise ValueError("programs() needs at least one operator")
    b = Builder(draw, config or GenerationConfig())
    for op in _op_sequence(draw, ops, max_nodes):
        b.call(op)
    return _finish(draw, b)


def _op_sequence(draw: st.DrawFn, ops: Sequence[OpSpec], max_nodes: int) -> list[OpSpec]:
    """The operators of one program: mostly a run through a fixed shuffle of ``ops`` from a
    drawn start, sometimes a freely drawn one.

    Hypothesis draws from ``sampled_from`` far from uniformly (the first entries dominate);
    walking a cycle spreads the calls evenly over the catalog, so a few hundred programs call
    every operator, while the free draws still mix operators in any order.
    """
    order = _cycle(tuple(ops))
    n = draw(st.integers(1, max_nodes))
    pos = draw(st.integers(0, len(order) - 1))
    out: list[OpSpec] = []
    for _ in range(n):
        if draw(st.integers(0, 3)) == 3:
            out.append(draw(st.sampled_from(order)))
        else:
            out.append(order[pos % len(order)])
            pos += 1
    return out


_CYCLES: dict[tuple[OpSpec, ...], tuple[OpSpec, ...]] = {}


def _cycle(ops: tuple[OpSpec, ...]) -> tuple[OpSpec, ...]:
    if ops not in _CYCLES:
        import random

        shuffled = list(ops)
        random.Random(20240601).shuffle(shuffled)
        _CYCLES[ops] = tuple(shuffled)
    return _CYCLES[ops]


@st.composite
def input_specs(
    draw: st.DrawFn,
    *,
    dtypes: Sequence[torch.dtype] = ALL_DTYPES,
    max_rank: int = 4,
    max_dim: int = 5,
) -> InputSpec:
    """Input tensor specs: any of ``dtypes``, ranks ``0..max_rank``, dims ``0..max_dim``,
    contiguous or not. ``make_input(spec)`` makes the tensor."""
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, max_dim), min_size=rank, max_size=rank)))
    layouts: list[Layout] = ["contiguous"]
    if rank >= 1:
        layouts += ["strided", "expanded"]
    if rank >= 2:
        layouts.append("transposed")
    dtype = draw(st.sampled_from(list(dtypes)))
    return InputSpec(
        shape,
        dtype,
        draw(st.sampled_from(layouts)),
        draw(st.integers(0, 2**16)),
        specials=bool(dtype.is_floating_point and draw(st.booleans())),
    )


def torchbind_programs(
    max_nodes: int = 8, operators: Sequence[OpSpec] | None = None
) -> st.SearchStrategy[GeneratedProgram]:
    """Programs that mix catalog operators with operators plugins contribute: TorchBind methods
    and custom operators (hook ``torchexec_conformance_ops``; ``torchexec-torchbind``
    contributes ``Scale.apply``, ``Scale.get_weight``, ``Accumulator.add`` and
    ``torchexec_testing::scale_add``).

    Args:
        max_nodes: the most calls a program has.
        operators: the contributed operators to mix in (default: every installed plugin's).

    Raises:
        ValueError: no installed plugin contributes an operator.
    """
    from torchexec.testing._contributed import contributed_ops

    extra = list(operators) if operators is not None else contributed_ops()
    if not extra:
        raise ValueError(
            "torchbind_programs() needs contributed operators; no installed plugin implements "
            "torchexec_conformance_ops"
        )
    return _torchbind_programs(max_nodes=max_nodes, extra=extra)


@st.composite
def _torchbind_programs(
    draw: st.DrawFn, *, max_nodes: int, extra: Sequence[OpSpec]
) -> GeneratedProgram:
    b = Builder(draw, GenerationConfig(dtypes=(torch.float32, torch.float64)))
    ops: list[Any] = list(CATALOG)
    for _ in range(draw(st.integers(1, max_nodes))):
        op = draw(st.sampled_from(extra)) if draw(st.booleans()) else draw(st.sampled_from(ops))
        b.call(op)
    if not any(c.op in {o.name for o in extra} for c in b.ir.calls):
        for op in extra:
            if b.call(op) is not None:
                break
    return _finish(draw, b)
