"""Resolve serialized targets to callables, only from an allow-list.

Nothing here evaluates or imports anything named by a program: an operator target
(``torch.ops.<ns>.<op>.<overload>`` or, in AOTInductor's extern-kernel JSON, ``<ns>::<op>.<overload>``)
is looked up in the dispatcher's registry through ``torch.ops`` only after its namespace passed the
allow-list, and the Python-level targets a program may name (SymInt arithmetic) come from a fixed
table.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from torchexec import ProgramError
from torchexec_proxy._schema import OpInfo, op_info

__all__ = [
    "CALL_TORCHBIND",
    "DEFAULT_NAMESPACES",
    "HOP_TARGETS",
    "PYTHON_TARGETS",
    "Resolved",
    "normalize_namespaces",
    "resolve_extern_target",
    "resolve_target",
]

DEFAULT_NAMESPACES: frozenset[str] = frozenset({"aten", "prims", "_c10d_functional"})
"""Operator namespaces allowed without asking: ATen, prims, and the functional collectives
(``_c10d_functional``), which run through torch.distributed on the process group the program
names."""

CALL_TORCHBIND = "torch.ops.higher_order.call_torchbind"
"""The serialized target of a TorchBind method call."""

HOP_TARGETS: dict[str, str] = {
    "torch.ops.higher_order.cond": "cond",
    "torch.ops.higher_order.while_loop": "while_loop",
    "torch.ops.higher_order.map_impl": "map",
    "torch.ops.higher_order.scan": "scan",
    "torch.ops.higher_order.invoke_subgraph": "invoke_subgraph",
    "torch.ops.higher_order.auto_functionalized": "auto_functionalized",
    "torch.ops.higher_order.auto_functionalized_v2": "auto_functionalized_v2",
    "torch.ops.higher_order.with_effects": "with_effects",
}
"""The higher-order operators (besides ``call_torchbind``) that the loader plans as ``"hop"``
plan nodes, by serialized target: the plan's short name of each
(:data:`torchexec_proxy.plan.HOP_LAYOUTS`)."""

PYTHON_TARGETS: dict[str, Callable[..., Any]] = {
    **{
        f"_operator.{name}": getattr(operator, name)
        for name in (
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
            "lshift",
            "rshift",
        )
    },
    "math.trunc": math.trunc,
    "torch.sym_not": torch.sym_not,
    "torch.sym_int": torch.sym_int,
    "torch.sym_float": torch.sym_float,
    "torch.sym_ite": torch.sym_ite,
    "torch.sym_max": torch.sym_max,
    "torch.sym_min": torch.sym_min,
    "torch._sym_sqrt": torch._sym_sqrt,  # type: ignore[attr-defined]
}
"""The Python functions a program may call: arithmetic on SymInts, SymFloats and SymBools."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Resolved:
    """A resolved target: the plan node's ``kind`` and callable, the operator schema and its
    digest (operators only)."""

    kind: Literal["op", "torchbind", "python"]
    op: Any
    schema: torch.FunctionSchema | None
    info: OpInfo | None = None


def normalize_namespaces(extra: Iterable[str]) -> frozenset[str]:
    """The default namespaces plus ``extra``, each checked to be a plain identifier."""
    if isinstance(extra, str):
        raise ProgramError(
            f"allowed_namespaces must be a list of namespace names, not the string {extra!r}"
        )
    names = set(DEFAULT_NAMESPACES)
    for ns in extra:
        if not isinstance(ns, str) or not _NAME.match(ns) or ns.startswith("__"):
            raise ProgramError(f"allowed_namespaces: {ns!r} is not an operator namespace name")
        names.add(ns)
    return frozenset(names)


def _not_allowed(ns: str, target: str, where: str, allowed: frozenset[str]) -> ProgramError:
    return ProgramError(
        f"{where}: operator {target!r} is in namespace {ns!r}, which is not allowed "
        f"(allowed: {', '.join(sorted(allowed))}). Pass allowed_namespaces=[{ns!r}] if you trust "
        "the operators registered there."
    )


_FOUND: dict[tuple[str, str, str], torch._ops.OpOverload] = {}


def _lookup(ns: str, name: str, overload: str) -> torch._ops.OpOverload | None:
    """The registered overload, or ``None``. Only the dispatcher's registry is consulted.

    Hits are cached; misses are not, so an operator library loaded later is found then.
    """
    key = (ns, name, overload)
    found = _FOUND.get(key)
    if found is not None:
        return found
    if not torch._C._jit_get_schemas_for_operator(f"{ns}::{name}"):
        return None
    namespace = getattr(torch.ops, ns, None)
    if not isinstance(namespace, torch._ops._OpNamespace):
        return None
    try:
        packet = getattr(namespace, name)
    except (AttributeError, RuntimeError):
        return None
    if not isinstance(packet, torch._ops.OpOverloadPacket) or overload not in packet.overloads():  # type: ignore[no-untyped-call]
        return None
    op = getattr(packet, overload)
    if not isinstance(op, torch._ops.OpOverload):
        return None
    _FOUND[key] = op
    return op


def _check_names(parts: Iterable[str], target: str, where: str) -> None:
    # Dunder operator names exist (aten::__and__); they are safe because a name is only used as
    # an attribute after the dispatcher confirmed an operator of that name exists.
    for part in parts:
        if not _NAME.match(part):
            raise ProgramError(f"{where}: malformed operator target {target!r}")


def resolve_target(target: str, allowed: frozenset[str], where: str) -> Resolved:
    """Resolve a target of the ExportedProgram JSON (``torch.ops.aten.add.Tensor``, ...)."""
    fn = PYTHON_TARGETS.get(target)
    if fn is not None:
        return Resolved("python", fn, None)
    if target == CALL_TORCHBIND:
        return Resolved("torchbind", torch.ops.higher_order.call_torchbind, None)
    parts = target.split(".")
    if len(parts) == 4 and parts[:3] == ["torch", "ops", "higher_order"]:
        supported = ", ".join(["call_torchbind", *(t.rsplit(".", 1)[1] for t in HOP_TARGETS)])
        raise ProgramError(
            f"{where}: the higher-order operator {target!r} is not supported by the proxy "
            f"executor (supported: {supported})"
        )
    if len(parts) != 5 or parts[0] != "torch" or parts[1] != "ops":
        raise ProgramError(
            f"{where}: unknown target {target!r}; expected an operator "
            "(torch.ops.<namespace>.<op>.<overload>), torch.ops.higher_order.call_torchbind, "
            "or SymInt arithmetic (_operator.add, ...)"
        )
    _, _, ns, name, overload = parts
    _check_names((ns, name, overload), target, where)
    return _resolve_op(ns, name, overload, target, allowed, where)


def resolve_extern_target(target: str, allowed: frozenset[str], where: str) -> Resolved:
    """Resolve a target of AOTInductor's extern-kernel JSON (``aten::add.Tensor``, ...)."""
    if target in ("call_torchbind", CALL_TORCHBIND):
        return Resolved("torchbind", torch.ops.higher_order.call_torchbind, None)
    if target.startswith("torch.ops."):
        return resolve_target(target, allowed, where)
    ns, sep, rest = target.partition("::")
    name, _, overload = rest.partition(".")
    if not sep or not name:
        raise ProgramError(f"{where}: malformed extern kernel target {target!r}")
    overload = overload or "default"
    _check_names((ns, name, overload), target, where)
    return _resolve_op(ns, name, overload, target, allowed, where)


def _resolve_op(
    ns: str, name: str, overload: str, target: str, allowed: frozenset[str], where: str
) -> Resolved:
    if ns not in allowed:
        raise _not_allowed(ns, target, where, allowed)
    op = _lookup(ns, name, overload)
    if op is None:
        raise ProgramError(
            f"{where}: unknown operator {target!r}: no overload {overload!r} of {ns}::{name} is "
            "registered (is the library that defines it loaded?)"
        )
    return Resolved("op", op, op._schema, op_info(op))
