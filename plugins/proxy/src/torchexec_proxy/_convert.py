"""Serialized arguments -> plan arguments, checked against the schema type they are passed for.

A serialized argument is a union (``{"as_ints": [1, 2]}``). Its tag must be one the schema type
accepts (a ``Tensor`` argument takes a tensor or a Python number, an ``int[]`` takes ints or
SymInts, ...); its payload becomes a :class:`~torchexec_proxy.plan.Static` value or a reference to
a named value, resolved through a :class:`Refs` callback so that the same code serves programs
(names -> values) and other consumers.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch

from torchexec import ProgramError
from torchexec_proxy._enums import DTYPES, LAYOUTS, MEMORY_FORMATS
from torchexec_proxy._json import field, opt_field, short, union
from torchexec_proxy._schema import ArgInfo
from torchexec_proxy.plan import Arg, MixedList, Slot, SlotList, Static

__all__ = [
    "Refs",
    "convert_argument",
    "convert_untyped",
    "device_value",
    "static",
    "static_scalar",
]


class Refs(Protocol):
    """Resolves a name used by a node to the value it denotes."""

    def __call__(self, name: str, want: str, where: str) -> Slot | Static:
        """``want`` is ``"tensor"``, ``"sym_int"``, ``"sym_float"``, ``"sym_bool"`` or
        ``"custom_obj"``; raise ``ProgramError`` when ``name`` is undefined or of another kind."""
        ...


_EMPTY_LIST_TAGS = frozenset(
    {"as_ints", "as_floats", "as_bools", "as_strings", "as_tensors", "as_sym_ints",
     "as_sym_floats", "as_sym_bools", "as_optional_tensors"}
)  # fmt: skip


def _int(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProgramError(f"{where}: expected an integer, got {short(v)}")
    return v


# torch's serializer writes non-finite floats as these strings.
_SPECIAL_FLOATS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _float(v: object, where: str) -> float:
    if isinstance(v, str):
        special = _SPECIAL_FLOATS.get(v)
        if special is not None:
            return special
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProgramError(f"{where}: expected a number, got {short(v)}")
    return float(v)


def _bool(v: object, where: str) -> bool:
    if not isinstance(v, bool):
        raise ProgramError(f"{where}: expected true or false, got {short(v)}")
    return v


def _str(v: object, where: str) -> str:
    if not isinstance(v, str):
        raise ProgramError(f"{where}: expected a string, got {short(v)}")
    return v


def _list(v: object, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise ProgramError(f"{where}: expected a list, got {short(v)}")
    return v


def _enum(table: dict[int, Any] | Any, v: object, what: str, where: str) -> Any:
    code = _int(v, where)
    if code not in table:
        raise ProgramError(f"{where}: unknown {what} code {code}")
    return table[code]


def device_value(v: object, where: str) -> torch.device:
    """A serialized ``Device`` (``{"type": "cuda", "index": 0}``) as a ``torch.device``."""
    kind = field(v, "type", str, where)
    index = opt_field(v, "index", int, where, None)
    try:
        return torch.device(kind) if index is None else torch.device(kind, index)
    except (RuntimeError, ValueError) as exc:
        raise ProgramError(f"{where}: invalid device {short(v)}: {exc}") from exc


def _complex(v: object, where: str) -> complex:
    return complex(_float(field(v, "real", (int, float, str), where), where),
                   _float(field(v, "imag", (int, float, str), where), where))  # fmt: skip


def static_scalar(tag: str, payload: Any, where: str) -> Any:
    """The Python value of a serialized constant, or raise if ``tag`` is not a constant."""
    if tag == "as_none":
        return None
    if tag == "as_int":
        return _int(payload, where)
    if tag == "as_float":
        return _float(payload, where)
    if tag == "as_bool":
        return _bool(payload, where)
    if tag == "as_string":
        return _str(payload, where)
    if tag == "as_complex":
        return _complex(payload, where)
    if tag == "as_scalar_type":
        return _enum(DTYPES, payload, "dtype", where)
    if tag == "as_layout":
        return _enum(LAYOUTS, payload, "layout", where)
    if tag == "as_memory_format":
        return _enum(MEMORY_FORMATS, payload, "memory format", where)
    if tag == "as_device":
        return device_value(payload, where)
    if tag == "as_ints":
        return [_int(x, where) for x in _list(payload, where)]
    if tag == "as_floats":
        return [_float(x, where) for x in _list(payload, where)]
    if tag == "as_bools":
        return [_bool(x, where) for x in _list(payload, where)]
    if tag == "as_strings":
        return [_str(x, where) for x in _list(payload, where)]
    raise ProgramError(f"{where}: {tag} is not a constant")


_SYM_WANT = {"as_sym_int": "sym_int", "as_sym_float": "sym_float", "as_sym_bool": "sym_bool"}
_SYM_CONST = {"as_sym_int": "as_int", "as_sym_float": "as_float", "as_sym_bool": "as_bool"}
_SYM_LIST = {"as_sym_ints": "as_sym_int", "as_sym_floats": "as_sym_float",
             "as_sym_bools": "as_sym_bool"}  # fmt: skip


def _sym(tag: str, payload: Any, refs: Refs, where: str) -> Slot | Static:
    inner, value = union(payload, where)
    if inner == "as_name":
        return refs(_str(value, where), _SYM_WANT[tag], where)
    if inner == _SYM_CONST[tag]:
        return static(static_scalar(inner, value, where))
    raise ProgramError(f"{where}: {tag} holds {inner}, expected as_name or {_SYM_CONST[tag]}")


def _tensor_name(payload: Any, where: str) -> str:
    return field(payload, "name", str, where)


def _tensors(payload: Any, refs: Refs, where: str) -> SlotList:
    items: list[int | None] = []
    for i, item in enumerate(_list(payload, where)):
        ref = refs(_tensor_name(item, f"{where}[{i}]"), "tensor", f"{where}[{i}]")
        if not isinstance(ref, Slot):
            raise ProgramError(f"{where}[{i}]: expected a tensor value, got a constant")
        items.append(ref.index)
    return SlotList(tuple(items))


def _optional_tensors(payload: Any, refs: Refs, where: str) -> SlotList:
    items: list[int | None] = []
    for i, item in enumerate(_list(payload, where)):
        w = f"{where}[{i}]"
        tag, value = union(item, w)
        if tag == "as_none":
            items.append(None)
        elif tag == "as_tensor":
            ref = refs(_tensor_name(value, w), "tensor", w)
            if not isinstance(ref, Slot):
                raise ProgramError(f"{w}: expected a tensor value, got a constant")
            items.append(ref.index)
        else:
            raise ProgramError(f"{w}: expected as_tensor or as_none, got {tag}")
    return SlotList(tuple(items))


def _sym_list(tag: str, payload: Any, refs: Refs, where: str) -> Arg:
    elem_tag = _SYM_LIST[tag]
    items: list[Any] = []
    dynamic = False
    for i, item in enumerate(_list(payload, where)):
        ref = _sym(elem_tag, item, refs, f"{where}[{i}]")
        if isinstance(ref, Slot):
            dynamic = True
            items.append(ref)
        else:
            items.append(ref.value)
    return MixedList(tuple(items)) if dynamic else Static(items)


def convert_untyped(tag: str, payload: Any, refs: Refs, where: str) -> Arg:
    """Convert a serialized argument without a schema type to check it against."""
    if tag == "as_tensor":
        return refs(_tensor_name(payload, where), "tensor", where)
    if tag == "as_optional_tensor":
        inner, value = union(payload, where)
        if inner == "as_none":
            return Static(None)
        if inner != "as_tensor":
            raise ProgramError(f"{where}: as_optional_tensor holds {inner}")
        return refs(_tensor_name(value, where), "tensor", where)
    if tag == "as_tensors":
        return _tensors(payload, refs, where)
    if tag == "as_optional_tensors":
        return _optional_tensors(payload, refs, where)
    if tag in _SYM_WANT:
        return _sym(tag, payload, refs, where)
    if tag in _SYM_LIST:
        return _sym_list(tag, payload, refs, where)
    if tag == "as_custom_obj":
        return refs(field(payload, "name", str, where), "custom_obj", where)
    if tag in ("as_graph", "as_operator", "as_nested_tensors", "as_string_to_argument",
               "as_int_lists", "as_float_lists"):  # fmt: skip
        raise ProgramError(f"{where}: arguments of type {tag} are not supported")
    return static(static_scalar(tag, payload, where))


def convert_argument(serialized: object, info: ArgInfo, refs: Refs, where: str) -> Arg:
    """Convert ``serialized`` for the schema argument ``info``, checking its type."""
    if type(serialized) is dict and len(serialized) == 1:
        ((tag, payload),) = serialized.items()
    else:
        tag, payload = union(serialized, where)
    if tag not in info.accepted:
        empty_list = info.kind == "ListType" and tag in _EMPTY_LIST_TAGS and payload == []
        if not empty_list:
            want = ", ".join(sorted(info.accepted)) or "nothing the proxy can pass"
            raise ProgramError(
                f"{where}: wrong argument type: schema type {info.type_str} takes {want}; "
                f"got {tag} {short(payload, 60)}"
            )
        if info.elem == "TensorType":
            return SlotList(())
        return Static([])
    if tag == "as_tensor" and type(payload) is dict and type(payload.get("name")) is str:
        return refs(payload["name"], "tensor", where)  # the common case, without detours
    return convert_untyped(tag, payload, refs, where)


_STATICS: dict[tuple[type, object], Static] = {}
# Floats are left out: 0.0 and -0.0 compare (and hash) equal but are different arguments.
_SHARED_TYPES = (int, bool, str, type(None), torch.dtype, torch.layout, torch.memory_format)


def static(value: object) -> Static:
    """A :class:`Static` holding ``value``; instances for common values are shared."""
    if not isinstance(value, _SHARED_TYPES):
        return Static(value)
    key = (type(value), value)
    try:
        return _STATICS[key]
    except KeyError:
        made = Static(value)
        if len(_STATICS) < 4096:
            _STATICS[key] = made
        return made
    except TypeError:  # pragma: no cover - unhashable despite the type check
        return Static(value)
