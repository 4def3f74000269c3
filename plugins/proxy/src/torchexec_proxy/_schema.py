"""Operator schemas digested once per operator: argument kinds, defaults and return kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

__all__ = ["ACCEPTED", "ArgInfo", "OpInfo", "ReturnInfo", "accepted_tags", "op_info", "schema_info"]

# Defaults of enum-typed arguments come back from the schema as c10's enum numbers.
_C10_MEMORY_FORMATS = {
    0: torch.contiguous_format,
    1: torch.preserve_format,
    2: torch.channels_last,
    3: torch.channels_last_3d,
}
_C10_LAYOUTS = {0: torch.strided}
_C10_DTYPES = {
    0: torch.uint8,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.int64,
    5: torch.float16,
    6: torch.float32,
    7: torch.float64,
    11: torch.bool,
    15: torch.bfloat16,
}
_ENUM_DEFAULTS: Mapping[str, Mapping[int, Any]] = {
    "MemoryFormatType": _C10_MEMORY_FORMATS,
    "LayoutType": _C10_LAYOUTS,
    "ScalarTypeType": _C10_DTYPES,
}


_SCALAR_TAGS = frozenset({"as_int", "as_float", "as_bool", "as_complex"})
_SYM_TAGS = frozenset({"as_sym_int", "as_sym_float", "as_sym_bool"})

ACCEPTED: dict[str, frozenset[str]] = {
    "TensorType": frozenset({"as_tensor"}) | _SCALAR_TAGS | _SYM_TAGS,
    "IntType": frozenset({"as_int", "as_sym_int"}),
    "SymIntType": frozenset({"as_int", "as_sym_int"}),
    "FloatType": frozenset({"as_float", "as_int", "as_sym_float", "as_sym_int"}),
    "SymFloatType": frozenset({"as_float", "as_int", "as_sym_float", "as_sym_int"}),
    "BoolType": frozenset({"as_bool", "as_sym_bool"}),
    "SymBoolType": frozenset({"as_bool", "as_sym_bool"}),
    "NumberType": _SCALAR_TAGS | _SYM_TAGS,
    "ComplexType": frozenset({"as_complex", "as_float", "as_int"}),
    "StringType": frozenset({"as_string"}),
    "ScalarTypeType": frozenset({"as_scalar_type"}),
    "LayoutType": frozenset({"as_layout"}),
    "MemoryFormatType": frozenset({"as_memory_format"}),
    "DeviceObjType": frozenset({"as_device"}),
    "ClassType": frozenset({"as_custom_obj"}),
    "AnyType": frozenset({"as_tensor", "as_tensors", "as_string", "as_ints", "as_floats",
                          "as_bools", "as_strings", "as_scalar_type", "as_device", "as_layout",
                          "as_memory_format", "as_custom_obj"}) | _SCALAR_TAGS | _SYM_TAGS,
}  # fmt: skip
"""Serialized tags each (non-list) schema type kind accepts."""

_LIST_ACCEPTED: dict[str, frozenset[str]] = {
    "TensorType": frozenset({"as_tensors"}),
    "IntType": frozenset({"as_ints", "as_sym_ints", "as_int"}),
    "SymIntType": frozenset({"as_ints", "as_sym_ints", "as_int"}),
    "FloatType": frozenset({"as_floats", "as_sym_floats"}),
    "SymFloatType": frozenset({"as_floats", "as_sym_floats"}),
    "BoolType": frozenset({"as_bools", "as_sym_bools"}),
    "SymBoolType": frozenset({"as_bools", "as_sym_bools"}),
    "NumberType": frozenset({"as_ints", "as_floats", "as_bools"}),
    "StringType": frozenset({"as_strings"}),
}


_ATEN_NUMBERS_AS_TENSORS = frozenset(
    f"{base}{suffix}"
    for base in ("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
                 "floor_divide")
    for suffix in ("", "_", "_out")
) | {"to", "_to_copy", "copy_", "_conj"}  # fmt: skip
"""ATen operators that torch.ops calls with a Python number where the schema takes a tensor (the
list of PyTorch's Python argument parser, ``should_allow_numbers_as_tensors``); the torchbind
engine applies the same rule (``csrc/engine/build_node.cpp``)."""


def takes_numbers_as_tensors(name: str) -> bool:
    """Whether operator ``name`` (``"aten::mul"``) may be given a number for a tensor: every
    ``prims`` operator and a few ATen arithmetic ones. Any other operator refuses the call."""
    namespace, _, base = name.partition("::")
    return namespace == "prims" or (namespace == "aten" and base in _ATEN_NUMBERS_AS_TENSORS)


def accepted_tags(
    kind: str,
    optional: bool,
    elem: str | None,
    elem_optional: bool,
    numbers_as_tensors: bool = True,
) -> frozenset[str]:
    """The serialized tags an argument of this type accepts (``numbers_as_tensors``: whether a
    number may stand for a tensor, see :func:`takes_numbers_as_tensors`)."""
    if kind == "ListType":
        base = _LIST_ACCEPTED.get(elem or "", frozenset())
        if elem == "TensorType" and elem_optional:
            base = base | {"as_optional_tensors"}
    elif kind == "TensorType" and not numbers_as_tensors:
        base = frozenset({"as_tensor"})
    else:
        base = ACCEPTED.get(kind, frozenset())
    if optional:
        base = base | {"as_none"}
        if kind == "TensorType":
            base = base | {"as_optional_tensor"}
    return base


@dataclass(frozen=True)
class ArgInfo:
    """One schema argument.

    Attributes:
        name: the schema name.
        kind: the JIT type kind with ``Optional`` removed (``"TensorType"``, ``"ListType"``...).
        optional: the type is ``T?``.
        elem: for lists, the element's kind with ``Optional`` removed.
        elem_optional: for lists, the element type is ``T?`` (``Tensor?[]``).
        kwarg_only: declared after ``*``.
        has_default: the schema gives a default.
        default: the default, converted to the Python value an operator takes.
        type_str: the schema type as written, for messages.
        accepted: the serialized tags (``as_tensor``, ``as_ints``, ...) this argument takes.
    """

    name: str
    kind: str
    optional: bool
    elem: str | None
    elem_optional: bool
    kwarg_only: bool
    has_default: bool
    default: Any
    type_str: str
    accepted: frozenset[str]


@dataclass(frozen=True)
class ReturnInfo:
    """One schema return: kind (``Optional`` removed), whether optional, and list element kind."""

    kind: str
    optional: bool
    elem: str | None


@dataclass(frozen=True)
class OpInfo:
    """A digested schema."""

    name: str
    args: tuple[ArgInfo, ...]
    index: Mapping[str, int]
    returns: tuple[ReturnInfo, ...]
    returns_list: bool
    """The operator returns exactly one ``Tensor[]``."""
    positional: tuple[ArgInfo, ...]
    """The arguments passed by position (declared before ``*``), in order."""
    keyword: tuple[ArgInfo, ...]
    """The keyword-only arguments, in order."""


def _unwrap(t: Any) -> tuple[str, bool, Any]:
    kind = t.kind()
    if kind == "OptionalType":
        inner = t.getElementType()
        return inner.kind(), True, inner
    return kind, False, t


def _elem(t: Any, kind: str) -> tuple[str | None, bool]:
    if kind != "ListType":
        return None, False
    ekind, eopt, _ = _unwrap(t.getElementType())
    return ekind, eopt


def _default(a: Any, kind: str) -> Any:
    if not a.has_default_value():
        return None
    value = a.default_value
    table = _ENUM_DEFAULTS.get(kind)
    if table is not None and isinstance(value, int) and not isinstance(value, bool):
        return table.get(value, value)
    return value


def _arg_info(a: Any, numbers_as_tensors: bool) -> ArgInfo:
    kind, optional, inner = _unwrap(a.real_type)
    elem, elem_optional = _elem(inner, kind)
    return ArgInfo(
        name=a.name,
        kind=kind,
        optional=optional,
        elem=elem,
        elem_optional=elem_optional,
        kwarg_only=bool(a.kwarg_only),
        has_default=bool(a.has_default_value()),
        default=_default(a, kind),
        type_str=str(a.real_type),
        accepted=accepted_tags(kind, optional, elem, elem_optional, numbers_as_tensors),
    )


def _return_info(r: Any) -> ReturnInfo:
    kind, optional, inner = _unwrap(r.real_type)
    elem, _ = _elem(inner, kind)
    return ReturnInfo(kind=kind, optional=optional, elem=elem)


def schema_info(schema: torch.FunctionSchema, skip_self: bool = False) -> OpInfo:
    """Digest ``schema``; ``skip_self`` drops the first argument (TorchBind methods, which never
    take numbers as tensors)."""
    numbers = not skip_self and takes_numbers_as_tensors(str(schema.name))
    args = tuple(_arg_info(a, numbers) for a in schema.arguments)
    if skip_self:
        args = args[1:]
    returns = tuple(_return_info(r) for r in schema.returns)
    return OpInfo(
        name=str(schema.name),
        args=args,
        index={a.name: i for i, a in enumerate(args)},
        returns=returns,
        returns_list=(
            len(returns) == 1 and returns[0].kind == "ListType" and returns[0].elem == "TensorType"
        ),
        positional=tuple(a for a in args if not a.kwarg_only),
        keyword=tuple(a for a in args if a.kwarg_only),
    )


@cache
def op_info(op: torch._ops.OpOverload) -> OpInfo:
    """The digested schema of an operator overload (computed once per overload)."""
    return schema_info(op._schema)
