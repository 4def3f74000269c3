"""A reference for the torchbind engine: the encoded plan interpreted in Python.

The encoded plan's layout is documented in ``torchexec_torchbind/_encode.py``. This interpreter
reads it the way that documentation says, independently of the C++ engine, and runs every node
with ``torch.ops`` (the same calls eager PyTorch makes): the engine must either reject a plan
when it is built, or compute what this computes.

It validates nothing on purpose beyond what running needs; a plan it cannot run is reported as
a ``run_error``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .reference import RefResult, describe

__all__ = ["copy_plan", "run_plan"]

_INT64 = (-(2**63), 2**63 - 1)

_PYTHON: dict[str, Callable[..., Any]] = {
    **{
        f"_operator.{n}": getattr(operator, n)
        for n in (
            "add",
            "sub",
            "mul",
            "truediv",
            "floordiv",
            "mod",
            "pow",
            "neg",
            "pos",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "and_",
            "or_",
            "not_",
            "lshift",
            "rshift",
        )
    },
    "math.trunc": math.trunc,
    "math.ceil": math.ceil,
    "math.floor": math.floor,
    "torch.sym_not": operator.not_,
    "torch.sym_int": int,
    "torch.sym_float": float,
    "torch.sym_max": max,
    "torch.sym_min": min,
    "torch._sym_sqrt": math.sqrt,
    "torch.sym_ite": lambda c, a, b: a if c else b,
}


class PlanError(Exception):
    """The interpreter cannot run the plan."""


def _slot(slots: list[Any], index: int) -> Any:
    if not 0 <= index < len(slots):
        raise PlanError(f"slot {index} out of range")
    return slots[index]


def _named(module: Any, name: str, kind: type) -> Any:
    value = getattr(module, name, None)
    if not isinstance(value, kind):
        raise PlanError(f"unknown {kind.__name__} {name!r}")
    return value


def _decode(row: Sequence[Any], slots: list[Any]) -> Any:
    _, tag, ints, floats, text, value = row
    if tag == "slot":
        if len(ints) != 1:
            raise PlanError("a slot row needs one int")
        return _slot(slots, ints[0])
    if tag == "slots":
        return [None if i == -1 else _slot(slots, i) for i in ints]
    if tag == "mixed":
        if len(ints) % 2:
            raise PlanError("mixed needs pairs")
        return [
            _slot(slots, ints[k + 1]) if ints[k] else ints[k + 1] for k in range(0, len(ints), 2)
        ]
    scalars: dict[str, Callable[[], Any]] = {
        "none": lambda: None,
        "int": lambda: _one(ints),
        "bool": lambda: _one(ints) != 0,
        "float": lambda: _one(floats),
        "complex": lambda: complex(*floats) if len(floats) == 2 else _bad("complex"),
        "str": lambda: text,
        "dtype": lambda: _named(torch, text, torch.dtype),
        "layout": lambda: _named(torch, text, torch.layout),
        "memory_format": lambda: _named(torch, text, torch.memory_format),
        "device": lambda: torch.device(text),
        "ints": lambda: list(ints),
        "bools": lambda: [i != 0 for i in ints],
        "floats": lambda: list(floats),
        "tensor": lambda: value if isinstance(value, torch.Tensor) else _bad("tensor"),
    }
    make = scalars.get(tag)
    if make is None:
        raise PlanError(f"unknown tag {tag!r}")
    return make()


def _one(items: Sequence[Any]) -> Any:
    if len(items) != 1:
        raise PlanError("needs exactly one value")
    return items[0]


def _bad(what: str) -> Any:
    raise PlanError(f"malformed {what}")


def _call(node: Sequence[Any], slots: list[Any]) -> Any:
    _, kind, target, overload, args, _, _, _ = node
    positional = [_decode(r, slots) for r in args if r[0] == ""]
    keywords = {r[0]: _decode(r, slots) for r in args if r[0] != ""}
    if kind == "op":
        ns, sep, name = target.partition("::")
        if not sep:
            raise PlanError(f"bad operator {target!r}")
        packet = getattr(getattr(torch.ops, ns), name)
        return getattr(packet, overload or "default")(*positional, **keywords)
    if kind == "torchbind":
        if len(positional) < 2 or not isinstance(positional[1], str):
            raise PlanError("call_torchbind needs an object and a method")
        obj, method = positional[0], positional[1]
        if method.startswith("__"):
            raise PlanError("dunder method")
        return getattr(obj, method)(*positional[2:], **keywords)
    if kind == "python":
        fn = _PYTHON.get(target)
        if fn is None or keywords:
            raise PlanError(f"unknown python function {target!r}")
        result = fn(*positional)
        if isinstance(result, int) and not _INT64[0] <= result <= _INT64[1]:
            raise OverflowError("integer overflow in a SymInt expression")
        return result
    raise PlanError(f"unknown node kind {kind!r}")


def _store(node: Sequence[Any], result: Any, slots: list[Any]) -> None:
    outputs, mode = node[5], node[6]
    if mode in ("list", "tuple") and isinstance(result, (list, tuple)):
        values = list(result)
    elif len(outputs) == 1:
        values = [result]
    elif isinstance(result, tuple):
        values = list(result)
    elif result is None and not outputs:
        values = []
    else:
        raise PlanError(f"cannot spread {type(result).__name__} over {len(outputs)} outputs")
    if len(values) != len(outputs):
        raise PlanError(f"{len(values)} results for {len(outputs)} outputs")
    for slot, value in zip(outputs, values, strict=True):
        if slot != -1:
            if not 0 <= slot < len(slots):
                raise PlanError(f"output slot {slot} out of range")
            slots[slot] = value


def run_plan(plan: Sequence[Any], inputs: Sequence[Any]) -> RefResult:
    """Run an encoded plan on ``inputs``; outputs, the state after, the inputs after."""
    try:
        return _run(plan, inputs)
    except Exception as exc:
        return RefResult("run_error", message=describe(exc))


def _run(plan: Sequence[Any], inputs: Sequence[Any]) -> RefResult:
    _, _, _, num_slots, in_rows, state_rows, nodes, out_rows, mutations = plan
    if not 0 <= num_slots <= 1 << 20:
        raise PlanError("num_slots out of range")
    slots: list[Any] = [None] * num_slots
    if len(inputs) != len(in_rows):
        raise PlanError("input count")
    for (slot, _kind, _dtype, _dev, _index), x in zip(in_rows, inputs, strict=True):
        if slot != -1:
            _slot(slots, slot)
            slots[slot] = x
    state: dict[str, Any] = {}
    for slot, _kind, name, value in state_rows:
        _slot(slots, slot)
        slots[slot] = value
        state[name] = value
    with torch.no_grad():
        for node in nodes:
            result = _call(node, slots)
            for f in node[7]:
                _slot(slots, f)
                slots[f] = None
            _store(node, result, slots)
        outputs = [_decode(r, slots) for r in out_rows]
        for slot, kind, target, index in mutations:
            value = _slot(slots, slot)
            dest = state[target] if kind == "buffer" else inputs[index]
            dest.copy_(value)
    return RefResult(
        "ok", outputs, {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, list(inputs)
    )


def copy_plan(plan: Any, copy_object: Callable[[Any], Any]) -> Any:
    """A structural copy: tuples and lists copied, tensors cloned, TorchBind objects passed
    through ``copy_object``; so that two runs of one plan do not share state."""
    if isinstance(plan, tuple):
        return tuple(copy_plan(v, copy_object) for v in plan)
    if isinstance(plan, list):
        return [copy_plan(v, copy_object) for v in plan]
    if isinstance(plan, torch.Tensor):
        return plan.clone()
    if isinstance(plan, torch.ScriptObject):
        return copy_object(plan)
    return plan
