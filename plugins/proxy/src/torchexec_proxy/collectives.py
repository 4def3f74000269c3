"""Functional collectives in a plan: the process groups a program names, bound at load.

A program exported with ``_c10d_functional`` operators names its process group by a string (the
world group is ``"0"``); torch resolves the name on each rank at run time. The loader's executors
resolve every name once while preparing, so a program whose group does not exist fails then,
naming the node and the group, instead of mid-run. The ``process_groups`` option maps a name in
the program to a group of this process, for programs saved elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torchexec import ProgramError
from torchexec_proxy.plan import Plan, PlanNode, Static

__all__ = ["NAMESPACE", "bind_process_groups", "group_names"]

NAMESPACE = "_c10d_functional"
_GROUP_ARG = "group_name"


def _group_arg(node: PlanNode) -> int | None:
    """The index of ``node``'s process-group argument, if it is a functional collective."""
    if node.kind != "op" or getattr(node.op, "namespace", None) != NAMESPACE:
        return None
    for i, arg in enumerate(node.op._schema.arguments):
        if arg.name == _GROUP_ARG and not arg.kwarg_only:
            return i
    return None


def group_names(plan: Plan) -> dict[str, list[str]]:
    """Process-group name -> the nodes that use it."""
    out: dict[str, list[str]] = {}
    for node in plan.nodes:
        i = _group_arg(node)
        if i is not None and isinstance(node.args[i], Static):
            out.setdefault(str(node.args[i].value), []).append(node.name)  # type: ignore[union-attr]
    return out


def _resolve(name: str, node: str, mapping: Mapping[str, Any]) -> str:
    import torch.distributed as dist

    if name in mapping:
        group = mapping[name]
        if not isinstance(group, dist.ProcessGroup):
            raise ProgramError(
                f"process_groups[{name!r}] must be a torch.distributed.ProcessGroup, got "
                f"{type(group).__name__}"
            )
        return str(group.group_name)
    if not dist.is_available() or not dist.is_initialized():
        raise ProgramError(
            f"node {node!r} runs a collective on process group {name!r}, but torch.distributed "
            "is not initialised in this process: call torch.distributed.init_process_group "
            "first (or start the command with torchrun)"
        )
    # torch's own resolver (what the collective calls at run time); it has no public name.
    from torch.distributed import distributed_c10d

    try:
        distributed_c10d._resolve_process_group(name)  # type: ignore[attr-defined,arg-type]
    except Exception:
        raise ProgramError(
            f"node {node!r} runs a collective on process group {name!r}, which does not exist "
            "in this process; map it to one with the option "
            f"process_groups={{{name!r}: group}}"
        ) from None
    return name


def bind_process_groups(plan: Plan, mapping: Mapping[str, Any]) -> Plan:
    """``plan`` with each collective's group name checked and mapped through ``mapping``.

    Raises:
        ProgramError: a group does not exist (naming the node and the group), torch.distributed
            is not initialised, or ``mapping`` holds something other than process groups.
    """
    unused = set(mapping) - set(group_names(plan))
    if unused:
        raise ProgramError(
            f"process_groups names {sorted(unused)}, which the program does not use "
            f"(it uses {sorted(group_names(plan)) or 'no process group'})"
        )
    nodes = list(plan.nodes)
    changed = False
    for n, node in enumerate(nodes):
        i = _group_arg(node)
        if i is None:
            continue
        arg = node.args[i]
        if not isinstance(arg, Static):
            raise ProgramError(f"node {node.name!r}: the process group must be a constant name")
        bound = _resolve(str(arg.value), node.name, mapping)
        if bound != arg.value:
            args = (*node.args[:i], Static(bound), *node.args[i + 1 :])
            nodes[n] = dataclasses.replace(node, args=args)
            changed = True
    return dataclasses.replace(plan, nodes=tuple(nodes)) if changed else plan
