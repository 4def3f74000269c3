"""Higher-order operators that call one operator: ``auto_functionalized``,
``auto_functionalized_v2`` (a mutating operator, functionalized) and ``with_effects`` (an
operator with side effects, ordered by a token).

The operator they call (an ``as_operator`` argument) goes through the allow-list like any other
target, and its arguments are checked against its schema. At run the plan node calls the
higher-order operator itself (``torch.ops.higher_order.<name>``) with the prepared arguments, so
the semantics are torch's own (clones of the bases, views regenerated from them, the mutated values
returned as outputs; a fresh token), bit for bit what the aten executor computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from torchexec import ProgramError
from torchexec_proxy._convert import Refs, convert_argument, convert_untyped
from torchexec_proxy._json import union
from torchexec_proxy._nodes import Define, Draft, Inputs, bind, define_output
from torchexec_proxy._schema import OpInfo
from torchexec_proxy._targets import Resolved
from torchexec_proxy.plan import Arg, SlotList, Static

__all__ = ["CALLING_HOPS", "draft_op_hop"]

CALLING_HOPS = frozenset({"auto_functionalized", "auto_functionalized_v2", "with_effects"})
"""The short names of the higher-order operators drafted here."""

# The bookkeeping keywords auto_functionalized_v2 adds per mutated argument
# (torch/_higher_order_ops/auto_functionalize.py: how each argument is a view of its base).
_VIEW_SUFFIXES = ("base_index", "size", "stride", "storage_offset", "slice_dim", "slice_start",
                  "slice_end", "alias")  # fmt: skip


def _operator(
    arg: object, resolve: Callable[[str, str], Resolved], where: str
) -> tuple[torch._ops.OpOverload, OpInfo]:
    tag, payload = union(arg, where)
    if tag != "as_operator" or not isinstance(payload, str):
        raise ProgramError(f"{where}: expected the operator to call (as_operator), got {tag}")
    resolved = resolve(payload, where)
    if resolved.kind != "op" or resolved.info is None:
        raise ProgramError(f"{where}: {payload!r} is not an operator")
    return resolved.op, resolved.info


def _mutated(op: torch._ops.OpOverload) -> list[str]:
    return [
        a.name for a in op._schema.arguments if a.alias_info is not None and a.alias_info.is_write
    ]


def draft_op_hop(
    name: str,
    target: str,
    hop: str,
    inputs: Inputs,
    outputs: list[Any],
    ref: Refs,
    define: Define,
    resolve: Callable[[str, str], Resolved],
    where: str,
) -> Draft:
    """Validate an ``auto_functionalized``, ``auto_functionalized_v2`` or ``with_effects`` node.

    The draft's ``args`` and ``kwargs`` are those of the higher-order operator's call (see
    :data:`torchexec_proxy.plan.HOP_LAYOUTS`).
    """
    if hop == "with_effects":
        args, kwargs, count = _with_effects(inputs, ref, resolve, where)
    else:
        if not inputs or inputs[0][0]:
            raise ProgramError(f"{where}: {hop} takes the operator to call first")
        op, info = _operator(inputs[0][1], resolve, f"{where}, argument 0")
        mutated = _mutated(op)
        if not mutated:
            raise ProgramError(f"{where}: {op} mutates none of its arguments")
        if _writes_out(op):
            raise ProgramError(f"{where}: {hop} of the out= operator {op} is not supported")
        given = {}
        for arg_name, arg, _ in inputs[1:]:
            if not arg_name or arg_name in given:
                raise ProgramError(f"{where}: {hop} takes named arguments once each after the "
                                   f"operator, got {arg_name!r}")  # fmt: skip
            given[arg_name] = arg
        if hop == "auto_functionalized":
            kwargs, extra = _functionalized_v1(op, info, given, ref, where), len(mutated)
        else:
            kwargs, extra = _functionalized_v2(op, info, mutated, given, ref, where)
        args, count = (Static(op),), max(1, len(info.returns)) + extra
    if hop == "with_effects" and count == 2 and len(outputs) == 1:
        count = 1  # the None of an operator returning nothing is not listed
    if len(outputs) != count:
        raise ProgramError(f"{where}: {hop} returns {count} values here, the node lists "
                           f"{len(outputs)} outputs")  # fmt: skip
    outs = tuple(
        define_output(out, None, define, f"{where}, output {i}") for i, out in enumerate(outputs)
    )
    return Draft(name, target, "hop", hop, args, kwargs, outs, False, True)


def _schema_args(
    info: OpInfo, given: dict[str, object], skip: set[str], ref: Refs, where: str
) -> dict[str, Arg]:
    """The operator's arguments among ``given`` (checked against their schema types); every
    argument without a default but those in ``skip`` must be there."""
    out: dict[str, Arg] = {}
    for a in info.args:
        if a.name in given:
            out[a.name] = convert_argument(given[a.name], a, ref, f"{where}, argument {a.name!r}")
        elif not a.has_default and a.name not in skip:
            raise ProgramError(f"{where}: missing argument {a.name!r} ({a.type_str}) of "
                               f"{info.name}")  # fmt: skip
    return out


def _functionalized_v1(
    op: torch._ops.OpOverload, info: OpInfo, given: dict[str, object], ref: Refs, where: str
) -> dict[str, Arg]:
    known = {a.name for a in info.args} | {"_only_clone_these_tensors"}
    for key in given:
        if key not in known:
            raise ProgramError(f"{where}: {op} has no argument {key!r}")
    kwargs = _schema_args(info, given, set(), ref, where)
    if "_only_clone_these_tensors" in given:
        tag, payload = union(given["_only_clone_these_tensors"], where)
        kwargs["_only_clone_these_tensors"] = convert_untyped(tag, payload, ref, where)
    return kwargs


def _functionalized_v2(
    op: torch._ops.OpOverload,
    info: OpInfo,
    mutated: list[str],
    given: dict[str, object],
    ref: Refs,
    where: str,
) -> tuple[dict[str, Arg], int]:
    bookkeeping = {f"_{m}_{s}" for m in mutated for s in _VIEW_SUFFIXES}
    bookkeeping |= {"_all_bases", "_only_clone_these_bases"}
    schema_names = {a.name for a in info.args} - set(mutated)
    for key in given:
        if key not in bookkeeping and key not in schema_names:
            raise ProgramError(f"{where}: unexpected argument {key!r} for {op} "
                               "(auto_functionalized_v2)")  # fmt: skip
    kwargs = _schema_args(
        info, {k: v for k, v in given.items() if k in schema_names}, set(mutated), ref, where
    )
    if "_all_bases" not in given:
        raise ProgramError(f"{where}: auto_functionalized_v2 needs _all_bases")
    for key in sorted(bookkeeping & given.keys()):
        w = f"{where}, argument {key!r}"
        tag, payload = union(given[key], w)
        kwargs[key] = convert_untyped(tag, payload, ref, w)
    bases = kwargs["_all_bases"]
    if not isinstance(bases, SlotList) or None in bases.items:
        raise ProgramError(f"{where}: _all_bases must be a list of tensors")
    for m in mutated:
        index = kwargs.get(f"_{m}_base_index")
        if index is None:
            continue
        if not (isinstance(index, Static) and type(index.value) is int
                and 0 <= index.value < len(bases.items)):  # fmt: skip
            raise ProgramError(
                f"{where}: _{m}_base_index must index one of the {len(bases.items)} bases"
            )
    return kwargs, len(bases.items)


def _with_effects(
    inputs: Inputs, ref: Refs, resolve: Callable[[str, str], Resolved], where: str
) -> tuple[tuple[Arg, ...], dict[str, Arg], int]:
    if len(inputs) < 2 or inputs[0][0] or inputs[1][0]:
        raise ProgramError(f"{where}: with_effects takes a token and the operator to call first")
    tag, payload = union(inputs[0][1], f"{where}, argument 0")
    if tag != "as_tensor":
        raise ProgramError(f"{where}, argument 0: expected the effect token, got {tag}")
    token = convert_untyped(tag, payload, ref, f"{where}, argument 0")
    op, info = _operator(inputs[1][1], resolve, f"{where}, argument 1")
    rest: Inputs = []
    for position, (given_name, arg, kind) in enumerate(inputs[2:]):
        bound_name = given_name
        if not given_name:  # positional, as torch.export writes higher-order operator inputs
            if position >= len(info.args):
                raise ProgramError(f"{where}: {op} takes {len(info.args)} arguments, the node "
                                   "passes more")  # fmt: skip
            bound_name = info.args[position].name
        rest.append((bound_name, arg, kind))
    args, kwargs = bind(info, rest, ref, where, "operator")
    # An operator returning nothing gives (token, None): the None may be listed or not.
    return (token, Static(op), *args), kwargs, 1 + max(1, len(info.returns))


def _writes_out(op: torch._ops.OpOverload) -> bool:
    """Whether ``op`` is an ``out=`` variant: a keyword-only argument it writes to (the ATen
    convention; read from the schema, which every torch version has)."""
    return any(
        a.kwarg_only and a.alias_info is not None and a.alias_info.is_write
        for a in op._schema.arguments
    )
