"""Partitioned execution: place each operator node on the first executor that claims it, cut the
graph with ``torch.fx``'s ``CapabilityBasedPartitioner`` and prepare each partition on its
executor as a standalone :class:`~torchexec.Program`.
"""

from __future__ import annotations

import copy
import logging
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.fx.passes.operator_support import OperatorSupportBase

from torchexec._choice import options_for
from torchexec._errors import ExecutorError, ProgramError, UnsupportedOperatorError
from torchexec._executor import Executor, Runner
from torchexec._invoke import call_prepare
from torchexec._placement import (
    PartitionInfo,
    Placement,
    format_operator_counts,
    is_operator_node,
    operator_name,
)
from torchexec._program import Program
from torchexec._registry import REGISTRY
from torchexec._subprogram import SubProgram, build_subprogram

if TYPE_CHECKING:
    from torch.export import ExportedProgram
    from torch.fx import GraphModule, Node

__all__ = ["check_claims", "explain_placement", "prepare_partitioned"]

LOG = logging.getLogger("torchexec")

Claimants = Sequence[tuple[str, Executor, Mapping[str, object]]]
"""Executors in priority order: name, executor and its validated options."""


def _claims(name: str, impl: Executor, options: Mapping[str, object], node: Node) -> bool:
    supports = getattr(impl, "supports", None)
    if supports is None:
        return True
    try:
        return bool(supports(node, options))
    except Exception as exc:
        raise ExecutorError(
            f"executor {name!r} ({REGISTRY.distribution_of(name)}) failed in supports() on node "
            f"{node.name!r} ({operator_name(node.target)}): {type(exc).__name__}: {exc}"
        ) from exc


def _unclaimed_error(program: Program, names: Sequence[str], unclaimed: list[Node]) -> str:
    ops = format_operator_counts(Counter(operator_name(n.target) for n in unclaimed))
    count = f"{len(unclaimed)} operator node{'s' if len(unclaimed) != 1 else ''}"
    if len(names) == 1:
        return (
            f"executor {names[0]!r} does not claim {count} of {program.name!r}: {ops}. "
            f"Run them on another executor with a priority list, e.g. "
            f"executor=[{names[0]!r}, 'aten'] (nothing falls back to an executor you did not name)."
        )
    return (
        f"none of the executors {list(names)!r} claims {count} of {program.name!r}: {ops}. "
        f"End the priority list with an executor that claims them, e.g. "
        f"executor={[*names, 'aten']!r}."
    )


def assign(program: Program, gm: GraphModule, claimants: Claimants) -> dict[str, str]:
    """The name of each operator node (and of the ``getitem`` / ``get_attr`` nodes that belong
    to one) -> the name of the first executor in ``claimants`` that claims it.

    Nodes are named rather than held: fusing partitions rebuilds the graph's nodes, and names
    stay unique and stable.

    Raises:
        UnsupportedOperatorError: some operator node is claimed by none of them.
    """
    placed: dict[str, str] = {}
    unclaimed: list[Node] = []
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target is operator.getitem and isinstance(node.args[0], torch.fx.Node):
            producer = placed.get(node.args[0].name)
            if producer is not None:
                placed[node.name] = producer
            continue
        for name, impl, options in claimants:
            if _claims(name, impl, options, node):
                placed[node.name] = name
                break
        else:
            unclaimed.append(node)
    if unclaimed:
        raise UnsupportedOperatorError(
            _unclaimed_error(program, [c[0] for c in claimants], unclaimed)
        )
    for node in gm.graph.nodes:
        if node.op == "get_attr" and node.users:
            owners = {placed.get(user.name) for user in node.users}
            if len(owners) != 1 or None in owners:
                raise ProgramError(
                    f"{program.name!r}: the subgraph {node.target!r} is used by operators placed "
                    f"on different executors ({sorted(str(o) for o in owners)}); place its users "
                    "on one executor"
                )
            placed[node.name] = owners.pop()  # type: ignore[assignment]
    return placed


def check_claims(
    program: Program, name: str, impl: Executor, options: Mapping[str, object]
) -> None:
    """Raise :class:`UnsupportedOperatorError` unless ``impl`` claims every operator node."""
    assign(program, program.graph_module(), [(name, impl, options)])


class _PlacedOn(OperatorSupportBase):
    """The partitioner's notion of support for one executor: the nodes placed on it."""

    def __init__(self, placed: Mapping[str, str], name: str) -> None:
        super().__init__()
        self._placed = placed
        self._name = name

    def is_node_supported(self, submodules: Mapping[str, torch.nn.Module], node: Node) -> bool:
        return self._placed.get(node.name) == self._name


def _split(gm: GraphModule, placed: Mapping[str, str], names: Sequence[str]) -> list[Node]:
    """Fuse ``gm``'s nodes into one ``call_module`` per partition, in place, one round per
    executor in priority order; returns the partition nodes in execution order.

    Each round's partitions are cut by ``CapabilityBasedPartitioner``, which merges only what
    creates no cycle; earlier rounds' partitions are single nodes to later rounds, so the final
    graph of partitions is acyclic.
    """
    from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
    from torch.fx.passes.utils.fuser_utils import fuse_by_partitions

    for round_index, name in enumerate(names):
        partitioner = CapabilityBasedPartitioner(
            gm, _PlacedOn(placed, name), allows_single_node_partition=True
        )
        partitions = partitioner.propose_partitions()
        if partitions:
            fuse_by_partitions(
                gm,
                [p.nodes for p in partitions],
                prefix=f"_torchexec_{round_index}_",
                always_return_tuple=True,
            )
    parts = [n for n in gm.graph.nodes if n.op == "call_module"]
    stray = [n for n in gm.graph.nodes if is_operator_node(n)]
    if stray:
        raise ProgramError(
            f"internal error: operator nodes left outside every partition: "
            f"{', '.join(n.name for n in stray)}"
        )
    return parts


@dataclass
class _Cut:
    """A program cut for a priority list: the (functional) program, the graph of partitions and
    each partition node's executor; ``parts`` is empty when one executor claims everything."""

    ep: ExportedProgram
    top: GraphModule
    parts: list[tuple[Node, str]]
    only: str


def _cut(program: Program, names: Sequence[str], claimants: Claimants) -> _Cut:
    ep = _functional(program.exported_program())
    gm = torch.fx.GraphModule(ep.graph_module, copy.deepcopy(ep.graph_module.graph))
    placed = assign(program, gm, claimants)
    used = [name for name in names if name in placed.values()]
    if len(used) <= 1:
        return _Cut(ep, gm, [], used[0] if used else names[0])
    parts = [(node, _executor_of(node, names)) for node in _split(gm, placed, names)]
    return _Cut(ep, gm, parts, "")


def _claimants(
    names: Sequence[str], executor_parameters: Mapping[str, object] | None
) -> list[tuple[str, Executor, Mapping[str, object]]]:
    per_executor = options_for(names, executor_parameters)
    out: list[tuple[str, Executor, Mapping[str, object]]] = []
    for name in names:
        impl = REGISTRY.get(name)
        out.append((name, impl, impl.validate_options(per_executor[name])))
    return out


def explain_placement(
    program: Program, names: Sequence[str], executor_parameters: Mapping[str, object] | None
) -> Placement:
    """Where each operator node of ``program`` would run on ``names``, preparing nothing."""
    claimants = _claimants(names, executor_parameters)
    cut = _cut(program, names, claimants)
    if not cut.parts:
        return Placement(names, Placement.whole(program, cut.only).partitions)
    infos = []
    for index, (node, executor) in enumerate(cut.parts):
        sub = getattr(cut.top, str(node.target))
        ops = Counter(operator_name(n.target) for n in sub.graph.nodes if is_operator_node(n))
        infos.append(PartitionInfo(index, executor, dict(ops)))
    return Placement(names, infos)


def prepare_partitioned(
    program: Program,
    names: Sequence[str],
    executor_parameters: Mapping[str, object] | None,
) -> tuple[Runner, Placement]:
    """Prepare ``program`` on the priority list ``names``; the runner runs every partition."""
    claimants = _claimants(names, executor_parameters)
    impls = {name: impl for name, impl, _ in claimants}
    options = {name: opts for name, _, opts in claimants}
    cut = _cut(program, names, claimants)
    if not cut.parts:
        # One executor claims everything: it prepares the program itself (no copies, no cut).
        runner = call_prepare(impls[cut.only], cut.only, program, options[cut.only])
        return runner, Placement(names, Placement.whole(program, cut.only).partitions)
    subs: list[SubProgram] = []
    for index, (node, executor) in enumerate(cut.parts):
        sub = build_subprogram(cut.ep, cut.top, node, name=f"{program.name}.{index}.{executor}")
        sub.runner = call_prepare(impls[executor], executor, sub.program, options[executor])
        sub.executor = executor
        subs.append(sub)
    placement = Placement(
        names, [PartitionInfo(i, s.executor, s.operators) for i, s in enumerate(subs)]
    )
    _log_placement(program, names, placement)
    from torchexec._stitch import StitchedRunner

    return StitchedRunner(program, cut.ep, cut.top, subs), placement


def _functional(ep: ExportedProgram) -> ExportedProgram:
    """``ep`` as a functional ATen graph, the form the partitioner can cut.

    A partition boundary must not reorder a mutation (the partitioner sees only data
    dependencies), so in-place operators become outputs, applied once by the stitched runner.
    Training-IR programs may also hold Python calls (``torch.vmap``'s nesting helpers, for
    example) that only make sense together; ``run_decompositions({})`` traces them into ATen
    operators without decomposing anything else.
    """
    if not any(_needs_functionalization(n) for n in ep.graph.nodes if n.op == "call_function"):
        return ep
    try:
        functional: ExportedProgram = ep.run_decompositions({})
    except Exception as exc:
        raise ProgramError(f"cannot functionalize the program to partition it: {exc}") from exc
    return functional


def _needs_functionalization(node: Node) -> bool:
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return bool(target._schema.is_mutable)
    if target is operator.getitem or isinstance(target, torch._ops.HigherOrderOperator):
        return False
    # Size arithmetic on SymInts (operator.mul, torch.sym_max, ...) is functional already.
    module = getattr(target, "__module__", None)
    return not (
        module in ("_operator", "math") or getattr(target, "__name__", "").startswith("sym_")
    )


def _executor_of(part: Node, names: Sequence[str]) -> str:
    prefix = str(part.target).removeprefix("_torchexec_")
    return names[int(prefix.split("_", 1)[0])]


def _log_placement(program: Program, names: Sequence[str], placement: Placement) -> None:
    counts = placement.counts()
    later = {name: n for name, n in counts.items() if n and name != names[0]}
    if later:
        total = sum(counts.values())
        moved = ", ".join(
            f"{name} ({n}: {format_operator_counts(placement.operators(name), limit=3)})"
            for name, n in later.items()
        )
        LOG.info(
            "torchexec: %r runs %d of %d operator nodes on %r; the rest on %s",
            program.name,
            counts[names[0]],
            total,
            names[0],
            moved,
        )
