"""Calling an extern-kernel node, and what the call should return.

AOTInductor's generated code calls ``call_function(index, int_args, tensor_args)`` with the
node's tensors and integers (``int``, ``SymInt``, ``int[]``, integer ``Scalar``) flattened in
the order the JSON lists the arguments; everything else is read from the JSON. :func:`plan_call`
builds those two lists from a (possibly mutated) node, as that generated code would, and
:func:`reference_call` computes the node's result by calling the operator (or TorchBind method)
with every argument by name through ``torch.ops``: eager PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .reference import RefResult, describe

__all__ = ["ExternCall", "plan_call", "reference_call"]


class CallError(Exception):
    """The node cannot be called (or interpreted) as written."""


_FLOATS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}
"""How torch's serializer writes non-finite floats."""

SYMBOL_VALUE = 2
"""What the generated code passes for a symbolic int (its value is only known at run time)."""


@dataclass
class ExternCall:
    """The flattened call arguments of one node."""

    int_args: list[int]
    tensor_args: list[torch.Tensor]


def _tensor(payload: Any, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise CallError(f"not a tensor argument: {payload!r}")
    name = payload["name"]
    # A renamed tensor still gets a tensor from the generated code: the first one, say.
    return env.get(name, next(iter(env.values())))


def _union(arg: Any) -> tuple[str, Any]:
    if not isinstance(arg, dict) or len(arg) != 1:
        raise CallError(f"not an argument union: {arg!r}")
    ((tag, payload),) = arg.items()
    return str(tag), payload


def _target_op(target: str) -> Any:
    if target.startswith("torch.ops."):
        parts = target.split(".")
        if len(parts) != 5:
            raise CallError(f"not an operator target: {target!r}")
        ns, name, overload = parts[2:]
        return getattr(getattr(getattr(torch.ops, ns), name), overload)
    ns, sep, rest = target.partition("::")
    if not sep:
        raise CallError(f"not an operator target: {target!r}")
    name, _, overload = rest.partition(".")
    packet = getattr(getattr(torch.ops, ns), name)
    return getattr(packet, overload or "default")


def _schema_kinds(node: Mapping[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Argument name -> (type kind without Optional, list element kind) for operator nodes."""
    op = _target_op(str(node.get("target")))
    out: dict[str, tuple[str, str | None]] = {}
    for a in op._schema.arguments:
        t = a.real_type
        if t.kind() == "OptionalType":
            t = t.getElementType()
        elem = None
        if t.kind() == "ListType":
            e = t.getElementType()
            elem = (e.getElementType() if e.kind() == "OptionalType" else e).kind()
        out[a.name] = (t.kind(), elem)
    return out


def plan_call(node: Mapping[str, Any], env: Mapping[str, torch.Tensor]) -> ExternCall:
    """The ``int_args`` and ``tensor_args`` the generated code passes for ``node``."""
    inputs = node.get("inputs")
    if not isinstance(inputs, list):
        raise CallError("inputs is not a list")
    torchbind = node.get("target") in ("call_torchbind", "torch.ops.higher_order.call_torchbind")
    kinds = {} if torchbind else _schema_kinds(node)
    call = ExternCall([], [])
    for i, named in enumerate(inputs):
        if not isinstance(named, dict):
            raise CallError(f"input {i} is not an object")
        tag, payload = _union(named.get("arg"))
        kind, elem = kinds.get(str(named.get("name")), ("TensorType", None))
        if torchbind and i < 2:
            continue  # the object and the method name
        if kind in ("TensorType", "AnyType") and tag == "as_tensor":
            call.tensor_args.append(_tensor(payload, env))
        elif kind == "TensorType" and tag == "as_optional_tensor":
            inner, value = _union(payload)
            if inner == "as_tensor":
                call.tensor_args.append(_tensor(value, env))
        elif kind == "ListType" and elem == "TensorType" and tag == "as_tensors":
            call.tensor_args.extend(_tensor(p, env) for p in _list(payload))
        elif kind == "ListType" and elem == "TensorType" and tag == "as_optional_tensors":
            for item in _list(payload):
                inner, value = _union(item)
                if inner == "as_tensor":
                    call.tensor_args.append(_tensor(value, env))
        elif kind in ("IntType", "SymIntType", "NumberType", "AnyType") and tag == "as_int":
            call.int_args.append(_int(payload))
        elif kind in ("IntType", "SymIntType", "NumberType") and tag == "as_sym_int":
            call.int_args.append(_sym_int(payload))
        elif (
            kind == "ListType"
            and elem in ("IntType", "SymIntType", "NumberType")
            and tag
            in (
                "as_ints",
                "as_sym_ints",
            )
        ):
            for item in _list(payload):
                call.int_args.append(_sym_int(item) if tag == "as_sym_ints" else _int(item))
    return call


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise CallError("expected a list")
    return v


def _sym_int(payload: Any) -> int:
    inner, value = _union(payload)
    if inner == "as_name":
        return SYMBOL_VALUE
    if inner != "as_int":
        raise CallError(f"not a symbolic int: {payload!r}")
    return _int(value)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise CallError(f"expected an int, got {v!r}")
    return v


def _value(
    tag: str, payload: Any, env: Mapping[str, torch.Tensor], objects: Mapping[str, Any]
) -> Any:
    from torch._export.serde import schema as S
    from torch._export.serde.serialize import (
        _SERIALIZE_TO_TORCH_DTYPE,
        _SERIALIZE_TO_TORCH_LAYOUT,
        _SERIALIZE_TO_TORCH_MEMORY_FORMAT,
    )

    simple = {"as_int", "as_bool", "as_string", "as_ints", "as_bools", "as_strings"}
    if tag in simple:
        return payload
    if tag == "as_float":
        return _FLOATS.get(payload, payload) if isinstance(payload, str) else payload
    if tag == "as_floats":
        return [_FLOATS.get(p, p) if isinstance(p, str) else p for p in _list(payload)]
    if tag == "as_none":
        return None
    if tag == "as_tensor":
        return _tensor(payload, env)
    if tag == "as_tensors":
        return [_tensor(p, env) for p in _list(payload)]
    if tag in ("as_optional_tensor",):
        inner, value = _union(payload)
        return _tensor(value, env) if inner == "as_tensor" else None
    if tag == "as_optional_tensors":
        return [_value(*_union(item), env, objects) for item in _list(payload)]
    if tag == "as_sym_int":
        return _sym_int(payload)
    if tag == "as_sym_ints":
        return [_sym_int(p) for p in _list(payload)]
    if tag in ("as_sym_float", "as_sym_bool"):
        inner, value = _union(payload)
        if inner == "as_name":
            raise CallError("a symbolic value has no value here")
        return value
    if tag == "as_scalar_type":
        return _SERIALIZE_TO_TORCH_DTYPE[S.ScalarType(payload)]
    if tag == "as_layout":
        return _SERIALIZE_TO_TORCH_LAYOUT[S.Layout(payload)]
    if tag == "as_memory_format":
        return _SERIALIZE_TO_TORCH_MEMORY_FORMAT[S.MemoryFormat(payload)]
    if tag == "as_device":
        index = payload.get("index")
        return (
            torch.device(payload["type"], index)
            if index is not None
            else torch.device(payload["type"])
        )
    if tag == "as_custom_obj":
        return objects[payload["name"]]
    if tag == "as_complex":
        return complex(payload["real"], payload["imag"])
    raise CallError(f"cannot interpret {tag}")


def _flat_tensors(result: Any) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        return [t for r in result for t in _flat_tensors(r)]
    return []


def reference_call(
    node: Mapping[str, Any], env: Mapping[str, torch.Tensor], objects: Mapping[str, Any]
) -> RefResult:
    """The node's output tensors, computed by eager PyTorch (``rejected`` when the node cannot
    be interpreted, ``run_error`` when the call fails)."""
    try:
        target = str(node.get("target"))
        values = []
        for named in _list(node.get("inputs")):
            tag, payload = _union(named.get("arg"))
            values.append((named.get("name"), _value(tag, payload, env, objects)))
        if target in ("call_torchbind", "torch.ops.higher_order.call_torchbind"):
            obj, method = values[0][1], values[1][1]
            fn = getattr(obj, method)
            call_args = [v for _, v in values[2:]]
            call: Any = lambda: fn(*call_args)  # noqa: E731
        else:
            op = _target_op(target)
            kwargs = {str(name): v for name, v in values}
            call = lambda: op(**kwargs)  # noqa: E731
    except Exception as exc:
        return RefResult("rejected", message=describe(exc))
    try:
        result = call()
    except Exception as exc:
        return RefResult("run_error", message=describe(exc))
    return RefResult("ok", _flat_tensors(result))
