"""One serialized node -> one draft plan node, validated against its operator's schema.

Drafts refer to values by *value number* (one per definition); :mod:`torchexec_proxy._slots`
later maps value numbers to reusable slots once every value's last use is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from torchexec import ProgramError
from torchexec_proxy._convert import Refs, convert_argument, convert_untyped, static
from torchexec_proxy._json import field as json_field, short, union
from torchexec_proxy._schema import OpInfo, ReturnInfo, op_info, schema_info
from torchexec_proxy._targets import CALL_TORCHBIND, HOP_TARGETS, Resolved
from torchexec_proxy.plan import Arg, Static, SubPlan

__all__ = [
    "Define",
    "Draft",
    "HopDrafter",
    "Inputs",
    "bind",
    "define_output",
    "draft_node",
    "python_arity",
]

Define = Callable[[str, str, str], int]
"""``define(name, kind, where)`` -> value number; raises on a second definition."""

Inputs = list[tuple[str, object, int | None]]
"""A node's serialized inputs: ``(name, argument, kind)`` each."""

HopDrafter = Callable[[str, str, Inputs, list[Any], str], "Draft"]
"""``hop(name, target, inputs, outputs, where)`` -> the draft of a higher-order operator node
(:func:`torchexec_proxy._hops.draft_hop` bound to the graph being planned)."""

_UNARY = frozenset(
    {"_operator.neg", "_operator.pos", "math.trunc", "torch.sym_not", "torch.sym_int",
     "torch.sym_float", "torch._sym_sqrt"}
)  # fmt: skip


def python_arity(target: str) -> int:
    """How many arguments a SymInt arithmetic target takes."""
    if target in _UNARY:
        return 1
    return 3 if target == "torch.sym_ite" else 2


@dataclass(slots=True)
class Draft:
    """A plan node before slot assignment (value numbers in place of slots)."""

    name: str
    target: str
    kind: Literal["op", "torchbind", "python", "hop"]
    op: Any
    args: tuple[Arg, ...]
    kwargs: dict[str, Arg]
    outputs: tuple[int | None, ...]
    returns_list: bool = False
    returns_tuple: bool = False
    reads: list[int] = field(default_factory=list)
    subplans: tuple[SubPlan, ...] = ()


_SYM_OUT = {"as_sym_int": "sym_int", "as_sym_float": "sym_float", "as_sym_bool": "sym_bool"}
_SYM_CONST_OUT = {"as_sym_int": "as_int", "as_sym_float": "as_float", "as_sym_bool": "as_bool"}
_SYM_RETURNS = {
    "as_sym_int": frozenset({"IntType", "SymIntType", "NumberType", "AnyType"}),
    "as_sym_float": frozenset({"FloatType", "SymFloatType", "NumberType", "AnyType"}),
    "as_sym_bool": frozenset({"BoolType", "SymBoolType", "AnyType"}),
}
_CONST_OUT = frozenset({"as_int", "as_float", "as_bool", "as_none"})


def define_output(out: object, ret: ReturnInfo | None, define: Define, where: str) -> int | None:
    """Define the value one serialized output names; ``None`` for an absent/constant output."""
    if type(out) is dict and len(out) == 1:
        ((tag, payload),) = out.items()
    else:
        tag, payload = union(out, where)
    if tag == "as_tensor":
        if ret is not None and ret.kind not in ("TensorType", "AnyType"):
            raise ProgramError(f"{where}: the schema returns {ret.kind}, the node a tensor")
        name = payload.get("name") if type(payload) is dict else None
        if type(name) is not str:
            name = json_field(payload, "name", str, where)
        return define(name, "tensor", where)
    if tag == "as_optional_tensor":
        if ret is not None and ret.kind not in ("TensorType", "AnyType"):
            raise ProgramError(f"{where}: the schema returns {ret.kind}, the node a tensor")
        inner, value = union(payload, where)
        if inner == "as_none":
            return None
        if inner != "as_tensor":
            raise ProgramError(f"{where}: as_optional_tensor holds {inner}")
        return define(json_field(value, "name", str, where), "tensor", where)
    if tag in _SYM_OUT:
        if ret is not None and ret.kind not in _SYM_RETURNS[tag]:
            raise ProgramError(f"{where}: the schema returns {ret.kind}, the node {tag}")
        inner, value = union(payload, where)
        if inner == "as_name":
            if not isinstance(value, str):
                raise ProgramError(f"{where}: as_name must be a string, got {short(value)}")
            return define(value, _SYM_OUT[tag], where)
        if inner != _SYM_CONST_OUT[tag]:
            raise ProgramError(
                f"{where}: {tag} holds {inner}, expected as_name or {_SYM_CONST_OUT[tag]}"
            )
        return None  # a constant the program already knows
    if tag in _CONST_OUT:
        return None
    raise ProgramError(f"{where}: unsupported output {tag}")


def _list_outputs(payload: object, define: Define, where: str) -> tuple[int | None, ...]:
    if not isinstance(payload, list):
        raise ProgramError(f"{where}: as_tensors must be a list, got {short(payload)}")
    return tuple(
        define(json_field(t, "name", str, f"{where}[{i}]"), "tensor", f"{where}[{i}]")
        for i, t in enumerate(payload)
    )


def _outputs(node: dict[str, Any], where: str) -> list[Any]:
    outputs = node.get("outputs")
    if type(outputs) is not list:
        outputs = json_field(node, "outputs", list, where)
    return outputs


def _inputs(node: dict[str, Any], where: str) -> Inputs:
    raw = node.get("inputs")
    if type(raw) is not list:
        raw = json_field(node, "inputs", list, where)
    out: list[tuple[str, object, int | None]] = []
    for i, named in enumerate(raw):
        if type(named) is dict:
            name, arg, kind = named.get("name"), named.get("arg"), named.get("kind")
            if type(name) is str and type(arg) is dict:
                out.append((name, arg, kind if type(kind) is int else None))
                continue
        w = f"{where}, input {i}"
        json_field(named, "name", str, w)
        json_field(named, "arg", dict, w)  # one of these raises
    return out


def bind(
    info: OpInfo,
    inputs: list[tuple[str, object, int | None]],
    refs: Refs,
    where: str,
    what: str,
) -> tuple[list[Arg], dict[str, Arg]]:
    """Match serialized inputs to schema arguments by name; fill defaults.

    ``what`` says what ``info`` describes (``"operator"`` or ``"method"``), for messages.
    """
    given: dict[int, object] = {}
    for name, arg, _ in inputs:
        index = info.index.get(name)
        if index is None:
            known = ", ".join(a.name for a in info.args) or "none"
            raise ProgramError(
                f"{where}: {what} {info.name} has no argument {name!r} (its arguments: {known})"
            )
        if index in given:
            raise ProgramError(f"{where}: argument {name!r} is given twice")
        given[index] = arg
    args: list[Arg] = []
    kwargs: dict[str, Arg] = {}
    for i, a in enumerate(info.args):
        if i in given:
            value = convert_argument(given[i], a, refs, f"{where}, argument {a.name!r}")
        elif a.has_default:
            value = static(a.default)
        else:
            raise ProgramError(
                f"{where}: missing argument {a.name!r} ({a.type_str}) of {what} {info.name}, "
                "which has no default"
            )
        if a.kwarg_only:
            kwargs[a.name] = value
        else:
            args.append(value)
    return args, kwargs


def _op_outputs(
    info: OpInfo, outputs: list[Any], define: Define, where: str
) -> tuple[tuple[int | None, ...], bool]:
    if len(outputs) == 1 and len(info.returns) == 1 and not info.returns_list:
        return (define_output(outputs[0], info.returns[0], define, f"{where}, output 0"),), False
    if info.returns_list:
        if len(outputs) != 1:
            raise ProgramError(f"{where}: the operator returns one Tensor[], the node lists "
                               f"{len(outputs)} outputs")  # fmt: skip
        tag, payload = union(outputs[0], f"{where}, output 0")
        if tag != "as_tensors":
            raise ProgramError(f"{where}, output 0: the operator returns Tensor[], got {tag}")
        return _list_outputs(payload, define, f"{where}, output 0"), True
    if len(outputs) != len(info.returns):
        raise ProgramError(
            f"{where}: the node lists {len(outputs)} outputs but the operator returns "
            f"{len(info.returns)} values"
        )
    slots: list[int | None] = []
    for i, (out, ret) in enumerate(zip(outputs, info.returns, strict=True)):
        if ret.kind == "ListType":
            raise ProgramError(f"{where}, output {i}: a Tensor[] among several returns is not "
                               "supported")  # fmt: skip
        slots.append(define_output(out, ret, define, f"{where}, output {i}"))
    return tuple(slots), False


def draft_node(
    index: int,
    node: object,
    resolve: Callable[[str, str], Resolved],
    refs: Refs,
    define: Define,
    objects: Callable[[Arg], object],
    hop: HopDrafter | None = None,
) -> Draft:
    """Validate one serialized node and turn it into a :class:`Draft`.

    Args:
        index: the node's position (for messages when it has no name).
        node: the serialized ``Node``.
        resolve: ``resolve(target, where)`` -> :class:`Resolved` (applies the allow-list).
        refs: resolves names the node reads.
        define: defines the names the node writes.
        objects: the TorchBind object a resolved argument denotes (for ``call_torchbind``).
        hop: drafts the higher-order operators of :data:`~torchexec_proxy._hops.HOP_TARGETS`
            (their subgraphs planned by the caller); without it they are refused.
    """
    if type(node) is not dict:
        raise ProgramError(f"node {index}: expected a node object, got {short(node)}")
    target = node.get("target")
    if type(target) is not str:
        target = json_field(node, "target", str, f"node {index}")
    name = node.get("name")
    if type(name) is not str or not name:
        name = f"#{index}"
    where = f"node {name!r} ({target})"
    if hop is not None and target in HOP_TARGETS:
        return hop(name, target, _inputs(node, where), _outputs(node, where), where)
    resolved = resolve(target, where)
    inputs = _inputs(node, where)
    outputs = _outputs(node, where)
    if resolved.kind == "python":
        return _python_node(name, target, resolved, inputs, outputs, refs, define, where)
    if resolved.kind == "torchbind":
        return _torchbind_node(name, resolved, inputs, outputs, refs, define, objects, where)
    op = resolved.op
    info = resolved.info if resolved.info is not None else op_info(op)
    args, kwargs = bind(info, inputs, refs, where, "operator")
    outs, returns_list = _op_outputs(info, outputs, define, where)
    returns_tuple = len(info.returns) > 1
    return Draft(name, target, "op", op, tuple(args), kwargs, outs, returns_list, returns_tuple)


def _python_node(
    name: str,
    target: str,
    resolved: Resolved,
    inputs: list[tuple[str, object, int | None]],
    outputs: list[Any],
    refs: Refs,
    define: Define,
    where: str,
) -> Draft:
    arity = python_arity(target)
    if len(inputs) != arity:
        raise ProgramError(f"{where}: takes {arity} arguments, the node passes {len(inputs)}")
    args: list[Arg] = []
    for i, (arg_name, arg, _) in enumerate(inputs):
        w = f"{where}, argument {arg_name or i!r}"
        tag, payload = union(arg, w)
        if tag not in ("as_sym_int", "as_sym_float", "as_sym_bool", "as_int", "as_float",
                       "as_bool"):  # fmt: skip
            raise ProgramError(f"{w}: SymInt arithmetic takes numbers or SymInts, got {tag}")
        args.append(convert_untyped(tag, payload, refs, w))
    if len(outputs) != 1:
        raise ProgramError(f"{where}: expected exactly one output, got {len(outputs)}")
    out = define_output(outputs[0], None, define, f"{where}, output 0")
    return Draft(name, target, "python", resolved.op, tuple(args), {}, (out,))


def _torchbind_node(
    name: str,
    resolved: Resolved,
    inputs: list[tuple[str, object, int | None]],
    outputs: list[Any],
    refs: Refs,
    define: Define,
    objects: Callable[[Arg], object],
    where: str,
) -> Draft:
    if len(inputs) < 2:
        raise ProgramError(f"{where}: call_torchbind needs an object and a method name")
    obj_arg = inputs[0][1]
    tag, payload = union(obj_arg, f"{where}, argument 0")
    if tag != "as_custom_obj":
        raise ProgramError(f"{where}, argument 0: expected as_custom_obj, got {tag}")
    obj_ref = convert_untyped(tag, payload, refs, f"{where}, argument 0")
    class_fqn = json_field(payload, "class_fqn", str, f"{where}, argument 0")
    mtag, method = union(inputs[1][1], f"{where}, argument 1")
    if mtag != "as_string" or not isinstance(method, str):
        raise ProgramError(f"{where}, argument 1: expected the method name as_string, got {mtag}")
    obj = objects(obj_ref)
    schema = method_schema(obj, class_fqn, method, where)
    info = schema_info(schema, skip_self=True)
    rest: list[tuple[str, object, int | None]] = []
    for position, (given_name, arg, kind) in enumerate(inputs[2:]):
        bound_name = given_name
        if given_name == "":  # positional, as torch.export writes higher-order operator inputs
            if position >= len(info.args):
                raise ProgramError(
                    f"{where}: method {class_fqn}.{method} takes {len(info.args)} arguments, "
                    "the node passes more"
                )
            bound_name = info.args[position].name
        rest.append((bound_name, arg, kind))
    args, kwargs = bind(info, rest, refs, where, "method")
    if kwargs:
        args.extend(kwargs.values())
    outs, as_tuple = _torchbind_outputs(schema, outputs, define, where)
    return Draft(
        name=name,
        target=CALL_TORCHBIND,
        kind="torchbind",
        op=resolved.op,
        args=(obj_ref, Static(method), *args),
        kwargs={},
        outputs=outs,
        returns_tuple=as_tuple,
    )


def method_schema(obj: object, class_fqn: str, method: str, where: str) -> torch.FunctionSchema:
    """The schema of ``obj.method``, after checking the object is a ``class_fqn`` instance."""
    if not isinstance(obj, torch.ScriptObject):
        raise ProgramError(
            f"{where}: the custom object is a {type(obj).__name__}, expected a TorchBind object "
            f"of class {class_fqn}"
        )
    actual = obj._type().qualified_name()
    if actual != class_fqn:
        raise ProgramError(
            f"{where}: the program expects a {class_fqn} object, got a {actual} object"
        )
    # A name that is no identifier is no method (and torch cannot even look up one that is not
    # valid UTF-8, such as a lone surrogate from a JSON escape).
    if (
        not method.isidentifier() or method.startswith("__") or not obj._has_method(method)  # type: ignore[attr-defined]
    ):
        raise ProgramError(f"{where}: class {class_fqn} has no method {method!r}")
    schema: torch.FunctionSchema = obj._get_method(method).schema
    return schema


def _torchbind_outputs(
    schema: torch.FunctionSchema, outputs: list[Any], define: Define, where: str
) -> tuple[tuple[int | None, ...], bool]:
    returns = schema.returns
    ret_type = returns[0].real_type if len(returns) == 1 else None
    as_tuple = ret_type is not None and ret_type.kind() == "TupleType"
    if as_tuple:
        expected = len(ret_type.elements())  # type: ignore[union-attr]
    elif ret_type is not None and ret_type.kind() == "NoneType":
        expected = len(outputs) if len(outputs) <= 1 else 0
    else:
        expected = len(returns)
    if len(outputs) != expected:
        raise ProgramError(
            f"{where}: the method returns {expected} values, the node lists {len(outputs)}"
        )
    slots = tuple(
        define_output(out, None, define, f"{where}, output {i}") for i, out in enumerate(outputs)
    )
    return slots, as_tuple
