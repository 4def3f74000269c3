"""Generated programs with higher-order operators, for the kit's control-flow tier.

Each program wraps generated bodies (programs of catalog operators, see
:func:`~torchexec.testing.strategies.programs`) in one of:

- ``cond``: a data-dependent branch between two generated bodies, the false branch's results
  fitted to the true branch's shapes and dtypes;
- ``while_loop``: a counter bounded by a constant, the body's floating-point inputs updated from
  its results on every turn;
- ``map``: a body run over the leading dimension of a stacked input;
- ``scan``: a body run over the leading dimension with a carried running sum;
- ``mutating_op``: :func:`scale_add_`, a custom operator that mutates a tensor (a clone and a
  program input), which ``run_decompositions`` functionalizes into ``auto_functionalized_v2``.

A program is Python source (so a failure prints the program as it ran), executed into a module
and exported with ``torch.export``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from hypothesis import strategies as st

from torchexec.testing._ir import ProgramIR, Ref, render_value
from torchexec.testing._values import InputSpec, dtype_name
from torchexec.testing.strategies import programs

__all__ = ["KINDS", "ControlFlowProgram", "control_flow_programs", "scale_add_"]

KINDS = ("cond", "while_loop", "map", "scan", "mutating_op")
"""What the tier wraps generated bodies in."""

MUTATING_OP = "torchexec_kit.scale_add_.default"


@torch.library.custom_op("torchexec_kit::scale_add_", mutates_args=("x",))
def scale_add_(x: torch.Tensor, y: torch.Tensor, k: int) -> None:
    """``x += k * y`` in place: the kit's custom operator that mutates an input."""
    x.add_(y, alpha=k)


_HELPERS = '''
def fit(v, shape, dtype):
    """A value of ``shape`` and ``dtype`` computed from ``v``."""
    return v.float().sum().to(dtype).expand(shape).clone(memory_format=torch.contiguous_format)


def bump(x, v):
    """``x`` moved by a value computed from ``v`` (floating point only), contiguous."""
    if x.is_floating_point():
        x = x + v.float().sum().to(x.dtype)
    return x.clone(memory_format=torch.contiguous_format)


def fresh(values):
    return tuple(v.clone(memory_format=torch.contiguous_format) for v in values)
'''


@dataclass
class ControlFlowProgram:
    """A generated program with a higher-order operator.

    Attributes:
        kind: one of :data:`KINDS`.
        source: Python source defining ``Program`` and ``make_inputs()``.
        operators: the catalog operators of its bodies, then the higher-order operator.
    """

    kind: str
    source: str
    operators: list[str]

    def namespace(self) -> dict[str, Any]:
        """The source, executed."""
        scope: dict[str, Any] = {"torch": torch}
        exec(compile(self.source, f"<kit {self.kind} program>", "exec"), scope)
        return scope

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        """Fresh inputs (equal every call)."""
        inputs: tuple[torch.Tensor, ...] = self.namespace()["make_inputs"]()
        return inputs

    def exported(self) -> torch.export.ExportedProgram:
        """The program exported (functionalized when it calls the mutating operator)."""
        ep = torch.export.export(self.namespace()["Program"](), self.make_inputs(), strict=False)
        return ep.run_decompositions() if self.kind == "mutating_op" else ep

    def export_code(self) -> str:
        """The line of a reproduction that makes the exported program."""
        code = "torch.export.export(Program(), make_inputs(), strict=False)"
        return code + (".run_decompositions()" if self.kind == "mutating_op" else "")


def _inputs_only(ir: ProgramIR) -> ProgramIR:
    """``ir`` with its tensor constants made inputs (bodies of higher-order operators take
    everything as operands)."""
    n = len(ir.inputs)
    inputs = [*ir.inputs, *(InputSpec.of(c) for c in ir.constants)]

    def fix(ref: Ref) -> Ref:
        if ref.name.startswith("c"):
            return Ref(f"x{n + int(ref.name[1:])}", ref.index)
        return ref

    calls = [c.with_refs(fix) for c in ir.calls]
    return ProgramIR(inputs=inputs, calls=calls, outputs=[fix(r) for r in ir.outputs])


def _body_source(ir: ProgramIR, index: int) -> str:
    """``Body<index>``: the body as a module, and ``body<index>_inputs()``."""
    code = ir.module_code()
    code = code.replace("class Program(", f"class Body{index}(", 1)
    return code.replace("def make_inputs():", f"def body{index}_inputs():", 1)


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@dataclass(frozen=True)
class _Body:
    ir: ProgramIR
    outputs: list[torch.Tensor]  # the body's results on its own inputs

    @property
    def specs(self) -> list[tuple[tuple[int, ...], torch.dtype]]:
        return [(tuple(o.shape), o.dtype) for o in self.outputs]


def _body(ir: ProgramIR) -> _Body | None:
    ir = _inputs_only(ir)
    env = ir.evaluate()
    outs = [env[r.name] if r.index is None else env[r.name][r.index] for r in ir.outputs]
    if not ir.inputs or not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        return None
    return _Body(ir, outs)


def _module(forward: Sequence[str], bodies: int) -> list[str]:
    lines = [
        "class Program(torch.nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    lines += [f"        self.body{i} = Body{i}()" for i in range(bodies)]
    return lines + [""] + [f"    {ln}" if ln else "" for ln in forward]


def _cond(a: _Body, b: _Body) -> tuple[list[str], list[InputSpec]]:
    xa, xb = _names("a", len(a.ir.inputs)), _names("b", len(b.ir.inputs))
    params = ", ".join([*xa, *xb])
    fitted = ", ".join(
        f"fit(r[0], {render_value(list(shape))}, torch.{dtype_name(dtype)})"
        for shape, dtype in a.specs
    )
    forward = [
        f"def forward(self, {params}):",
        f"    def true_fn({params}):",
        f"        return fresh(self.body0({', '.join(xa)}))",
        "",
        f"    def false_fn({params}):",
        f"        r = self.body1({', '.join(xb)})",
        f"        return ({fitted},)",
        "",
        f"    return torch.cond(a0.float().mean() > 0, true_fn, false_fn, ({params},))",
    ]
    return forward, [*a.ir.inputs, *b.ir.inputs]


def _while_loop(a: _Body, turns: int) -> tuple[list[str], list[InputSpec]]:
    xs = _names("a", len(a.ir.inputs))
    params = ", ".join(xs)
    bumped = ", ".join(f"bump({x}, r[0])" for x in xs)
    forward = [
        f"def forward(self, {params}):",
        f"    def cond_fn(i, {params}):",
        f"        return i < {turns}",
        "",
        f"    def body_fn(i, {params}):",
        f"        r = self.body0({params})",
        f"        return (i + 1, {bumped})",
        "",
        "    i = torch.zeros((), dtype=torch.int64)",
        f"    carried = (i, *fresh(({params},)))",
        "    return while_loop(cond_fn, body_fn, carried)",
    ]
    return forward, list(a.ir.inputs)


def _stacked(a: _Body, length: int) -> list[InputSpec]:
    first = a.ir.inputs[0]
    stacked = replace(first, shape=(length, *first.shape), layout="contiguous")
    return [stacked, *a.ir.inputs[1:]]


def _map(a: _Body, length: int) -> tuple[list[str], list[InputSpec]]:
    xs = _names("a", len(a.ir.inputs))
    params = ", ".join(["stacked", *xs[1:]])
    forward = [
        f"def forward(self, {params}):",
        f"    def body({', '.join(xs)}):",
        f"        return fresh(self.body0({', '.join(xs)}))",
        "",
        f"    return map_hop(body, {params})",
    ]
    return forward, _stacked(a, length)


def _scan(a: _Body, length: int) -> tuple[list[str], list[InputSpec]]:
    xs = _names("a", len(a.ir.inputs))
    forward = [
        f"def forward(self, {', '.join(['stacked', *xs[1:]])}):",
        "    def combine(total, a0):",
        f"        r = self.body0({', '.join(xs)})",
        "        return total + r[0].float().sum(), fresh(r)",
        "",
        "    return scan(combine, torch.zeros(()), stacked)",
    ]
    return forward, _stacked(a, length)


def _mutating(a: _Body) -> tuple[list[str], list[InputSpec]] | None:
    numeric = [i for i, o in enumerate(a.outputs) if o.dtype != torch.bool]
    if not numeric:
        return None
    k = numeric[0]
    shape, dtype = a.specs[k]
    xs = _names("a", len(a.ir.inputs))
    params = ", ".join(xs)
    forward = [
        f"def forward(self, {params}):",
        f"    r = self.body0({params})",
        "    out = fresh(r)",
        f"    z = r[{k}].clone(memory_format=torch.contiguous_format)",
        f"    y = fit(r[0], {render_value(list(shape))}, torch.{dtype_name(dtype)})",
        "    torch.ops.torchexec_kit.scale_add_(z, y, 2)",
    ]
    first = a.ir.inputs[0]
    if first.dtype.is_floating_point and first.layout == "contiguous":
        # an input mutated too: the program copies it back
        forward.append("    torch.ops.torchexec_kit.scale_add_(a0, torch.ones_like(a0), -1)")
    forward.append("    return (z, *out)")
    return forward, list(a.ir.inputs)


_IMPORTS = [
    "import torch",
    "from torch._higher_order_ops import scan, while_loop",
    "from torch._higher_order_ops.map import map as map_hop",
    "",
    "import torchexec.testing._control_flow  # registers torchexec_kit::scale_add_",
]


def _source(bodies: Sequence[_Body], forward: list[str], inputs: Sequence[InputSpec]) -> str:
    parts = ["\n".join(_IMPORTS), _HELPERS.strip()]
    parts += [_body_source(b.ir, i) for i, b in enumerate(bodies)]
    parts.append("\n".join(_module(forward, len(bodies))))
    made = ProgramIR(inputs=list(inputs)).module_code().split("def make_inputs():", 1)[1]
    parts.append("def make_inputs():" + made)
    return "\n\n\n".join(parts) + "\n"


_HOP_OF = {
    "cond": "higher_order.cond",
    "while_loop": "higher_order.while_loop",
    "map": "higher_order.map_impl",
    "scan": "higher_order.scan",
    "mutating_op": MUTATING_OP,
}


@st.composite
def control_flow_programs(
    draw: st.DrawFn, *, kinds: Sequence[str] = KINDS, max_nodes: int = 6
) -> ControlFlowProgram:
    """A generated program with one higher-order operator of ``kinds`` around generated
    bodies (see the module docstring); rejected when a body has no tensor input or output."""
    from hypothesis import reject

    kind = draw(st.sampled_from(list(kinds)))
    bodies = [_body(draw(programs(max_nodes=max_nodes)).ir)]
    if kind == "cond":
        bodies.append(_body(draw(programs(max_nodes=max_nodes)).ir))
    if any(b is None for b in bodies):
        reject()
    ready = [b for b in bodies if b is not None]
    a = ready[0]
    made: tuple[list[str], list[InputSpec]] | None
    builders: dict[str, Callable[[], tuple[list[str], list[InputSpec]] | None]] = {
        "cond": lambda: _cond(a, ready[-1]),
        "while_loop": lambda: _while_loop(a, draw(st.integers(0, 3))),
        "map": lambda: _map(a, draw(st.integers(1, 3))),
        "scan": lambda: _scan(a, draw(st.integers(1, 3))),
        "mutating_op": lambda: _mutating(a),
    }
    made = builders[kind]()
    if made is None:
        reject()
    forward, inputs = made
    operators = [op for b in ready for op in b.ir.operators] + [_HOP_OF[kind]]
    return ControlFlowProgram(kind, _source(ready, forward, inputs), operators)
