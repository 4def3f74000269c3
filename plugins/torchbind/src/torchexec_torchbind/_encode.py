"""Encode a load-time :class:`~torchexec_proxy.plan.Plan` as the nested tuples the C++ engine reads.

The encoding is a plain IValue (tuples, ints, floats, bools, strings, tensors and TorchBind
objects), so that it crosses into C++ through TorchBind's ``Any`` argument and is also the
engine's pickled state. Layout (version 1)::

    ("torchexec.engine", 1,
     allowed_namespaces: (str, ...),
     num_slots: int,
     inputs:    ((slot | -1, kind, dtype name | "", device type | "", device index | -1), ...),
     state:     ((slot, kind, name, value), ...),
     nodes:     ((name, kind, target, overload, args, kwargs, outputs, result, frees), ...),
     outputs:   (("slot", slot) | ("static", static), ...),
     mutations: ((slot, "buffer" | "user_input", buffer name | "", input index | -1), ...))

An argument is ``("slot", i)``, ``("slots", (i | -1, ...))``, ``("mixed", (("int", v) |
("slot", i), ...))`` or ``("static", static)``; a static is a ``(tag, payload)`` pair whose tag
names its kind (``int``, ``float``, ``bool``, ``str``, ``none``, ``complex``, ``dtype``,
``layout``, ``memory_format``, ``device``, ``tensor``, ``list``). ``result`` is ``"values"``,
``"list"`` (a returned ``Tensor[]`` spread over the outputs) or ``"tuple"``. The C++ side turns
statics into the IValues each schema argument takes and validates everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchexec_proxy.plan import MixedList, Plan, PlanNode, Slot, SlotList, Static

from torchexec import ProgramError

__all__ = ["ENGINE_FORMAT", "ENGINE_VERSION", "InputSpec", "encode_plan", "encode_static"]

ENGINE_FORMAT = "torchexec.engine"
ENGINE_VERSION = 1

_KINDS = ("tensor", "int", "float", "bool", "str", "any")


@dataclass(frozen=True)
class InputSpec:
    """What the engine checks of one flat user input at every ``run``.

    Attributes:
        kind: ``"tensor"``, ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"any"`` (no check).
        dtype: the tensor's dtype, or ``None`` for any.
        device: the tensor's device, or ``None`` for any; a device without an index accepts
            every index of its type.
    """

    kind: str = "any"
    dtype: torch.dtype | None = None
    device: torch.device | None = None

    def encode(self, slot: int | None) -> tuple[int, str, str, str, int]:
        """The engine's ``(slot, kind, dtype, device type, device index)`` entry."""
        if self.kind not in _KINDS:
            raise ProgramError(f"unknown input kind {self.kind!r}; expected one of {_KINDS}")
        dtype = _dtype_name(self.dtype) if self.dtype is not None else ""
        dev_type = self.device.type if self.device is not None else ""
        dev_index = -1
        if self.device is not None and self.device.index is not None:
            dev_index = self.device.index
        return (-1 if slot is None else slot, self.kind, dtype, dev_type, dev_index)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def encode_static(value: object) -> tuple[str, Any]:
    """Encode a static value as a ``(tag, payload)`` pair.

    Raises:
        ProgramError: the value has no static encoding.
    """
    if value is None:
        return ("none", 0)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, complex):
        return ("complex", (value.real, value.imag))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, torch.dtype):
        return ("dtype", _dtype_name(value))
    if isinstance(value, torch.layout):
        return ("layout", str(value).removeprefix("torch."))
    if isinstance(value, torch.memory_format):
        return ("memory_format", str(value).removeprefix("torch."))
    if isinstance(value, torch.device):
        return ("device", str(value))
    if isinstance(value, torch.Tensor):
        return ("tensor", value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(encode_static(v) for v in value))
    raise ProgramError(f"cannot pass a {type(value).__name__} ({value!r}) as a static argument")


def _encode_arg(arg: object, where: str) -> tuple[str, Any]:
    if isinstance(arg, Static):
        try:
            return ("static", encode_static(arg.value))
        except ProgramError as exc:
            raise ProgramError(f"{where}: {exc}") from None
    if isinstance(arg, Slot):
        return ("slot", arg.index)
    if isinstance(arg, SlotList):
        return ("slots", tuple(-1 if i is None else i for i in arg.items))
    if isinstance(arg, MixedList):
        return (
            "mixed",
            tuple(("slot", i.index) if isinstance(i, Slot) else ("int", i) for i in arg.items),
        )
    raise ProgramError(f"{where}: unknown plan argument {arg!r}")


def _op_name(node: PlanNode) -> tuple[str, str]:
    """``("aten::add", "Tensor")`` for a node calling ``aten.add.Tensor``."""
    schema = getattr(node.op, "_schema", None)
    if schema is not None:
        return str(schema.name), str(schema.overload_name)
    # A hand-built plan may carry only the serialized target.
    target = node.target.removeprefix("torch.ops.")
    parts = target.split(".")
    if "::" in target:
        name, _, overload = target.partition(".")
        return name, "" if overload == "default" else overload
    if len(parts) != 3:
        raise ProgramError(
            f"node {node.name!r}: cannot read the operator of target {node.target!r} "
            "(expected torch.ops.<namespace>.<name>.<overload>)"
        )
    ns, op, overload = parts
    return f"{ns}::{op}", "" if overload == "default" else overload


def _encode_node(node: PlanNode) -> tuple[Any, ...]:
    where = f"node {node.name!r}"
    if node.kind == "op":
        target, overload = _op_name(node)
    elif node.kind == "torchbind":
        target, overload = "call_torchbind", ""
    elif node.kind == "python":
        target, overload = node.target, ""
    else:
        raise ProgramError(f"{where}: unknown node kind {node.kind!r}")
    args = tuple(_encode_arg(a, f"{where}, argument {i}") for i, a in enumerate(node.args))
    kwargs = tuple(
        (name, _encode_arg(a, f"{where}, argument {name!r}")) for name, a in node.kwargs.items()
    )
    outputs = tuple(-1 if o is None else o for o in node.outputs)
    if node.returns_list:
        result = "list"
    elif getattr(node, "returns_tuple", False):
        result = "tuple"
    else:
        result = "values"
    return (node.name, node.kind, target, overload, args, kwargs, outputs, result,
            tuple(node.free_after))  # fmt: skip


def _encode_state(plan: Plan) -> tuple[list[tuple[int, str, str, Any]], int]:
    """State entries, plus a slot for each mutated buffer the graph itself does not read."""
    entries: list[tuple[int, str, str, Any]] = []
    for entry in plan.state:
        entries.append((entry.slot, entry.kind, entry.name, plan.state_values.get(entry.name)))
    num_slots = plan.num_slots
    names = {e.name for e in plan.state}
    for m in plan.mutations:
        if m.kind == "buffer" and m.target not in names:
            target = str(m.target)
            value = plan.state_values.get(target)
            if not isinstance(value, torch.Tensor):
                raise ProgramError(f"mutated buffer {target!r} has no tensor value")
            entries.append((num_slots, "buffer", target, value))
            names.add(target)
            num_slots += 1
    return entries, num_slots


def encode_plan(
    plan: Plan,
    *,
    allowed_namespaces: Iterable[str],
    input_specs: Sequence[InputSpec] | None = None,
) -> tuple[Any, ...]:
    """Encode ``plan`` for ``torch.classes.torchexec.Engine``.

    Args:
        plan: a plan made by ``torchexec_proxy.load_plan`` (or by hand, in tests).
        allowed_namespaces: operator namespaces the engine may call (``aten``, ``prims``, ...).
        input_specs: what to check of each flat user input at run; ``None`` checks nothing but
            the count.

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
    inputs = tuple(spec.encode(slot) for spec, slot in zip(input_specs, plan.inputs, strict=True))
    state, num_slots = _encode_state(plan)
    nodes = tuple(_encode_node(n) for n in plan.nodes)
    outputs: list[tuple[str, Any]] = []
    for i, out in enumerate(plan.outputs):
        if isinstance(out, Slot):
            outputs.append(("slot", out.index))
        elif isinstance(out, Static):
            try:
                outputs.append(("static", encode_static(out.value)))
            except ProgramError as exc:
                raise ProgramError(f"program output {i}: {exc}") from None
        else:
            raise ProgramError(f"program output {i}: unknown plan output {out!r}")
    mutations = tuple(
        (m.slot, m.kind, str(m.target), -1)
        if m.kind == "buffer"
        else (m.slot, m.kind, "", _input_index(m.target))
        for m in plan.mutations
    )
    return (
        ENGINE_FORMAT,
        ENGINE_VERSION,
        tuple(sorted(set(allowed_namespaces))),
        num_slots,
        inputs,
        tuple(state),
        nodes,
        tuple(outputs),
        mutations,
    )


def _input_index(target: object) -> int:
    if isinstance(target, bool) or not isinstance(target, int):
        raise ProgramError(f"a user-input mutation must name the input's index, got {target!r}")
    return target

