"""Generated programs with functional collectives, for the kit's distributed tier.

A program of the generated tier (catalog operators) is drawn, then one to three of its tensor
values are sent through ``torch.ops._c10d_functional`` collectives (each followed by
``wait_tensor``) whose results become extra outputs. Every rank draws the same program; before
a collective, the value gets the rank added (``aten.add.Tensor(v, rank)``), so that the ranks
contribute different values and a wrong reduction, gather order or split shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from torchexec.testing._ir import Call, ProgramIR, Ref
from torchexec.testing.strategies import GeneratedProgram, programs

__all__ = ["COLLECTIVES", "REDUCE_OPS", "collective_programs"]

_F = torch.ops._c10d_functional
_ADD = torch.ops.aten.add.Tensor

COLLECTIVES = (
    "all_reduce",
    "all_reduce_coalesced",
    "all_gather_into_tensor",
    "reduce_scatter_tensor",
    "all_to_all_single",
    "broadcast",
)
"""The functional collectives the tier draws."""

REDUCE_OPS = ("sum", "max", "min", "product")
"""Reductions gloo runs on CPU tensors (``avg`` it does not)."""

_DTYPES = frozenset({torch.float32, torch.float64, torch.int32, torch.int64})
"""Dtypes sent through collectives (gloo reduces them all on CPU)."""

_SETUP = (
    "import torch.distributed as dist",
    "# run under torchrun with the world size of the failure, e.g. torchrun --nproc-per-node 2",
    'dist.init_process_group("gloo")',
)


@dataclass(frozen=True)
class _Value:
    ref: Ref
    shape: tuple[int, ...]
    dtype: torch.dtype


def _candidates(ir: ProgramIR) -> list[_Value]:
    env = ir.evaluate()
    out: list[_Value] = []
    for call in ir.calls:
        for ref in call.results():
            value = env[ref.name] if ref.index is None else env[ref.name][ref.index]
            if isinstance(value, torch.Tensor) and value.dtype in _DTYPES:
                out.append(_Value(ref, tuple(value.shape), value.dtype))
    return out


def _applicable(kind: str, v: _Value, world: int) -> bool:
    if kind in ("all_gather_into_tensor",):
        return len(v.shape) >= 1
    if kind in ("reduce_scatter_tensor", "all_to_all_single"):
        return len(v.shape) >= 1 and v.shape[0] % world == 0
    return True


class _Appender:
    """Appends calls to a program, naming them ``v<N>`` after its last call."""

    def __init__(self, ir: ProgramIR, rank: int, group: str, world: int) -> None:
        self.ir, self.rank, self.group, self.world = ir, rank, group, world
        self.outputs: list[Ref] = []

    def call(self, op: str, target: object, args: tuple[object, ...], n: int | None = None) -> Ref:
        name = f"v{len(self.ir.calls)}"
        setup = _SETUP if op.startswith("_c10d_functional") else ()
        self.ir.calls.append(Call(name, op, target, args, n_outputs=n, setup=setup))  # type: ignore[arg-type]
        return Ref(name)

    def ranked(self, v: _Value) -> Ref:
        return self.call("aten.add.Tensor", _ADD, (v.ref, self.rank))

    def waited(self, ref: Ref) -> None:
        done = self.call("_c10d_functional.wait_tensor.default", _F.wait_tensor.default, (ref,))
        self.outputs.append(done)

    def collective(self, kind: str, values: Sequence[_Value], reduce_op: str) -> None:
        g, w = self.group, self.world
        x = self.ranked(values[0])
        op = f"_c10d_functional.{kind}.default"
        if kind == "all_reduce":
            self.waited(self.call(op, _F.all_reduce.default, (x, reduce_op, g)))
        elif kind == "all_reduce_coalesced":
            y = self.ranked(values[1])
            both = self.call(op, _F.all_reduce_coalesced.default, ([x, y], reduce_op, g), n=2)
            self.waited(Ref(both.name, 0))
            self.waited(Ref(both.name, 1))
        elif kind == "all_gather_into_tensor":
            self.waited(self.call(op, _F.all_gather_into_tensor.default, (x, w, g)))
        elif kind == "reduce_scatter_tensor":
            self.waited(self.call(op, _F.reduce_scatter_tensor.default, (x, reduce_op, w, g)))
        elif kind == "all_to_all_single":
            split = [values[0].shape[0] // w] * w
            self.waited(self.call(op, _F.all_to_all_single.default, (x, split, split, g)))
        else:
            self.waited(self.call(op, _F.broadcast.default, (x, 0, g)))


@st.composite
def collective_programs(
    draw: st.DrawFn,
    *,
    rank: int,
    world: int,
    group: str,
    kinds: Sequence[str] = COLLECTIVES,
    max_nodes: int = 12,
) -> GeneratedProgram:
    """A generated program with one to three collectives of ``kinds`` over ``group`` (see the
    module docstring). Draws the same on every rank; only the added rank differs."""
    base = draw(programs(max_nodes=max_nodes))
    ir = base.ir
    candidates = [v for v in _candidates(ir) if any(_applicable(k, v, world) for k in kinds)]
    if not candidates:  # nothing fits: a value every collective takes
        name = f"v{len(ir.calls)}"
        ir.calls.append(
            Call(name, "aten.arange.start_step", torch.ops.aten.arange.start_step,
                 (0, 2 * world), {"dtype": torch.float32})
        )  # fmt: skip
        candidates = [_Value(Ref(name), (2 * world,), torch.float32)]
    app = _Appender(ir, rank, group, world)
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.sampled_from(candidates))
        kind = draw(st.sampled_from([k for k in kinds if _applicable(k, first, world)]))
        values = [first]
        if kind == "all_reduce_coalesced":  # gloo coalesces tensors of one dtype
            values.append(draw(st.sampled_from([c for c in candidates if c.dtype == first.dtype])))
        app.collective(kind, values, draw(st.sampled_from(REDUCE_OPS)))
    ir.outputs = [*ir.outputs, *app.outputs]
    return GeneratedProgram(ir, base.rejected)
