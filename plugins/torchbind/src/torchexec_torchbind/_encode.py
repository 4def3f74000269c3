"""Encode a load-time :class:`~torchexec_proxy.plan.Plan` as the typed tuple the C++ engine reads.

The encoded plan is also the engine's pickled state. Its shape is fixed (every field has one
type), so that Python hands it to C++ without per-element type inference, and TorchScript pickles
it as is. Layout (version 1; ``PlanState`` in ``csrc/engine/engine.h``)::

    ("torchexec.engine", 1,
     allowed_namespaces: [str],
     num_slots: int,
     inputs:    [(slot | -1, kind, dtype name | "", device type | "", device index | -1)],
     state:     [(slot, kind, name, value)],
     nodes:     [(name, kind, target, overload, args, outputs, result, frees)],
     outputs:   [arg],
     mutations: [(slot, "buffer" | "user_input", buffer name | "", input index | -1)])

Every argument (and program output) is one row ``(keyword, tag, ints, floats, text, value)``:
``keyword`` is ``""`` for a positional argument; tag ``"slot"`` (``ints = [slot]``), ``"slots"``
(a ``Tensor[]``/``Tensor?[]``: one slot each, ``-1`` for None), ``"mixed"`` (a ``SymInt[]``:
``(is_slot, value)`` pairs in ``ints``), or the kind of a static value: ``none``, ``int`` /
``bool`` (``ints``), ``float`` / ``complex`` (``floats``), ``str`` / ``dtype`` / ``layout`` /
``memory_format`` / ``device`` (``text``), ``ints`` / ``bools`` / ``floats`` (lists), ``tensor``
(``value``). ``result`` is ``"values"``, ``"list"`` (a returned ``Tensor[]`` spread over the
outputs) or ``"tuple"``. The C++ side turns statics into the IValues each schema argument takes
and validates everything.

A higher-order operator node (kind ``"hop"``, target ``cond`` / ``while_loop`` / ``map`` /
``scan`` / ``invoke_subgraph``, result ``"values"``) has the plan node's arguments
(``torchexec_proxy.plan.HOP_LAYOUTS``: a ``"slot"`` or ``"bool"`` predicate for ``cond``, then
``"slots"`` operand groups), then one row ``("", "engine", [], [], name, engine)`` per subgraph,
``engine`` a child ``torch.classes.torchexec.Engine`` built from the subplan (inputs of kind
``any``, no state, no mutations), and for ``while_loop`` optionally
``("max_iterations", "int", [n], ...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch

from torchexec import ProgramError
from torchexec_proxy.plan import MixedList, Plan, PlanNode, Slot, SlotList, Static, SubPlan

__all__ = [
    "ENGINE_FORMAT",
    "ENGINE_HOPS",
    "ENGINE_VERSION",
    "ArgRow",
    "InputKind",
    "InputSpec",
    "encode_plan",
    "encode_static",
]

ENGINE_FORMAT = "torchexec.engine"
ENGINE_VERSION = 1

ArgRow = tuple[str, str, list[int], list[float], str, Any]
"""One encoded argument: ``(keyword, tag, ints, floats, text, value)``."""

_INT64 = (-(2**63), 2**63 - 1)


class InputKind(StrEnum):
    """What a user input must be (``InputKind`` in ``csrc/engine/engine.h``); the plan carries
    the value, which the engine turns into its own enum when it is built."""

    TENSOR = "tensor"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    ANY = "any"
    """No check."""


@dataclass(frozen=True)
class InputSpec:
    """What the engine checks of one flat user input at every ``run``.

    Attributes:
        kind: an :class:`InputKind` or its value (``"tensor"``, ``"int"``, ...).
        dtype: the tensor's dtype, or ``None`` for any.
        device: the tensor's device, or ``None`` for any; a device without an index accepts
            every index of its type.
    """

    kind: InputKind | str = InputKind.ANY
    dtype: torch.dtype | None = None
    device: torch.device | None = None

    def __post_init__(self) -> None:
        try:
            kind = InputKind(self.kind)
        except ValueError:
            known = ", ".join(k.value for k in InputKind)
            raise ProgramError(
                f"unknown input kind {self.kind!r}; expected one of {known}"
            ) from None
        object.__setattr__(self, "kind", kind)

    def encode(self, slot: int | None) -> tuple[int, str, str, str, int]:
        """The engine's ``(slot, kind, dtype, device type, device index)`` row."""
        dtype = _dtype_name(self.dtype) if self.dtype is not None else ""
        dev_type = self.device.type if self.device is not None else ""
        dev_index = -1
        if self.device is not None and self.device.index is not None:
            dev_index = self.device.index
        return (-1 if slot is None else slot, str(self.kind), dtype, dev_type, dev_index)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _int(value: int) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise ProgramError(f"the integer {value} does not fit in 64 bits")
    return value


def _row(tag: str, ints: Sequence[int] = (), floats: Sequence[float] = (), text: str = "",
         value: Any = None, keyword: str = "") -> ArgRow:  # fmt: skip
    return (keyword, tag, [_int(i) for i in ints], [float(f) for f in floats], text, value)


def _list_row(values: Sequence[object]) -> ArgRow:
    if all(isinstance(v, bool) for v in values) and values:
        return _row("bools", ints=[int(v) for v in values])  # type: ignore[call-overload]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return _row("ints", ints=values)  # type: ignore[arg-type]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return _row("floats", floats=values)  # type: ignore[arg-type]
    raise ProgramError(f"cannot pass the list {list(values)!r} as a static argument")


def encode_static(value: object) -> ArgRow:
    """Encode a static value as an argument row.

    Raises:
        ProgramError: the value has no static encoding.
    """
    if value is None:
        return _row("none")
    if isinstance(value, bool):
        return _row("bool", ints=[int(value)])
    if isinstance(value, int):
        return _row("int", ints=[value])
    if isinstance(value, float):
        return _row("float", floats=[value])
    if isinstance(value, complex):
        return _row("complex", floats=[value.real, value.imag])
    if isinstance(value, str):
        return _row("str", text=value)
    if isinstance(value, torch.dtype):
        return _row("dtype", text=_dtype_name(value))
    if isinstance(value, torch.layout):
        return _row("layout", text=str(value).removeprefix("torch."))
    if isinstance(value, torch.memory_format):
        return _row("memory_format", text=str(value).removeprefix("torch."))
    if isinstance(value, torch.device):
        return _row("device", text=str(value))
    if isinstance(value, torch.Tensor):
        return _row("tensor", value=value)
    if isinstance(value, (list, tuple)):
        return _list_row(value)
    raise ProgramError(f"cannot pass a {type(value).__name__} ({value!r}) as a static argument")


def _encode_arg(arg: object, where: str, keyword: str = "") -> ArgRow:
    try:
        if isinstance(arg, Static):
            row = encode_static(arg.value)
        elif isinstance(arg, Slot):
            row = _row("slot", ints=[arg.index])
        elif isinstance(arg, SlotList):
            row = _row("slots", ints=[-1 if i is None else i for i in arg.items])
        elif isinstance(arg, MixedList):
            ints: list[int] = []
            for item in arg.items:
                ints += [1, item.index] if isinstance(item, Slot) else [0, item]
            row = _row("mixed", ints=ints)
        else:
            raise ProgramError(f"unknown plan argument {arg!r}")
    except ProgramError as exc:
        raise ProgramError(f"{where}: {exc}") from None
    return (keyword, *row[1:])


def _op_name(node: PlanNode) -> tuple[str, str]:
    """``("aten::add", "Tensor")`` for a node calling ``aten.add.Tensor``."""
    schema = getattr(node.op, "_schema", None)
    if schema is not None:
        return str(schema.name), str(schema.overload_name)
    # A hand-built plan may carry only the serialized target.
    target = node.target.removeprefix("torch.ops.")
    if "::" in target:
        name, _, overload = target.partition(".")
        return name, "" if overload == "default" else overload
    parts = target.split(".")
    if len(parts) != 3:
        raise ProgramError(
            f"node {node.name!r}: cannot read the operator of target {node.target!r} "
            "(expected torch.ops.<namespace>.<name>.<overload>)"
        )
    ns, op, overload = parts
    return f"{ns}::{op}", "" if overload == "default" else overload


ENGINE_HOPS = frozenset({"cond", "while_loop", "map", "scan", "invoke_subgraph"})
"""The higher-order operators the engine runs (``"hop"`` plan nodes), on child engines."""


class _Context:
    """What encoding a plan's nodes needs besides each node: the namespaces its child engines
    allow, the ``while_loop`` bound, and the child engine of each subplan already built (a
    subgraph called several times, ``invoke_subgraph``, is built once)."""

    def __init__(self, allowed_namespaces: list[str], max_loop_iterations: int | None) -> None:
        self.allowed_namespaces = allowed_namespaces
        self.max_loop_iterations = max_loop_iterations
        self.engines: dict[int, tuple[SubPlan, Any]] = {}

    def engine(self, sub: SubPlan) -> Any:
        known = self.engines.get(id(sub))
        if known is not None:
            return known[1]
        from torchexec_torchbind._engine import engine_from_plan_state

        state: tuple[Any, ...] = (
            ENGINE_FORMAT,
            ENGINE_VERSION,
            self.allowed_namespaces,
            sub.num_slots,
            [InputSpec().encode(slot) for slot in sub.inputs],
            [],
            [_encode_node(n, self) for n in sub.nodes],
            [_encode_arg(out, f"subgraph {sub.name!r}, output {i}")
             for i, out in enumerate(sub.outputs)],
            [],
        )  # fmt: skip
        try:
            engine = engine_from_plan_state(state)
        except ProgramError as exc:
            raise ProgramError(f"subgraph {sub.name!r}: {exc}") from exc.__cause__
        self.engines[id(sub)] = (sub, engine)  # the plan keeps sub alive: its id stays unique
        return engine


def _encode_hop(node: PlanNode, ctx: _Context) -> tuple[Any, ...]:
    where = f"node {node.name!r} ({node.target})"
    if node.op not in ENGINE_HOPS:
        raise ProgramError(
            f"{where}: the torchbind executor does not run the higher-order operator "
            f"{node.op!r}; run the program on the proxy executor, or on a priority list such as "
            "executor=['torchbind', 'proxy']"
        )
    args = [_encode_arg(a, f"{where}, argument {i}") for i, a in enumerate(node.args)]
    args += [("", "engine", [], [], sub.name, ctx.engine(sub)) for sub in node.subplans]
    if node.op == "while_loop" and ctx.max_loop_iterations is not None:
        args.append(_row("int", ints=[ctx.max_loop_iterations], keyword="max_iterations"))
    outputs = [-1 if o is None else o for o in node.outputs]
    return (node.name, "hop", str(node.op), "", args, outputs, "values", list(node.free_after))


def _encode_node(node: PlanNode, ctx: _Context) -> tuple[Any, ...]:
    where = f"node {node.name!r}"
    if node.kind == "op":
        target, overload = _op_name(node)
    elif node.kind == "torchbind":
        target, overload = "call_torchbind", ""
    elif node.kind == "python":
        target, overload = node.target, ""
    elif node.kind == "hop":
        return _encode_hop(node, ctx)
    else:
        raise ProgramError(f"{where}: unknown node kind {node.kind!r}")
    args = [_encode_arg(a, f"{where}, argument {i}") for i, a in enumerate(node.args)]
    args += [
        _encode_arg(a, f"{where}, argument {name!r}", keyword=name)
        for name, a in node.kwargs.items()
    ]
    outputs = [-1 if o is None else o for o in node.outputs]
    if node.returns_list:
        result = "list"
    elif getattr(node, "returns_tuple", False):
        result = "tuple"
    else:
        result = "values"
    return (node.name, node.kind, target, overload, args, outputs, result, list(node.free_after))


def _encode_state(plan: Plan) -> tuple[list[tuple[int, str, str, Any]], int]:
    """State rows, plus a slot for each mutated buffer the graph itself does not read."""
    rows: list[tuple[int, str, str, Any]] = [
        (entry.slot, entry.kind, entry.name, plan.state_values.get(entry.name))
        for entry in plan.state
    ]
    num_slots = plan.num_slots
    names = {e.name for e in plan.state}
    for m in plan.mutations:
        if m.kind == "buffer" and m.target not in names:
            target = str(m.target)
            value = plan.state_values.get(target)
            if not isinstance(value, torch.Tensor):
                raise ProgramError(f"mutated buffer {target!r} has no tensor value")
            rows.append((num_slots, "buffer", target, value))
            names.add(target)
            num_slots += 1
    return rows, num_slots


def _input_index(target: object) -> int:
    if isinstance(target, bool) or not isinstance(target, int):
        raise ProgramError(f"a user-input mutation must name the input's index, got {target!r}")
    return target


def encode_plan(
    plan: Plan,
    *,
    allowed_namespaces: Iterable[str],
    input_specs: Sequence[InputSpec] | None = None,
    max_loop_iterations: int | None = None,
) -> tuple[Any, ...]:
    """Encode ``plan`` for ``torch.classes.torchexec.Engine``.

    The subgraphs of higher-order operators become child engines, built here (the library must
    be loadable).

    Args:
        plan: a plan made by ``torchexec_proxy.load_plan`` (or by hand, in tests).
        allowed_namespaces: operator namespaces the engine may call (``aten``, ``prims``, ...).
        input_specs: what to check of each flat user input at run; ``None`` checks nothing but
            the count.
        max_loop_iterations: bound on the iterations of each ``while_loop`` (``None``: none).

    Raises:
        ProgramError: the plan holds something the engine cannot represent.
    """
    if input_specs is None:
        input_specs = [InputSpec() for _ in plan.inputs]
    if len(input_specs) != len(plan.inputs):
        raise ProgramError(
            f"the plan has {len(plan.inputs)} user inputs but {len(input_specs)} input specs "
            "were given"
        )
    inputs = [spec.encode(slot) for spec, slot in zip(input_specs, plan.inputs, strict=True)]
    state, num_slots = _encode_state(plan)
    namespaces = sorted(set(allowed_namespaces))
    ctx = _Context(namespaces, max_loop_iterations)
    nodes = [_encode_node(n, ctx) for n in plan.nodes]
    outputs: list[ArgRow] = []
    for i, out in enumerate(plan.outputs):
        if not isinstance(out, (Slot, Static)):
            raise ProgramError(f"program output {i}: unknown plan output {out!r}")
        outputs.append(_encode_arg(out, f"program output {i}"))
    mutations = [
        (m.slot, m.kind, str(m.target), -1)
        if m.kind == "buffer"
        else (m.slot, m.kind, "", _input_index(m.target))
        for m in plan.mutations
    ]
    return (
        ENGINE_FORMAT,
        ENGINE_VERSION,
        namespaces,
        num_slots,
        inputs,
        state,
        nodes,
        outputs,
        mutations,
    )
