"""The generated program before it becomes FX: inputs, constants, calls and outputs by name.

A :class:`ProgramIR` is small and immutable in use; it turns into an ATen-level
``torch.fx.GraphModule`` (:meth:`ProgramIR.graph_module`) and into Python source that rebuilds
the same program (:meth:`ProgramIR.module_code`), which is what a failure report prints.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.fx

from torchexec.testing._values import (
    InputSpec,
    _base_values,
    dtype_name,
    make_input,
    strided_literal,
    tensor_literal,
)

__all__ = ["Call", "ObjectSpec", "ProgramIR", "Ref", "call_dtype", "map_refs", "render_value"]


@dataclass(frozen=True)
class Ref:
    """A value of the program: input ``x3``, constant ``c0``, object ``o0`` or call result ``v2``.

    ``index`` selects one item of a call that returns several tensors.
    """

    name: str
    index: int | None = None

    def code(self) -> str:
        """The Python expression for this value inside ``forward``."""
        return self.name if self.index is None else f"{self.name}[{self.index}]"


def map_refs(value: Any, fn: Callable[[Ref], Any]) -> Any:
    """``value`` with every :class:`Ref` inside it (through lists, tuples and dicts) replaced
    by ``fn(ref)``; everything else is kept as it is.

    >>> map_refs((Ref("x0"), [Ref("v1", 0), 2], {"alpha": Ref("c0")}), lambda r: r.name)
    ('x0', ['v1', 2], {'alpha': 'c0'})
    """
    if isinstance(value, Ref):
        return fn(value)
    if isinstance(value, list):
        return [map_refs(x, fn) for x in value]
    if isinstance(value, tuple):
        return tuple(map_refs(x, fn) for x in value)
    if isinstance(value, Mapping):
        return {k: map_refs(v, fn) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ObjectSpec:
    """A TorchBind object the program holds: ``torch.classes.<qualname>(*init)``.

    Attributes:
        qualname: ``namespace.Class`` of the TorchBind class.
        init: the constructor's arguments.
        stateful: whether calling its methods changes the object (a running total); such an
            object is made fresh for every run, and a call on it is never cut out of its program.
        setup: Python lines a reproduction script runs before making the object (importing and
            loading the library that defines the class).
    """

    qualname: str
    init: tuple[Any, ...]
    stateful: bool = False
    setup: tuple[str, ...] = ()

    def make(self) -> Any:
        """A fresh object (stateful objects must not be shared between runs)."""
        ns, cls = self.qualname.split(".")
        return getattr(getattr(torch.classes, ns), cls)(*self.init)

    def code(self) -> str:
        """Python source that makes the object."""
        args = ", ".join(render_value(a) for a in self.init)
        return f"torch.classes.{self.qualname}({args})"


@dataclass(frozen=True)
class Call:
    """One operator call. ``args``/``kwargs`` hold :class:`Ref` where values of the program go.

    Attributes:
        name: the result's name (``v0``, ``v1``...).
        op: the catalog name of the operator (``aten.add.Tensor``).
        target: what the FX node calls.
        args, kwargs: the arguments.
        n_outputs: ``None`` for a single tensor, else the number of tensors returned.
        setup: Python lines a reproduction runs first (from the operator's ``OpSpec``).
        dtype: the dtype the call exercises (see :func:`call_dtype`), ``""`` when unknown.
    """

    name: str
    op: str
    target: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    n_outputs: int | None = None
    setup: tuple[str, ...] = ()
    dtype: str = ""

    def refs(self) -> list[Ref]:
        """The program values this call reads."""
        out: list[Ref] = []
        map_refs((self.args, self.kwargs), out.append)
        return out

    def with_refs(self, fn: Callable[[Ref], Any], name: str | None = None) -> Call:
        """This call with every argument ``Ref`` replaced by ``fn(ref)`` (and renamed)."""
        return replace(
            self,
            name=self.name if name is None else name,
            args=map_refs(self.args, fn),
            kwargs=map_refs(self.kwargs, fn),
        )

    def results(self) -> list[Ref]:
        """The values this call produces."""
        if self.n_outputs is None:
            return [Ref(self.name)]
        return [Ref(self.name, i) for i in range(self.n_outputs)]

    def target_code(self) -> str:
        """How the call is spelled in generated source."""
        if self.target is torch.ops.higher_order.call_torchbind:
            return "torch.ops.higher_order.call_torchbind"
        return "torch.ops." + str(self.target)


def call_dtype(args: object, kwargs: Mapping[str, Any], result: object) -> str:
    """The dtype a call exercises: that of its first tensor argument that is not a bool mask
    (a bool tensor when all are), else its ``dtype`` keyword, else its first result's.

    >>> x = torch.zeros(2, dtype=torch.int64)
    >>> call_dtype((torch.zeros(2, dtype=torch.bool), x), {}, None)
    'int64'
    >>> call_dtype(([2],), {"dtype": torch.float16}, None)
    'float16'
    """
    tensors: list[torch.Tensor] = []
    _tensors(args, tensors)
    for t in tensors:
        if t.dtype != torch.bool:
            return dtype_name(t.dtype)
    if tensors:
        return "bool"
    given = kwargs.get("dtype")
    if isinstance(given, torch.dtype):
        return dtype_name(given)
    out: list[torch.Tensor] = []
    _tensors(result, out)
    return dtype_name(out[0].dtype) if out else ""


def _tensors(value: object, out: list[torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tensors(v, out)


def render_value(a: object) -> str:
    """Python source for an argument value."""
    if isinstance(a, Ref):
        return a.code()
    if isinstance(a, torch.Tensor):
        return tensor_literal(a)
    if isinstance(a, torch.dtype):
        return f"torch.{dtype_name(a)}"
    if isinstance(a, torch.memory_format):
        return str(a)
    if isinstance(a, float):
        if math.isnan(a):
            return 'float("nan")'
        if math.isinf(a):
            return 'float("inf")' if a > 0 else 'float("-inf")'
        return repr(a)
    if isinstance(a, list):
        return "[" + ", ".join(render_value(x) for x in a) + "]"
    if isinstance(a, tuple):
        inner = ", ".join(render_value(x) for x in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    return repr(a)


@dataclass
class ProgramIR:
    """A generated program: inputs ``x*``, tensor constants ``c*``, TorchBind objects ``o*``,
    calls ``v*`` in order, and the outputs."""

    inputs: list[InputSpec] = field(default_factory=list)
    constants: list[torch.Tensor] = field(default_factory=list)
    objects: list[ObjectSpec] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    outputs: list[Ref] = field(default_factory=list)

    # --- derived views ---------------------------------------------------------------------

    @property
    def operators(self) -> list[str]:
        """Catalog names of the operators called, in call order (repeats included)."""
        return [c.op for c in self.calls]

    @property
    def operator_dtypes(self) -> list[tuple[str, str]]:
        """``(operator, dtype)`` of every call, in call order (repeats included)."""
        return [(c.op, c.dtype) for c in self.calls]

    @property
    def stateful(self) -> bool:
        """Whether running the program changes an object it holds."""
        return any(o.stateful for o in self.objects)

    def object_of(self, ref: Ref) -> ObjectSpec:
        """The object ``ref`` (``o3``) names."""
        return self.objects[int(ref.name[1:])]

    def call_of(self, ref: Ref) -> Call | None:
        """The call that produces ``ref`` (``None`` for inputs, constants and objects)."""
        for c in self.calls:
            if c.name == ref.name:
                return c
        return None

    def prefix(self, k: int) -> ProgramIR:
        """The program cut after call ``k``, returning that call's results (for localisation)."""
        calls = self.calls[: k + 1]
        return replace(self, calls=list(calls), outputs=calls[-1].results())

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        """Fresh input tensors (the same values every time)."""
        return tuple(make_input(s) for s in self.inputs)

    # --- minimising --------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Every value of the program by name, computed eagerly on fresh inputs and objects."""
        env: dict[str, Any] = {}
        for i, x in enumerate(self.make_inputs()):
            env[f"x{i}"] = x
        for i, const in enumerate(self.constants):
            env[f"c{i}"] = const
        for i, o in enumerate(self.objects):
            env[f"o{i}"] = o.make()

        def value(ref: Ref) -> Any:
            v = env[ref.name]
            return v if ref.index is None else v[ref.index]

        with torch.no_grad():
            for c in self.calls:
                env[c.name] = c.target(*map_refs(c.args, value), **map_refs(c.kwargs, value))
        return env

    def sliced(self, k: int) -> ProgramIR:
        """Only call ``k`` and the calls it depends on, returning call ``k``'s results."""
        needed = {self.calls[k].name}
        for c in reversed(self.calls[: k + 1]):
            if c.name in needed:
                needed.update(r.name for r in c.refs())
        calls = [c for c in self.calls[: k + 1] if c.name in needed]
        return _compact(self, calls, self.calls[k].results())

    def isolated(self, k: int, env: dict[str, Any]) -> ProgramIR | None:
        """Call ``k`` alone, its tensor arguments made inputs holding the values they had.

        ``None`` when the call reads a stateful object (its state depends on earlier calls).
        """
        call = self.calls[k]
        if any(self.object_of(r).stateful for r in call.refs() if r.name.startswith("o")):
            return None
        out = ProgramIR(objects=list(self.objects))
        names: dict[Ref, Ref] = {}

        def lift(ref: Ref) -> Ref:
            if ref.name.startswith("o"):
                return ref
            if ref not in names:
                v = env[ref.name] if ref.index is None else env[ref.name][ref.index]
                names[ref] = Ref(f"x{len(out.inputs)}")
                out.inputs.append(InputSpec.of(v))
            return names[ref]

        new = call.with_refs(lift, name="v0")
        out.calls = [new]
        out.outputs = new.results()
        return _compact(out, out.calls, out.outputs)

    # --- FX ----------------------------------------------------------------------------------

    def graph_module(self) -> torch.fx.GraphModule:
        """The program as an ATen-level GraphModule (fresh TorchBind objects each time)."""
        root = torch.nn.Module()
        graph = torch.fx.Graph()
        env: dict[str, torch.fx.Node] = {}
        items: dict[tuple[str, int], torch.fx.Node] = {}
        for i in range(len(self.inputs)):
            env[f"x{i}"] = graph.placeholder(f"x{i}")
        for i, const in enumerate(self.constants):
            setattr(root, f"c{i}", const)
            env[f"c{i}"] = graph.get_attr(f"c{i}")
        for i, o in enumerate(self.objects):
            setattr(root, f"o{i}", o.make())
            env[f"o{i}"] = graph.get_attr(f"o{i}")

        def lookup(ref: Ref) -> torch.fx.Node:
            if ref.index is None:
                return env[ref.name]
            key = (ref.name, ref.index)
            if key not in items:
                items[key] = graph.call_function(operator.getitem, (env[ref.name], ref.index))
            return items[key]

        for c in self.calls:
            env[c.name] = graph.call_function(
                c.target, map_refs(c.args, lookup), map_refs(c.kwargs, lookup)
            )
        graph.output(tuple(lookup(r) for r in self.outputs))
        return torch.fx.GraphModule(root, graph, class_name="GeneratedProgram")

    # --- source ------------------------------------------------------------------------------

    def module_code(self, literal_limit: int = 512) -> str:
        """Python source defining ``Program`` (an ``nn.Module``) and ``make_inputs()``."""
        lines = ["class Program(torch.nn.Module):"]
        if self.constants or self.objects:
            lines += ["    def __init__(self) -> None:", "        super().__init__()"]
            for i, const in enumerate(self.constants):
                lines.append(f"        self.c{i} = {tensor_literal(const)}")
            for i, o in enumerate(self.objects):
                lines.append(f"        self.o{i} = {o.code()}")
            lines.append("")
        params = ", ".join(["self", *(f"x{i}" for i in range(len(self.inputs)))])
        lines.append(f"    def forward({params}):")
        for i in range(len(self.constants)):
            lines.append(f"        c{i} = self.c{i}")
        for i in range(len(self.objects)):
            lines.append(f"        o{i} = self.o{i}")
        for c in self.calls:
            args = [render_value(a) for a in c.args]
            args += [f"{k}={render_value(v)}" for k, v in c.kwargs.items()]
            lines.append(f"        {c.name} = {c.target_code()}({', '.join(args)})")
        lines.append(f"        return {render_value(tuple(self.outputs))}")
        lines += ["", "", "def make_inputs():", "    return ("]
        for spec in self.inputs:
            lines.append(f"        {_input_code(spec, literal_limit)},")
        lines.append("    )")
        return "\n".join(lines)


def _compact(ir: ProgramIR, calls: list[Call], outputs: list[Ref]) -> ProgramIR:
    """A program of ``calls`` and ``outputs`` keeping only the inputs, constants and objects
    they read, renumbered (``x0, x1, ...``)."""
    used = {r.name for c in calls for r in c.refs()} | {r.name for r in outputs}
    rename: dict[str, str] = {}
    out = ProgramIR()
    for i, spec in enumerate(ir.inputs):
        if f"x{i}" in used:
            rename[f"x{i}"] = f"x{len(out.inputs)}"
            out.inputs.append(spec)
    for i, const in enumerate(ir.constants):
        if f"c{i}" in used:
            rename[f"c{i}"] = f"c{len(out.constants)}"
            out.constants.append(const)
    for i, o in enumerate(ir.objects):
        if f"o{i}" in used:
            rename[f"o{i}"] = f"o{len(out.objects)}"
            out.objects.append(o)
    for n, c in enumerate(calls):
        rename[c.name] = f"v{n}"

    def fix(ref: Ref) -> Ref:
        return Ref(rename[ref.name], ref.index)

    out.calls = [c.with_refs(fix, name=rename[c.name]) for c in calls]
    out.outputs = [fix(r) for r in outputs]
    return out


def _input_code(spec: InputSpec, literal_limit: int) -> str:
    if spec.literal is not None:
        return strided_literal(spec.literal)
    n = math.prod(spec.base_shape)
    if n <= literal_limit:
        return tensor_literal(_base_values(spec)) + spec.view_code()
    return (
        "torchexec.testing.make_input(torchexec.testing.InputSpec("
        f"shape={spec.shape!r}, dtype=torch.{dtype_name(spec.dtype)}, layout={spec.layout!r}, "
        f"seed={spec.seed}, low={spec.low}, high={spec.high}, specials={spec.specials}))"
    )


def reproduction(
    ir: ProgramIR,
    executor: str,
    reference: str,
    *,
    exact: bool,
    rtol: float = 0.0,
    atol: float = 0.0,
    header: Sequence[str] = (),
) -> str:
    """A self-contained script that runs ``ir`` on both executors and compares the results."""
    imports = ["import torch", "", "import torchexec"]
    if any(_input_code(s, 512).startswith("torchexec.testing") for s in ir.inputs):
        imports.append("import torchexec.testing")
    setup = [*(line for o in ir.objects for line in o.setup),
             *(line for c in ir.calls for line in c.setup)]  # fmt: skip
    if setup:
        imports += ["", *dict.fromkeys(setup)]
    tol = "rtol=0, atol=0" if exact else f"rtol={rtol!r}, atol={atol!r}"
    body = [
        *(f"# {h}" for h in header),
        *imports,
        "",
        "",
        ir.module_code(),
        "",
        "",
        f'expected = torchexec.execute(Program(), *make_inputs(), executor="{reference}")',
        f'actual = torchexec.execute(Program(), *make_inputs(), executor="{executor}")',
        f"torch.testing.assert_close(actual, expected, {tol}, equal_nan=True)",
    ]
    return "\n".join(body) + "\n"
