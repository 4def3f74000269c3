"""Plan the subgraphs of higher-order operators: each ``as_graph`` becomes a
:class:`~torchexec_proxy.plan.SubPlan` with its own names, slots and checks, built once at load.

A :class:`GraphPlanner` serves one program: the loader asks it for the :data:`HopDrafter` of the
program's graph, and each subgraph it plans gets a drafter one nesting level deeper, up to
:data:`~torchexec_proxy._hops.MAX_DEPTH`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torchexec import ProgramError
from torchexec_proxy._convert import static_scalar
from torchexec_proxy._hops import MAX_DEPTH, OutputInfo, draft_hop
from torchexec_proxy._json import field, union
from torchexec_proxy._nodes import Draft, HopDrafter, Inputs, draft_node
from torchexec_proxy._op_hops import CALLING_HOPS, draft_op_hop
from torchexec_proxy._slots import FOREVER, assign_slots
from torchexec_proxy._targets import HOP_TARGETS, Resolved
from torchexec_proxy._values import KIND_WORDS, USER_VALUE_TAGS, Values, value_name
from torchexec_proxy.plan import Slot, Static, SubPlan

__all__ = ["GraphPlanner"]


class GraphPlanner:
    """Plans the subgraphs of one program.

    Args:
        resolve: ``resolve(target, where)`` -> :class:`~torchexec_proxy._targets.Resolved`
            (the program's allow-list, shared by every subgraph).
    """

    def __init__(self, resolve: Callable[[str, str], Resolved]) -> None:
        self.resolve = resolve
        self._shared: dict[str, tuple[object, list[str], tuple[SubPlan, list[OutputInfo]]]] = {}

    def drafter(self, values: Values, depth: int) -> HopDrafter:
        """The drafter of higher-order operator nodes of a graph at nesting ``depth`` (the
        program's graph is depth 0) whose names are ``values``."""

        def hop(name: str, target: str, inputs: Inputs, outputs: list[Any], where: str) -> Draft:
            short = HOP_TARGETS[target]
            if short in CALLING_HOPS:
                return draft_op_hop(name, target, short, inputs, outputs, values.ref,
                                    values.define, self.resolve, where)  # fmt: skip
            if depth >= MAX_DEPTH:
                raise ProgramError(
                    f"{where}: higher-order operators nest more than {MAX_DEPTH} levels deep"
                )

            def plan(
                payload: object, kinds: Sequence[str], where: str, shared: str | None = None
            ) -> tuple[SubPlan, list[OutputInfo]]:
                return self.plan(payload, kinds, where, depth + 1, shared)

            return draft_hop(name, target, inputs, outputs, values.ref, values.define, plan, where)

        return hop

    def plan(
        self,
        payload: object,
        kinds: Sequence[str],
        where: str,
        depth: int,
        shared: str | None = None,
    ) -> tuple[SubPlan, list[OutputInfo]]:
        """Plan the subgraph ``payload`` (an ``as_graph``: ``{"name", "graph"}``) called with
        operands of ``kinds``; return its plan and what each output is. A ``shared`` identifier
        plans it once (see :class:`~torchexec_proxy._hops.PlanSubgraph`)."""
        if shared is not None:
            known = self._shared.get(shared)
            if known is None:
                planned = self.plan(payload, kinds, where, depth)
                self._shared[shared] = (payload, list(kinds), planned)
                return planned
            if known[0] != payload or known[1] != list(kinds):
                raise ProgramError(
                    f"{where}: the subgraph {shared!r} was called before with another graph or "
                    "other operand kinds"
                )
            return known[2]
        name = field(payload, "name", str, where)
        w = f"{where}, subgraph {name!r}"
        graph = field(payload, "graph", dict, w)
        try:
            return self._plan(name, graph, kinds, depth)
        except ProgramError as exc:
            raise ProgramError(f"{w}: {exc}") from exc.__cause__

    def _plan(
        self, name: str, graph: Mapping[str, Any], kinds: Sequence[str], depth: int
    ) -> tuple[SubPlan, list[OutputInfo]]:
        nodes = field(graph, "nodes", list, "graph")
        values = Values(nodes)
        input_vids = self._inputs(field(graph, "inputs", list, "graph"), kinds, values)
        hop = self.drafter(values, depth)
        drafts: list[Draft] = []
        for i, node in enumerate(nodes):
            values.begin(i)
            draft = draft_node(
                i, node, self.resolve, values.ref, values.define, values.object_of, hop
            )
            draft.reads = values.reads
            drafts.append(draft)
        values.begin(FOREVER)
        meta = graph.get("tensor_values")
        outputs, infos = _outputs(
            field(graph, "outputs", list, "graph"), values, meta if isinstance(meta, dict) else {}
        )
        assignment = assign_slots(drafts, values.last, (), input_vids)
        slot_of = assignment.slot_of

        def slot(vid: int) -> int:
            s = slot_of[vid]
            assert s is not None  # a returned value always has a slot
            return s

        sub = SubPlan(
            name=name,
            num_slots=assignment.num_slots,
            inputs=tuple(slot_of[v] for v in input_vids),
            nodes=tuple(assignment.nodes),
            outputs=tuple(Slot(slot(o.index)) if isinstance(o, Slot) else o for o in outputs),
        )
        return sub, infos

    @staticmethod
    def _inputs(listed: list[Any], kinds: Sequence[str], values: Values) -> list[int]:
        if len(listed) != len(kinds):
            raise ProgramError(
                f"the subgraph takes {len(listed)} inputs, the node passes {len(kinds)} operands"
            )
        vids: list[int] = []
        for i, (arg, kind) in enumerate(zip(listed, kinds, strict=True)):
            where = f"subgraph input {i}"
            tag, payload = union(arg, where)
            got = USER_VALUE_TAGS.get(tag)
            if got is None or got == "custom_obj":
                raise ProgramError(f"{where}: expected a tensor or a SymInt, got {tag}")
            if got != kind:
                raise ProgramError(
                    f"{where} is {KIND_WORDS[got]}, but the node passes {KIND_WORDS[kind]}"
                )
            vids.append(values.define(value_name(tag, payload, where), kind, where))
        return vids


def _outputs(
    listed: list[Any], values: Values, meta: Mapping[str, Any]
) -> tuple[list[Slot | Static], list[OutputInfo]]:
    outputs: list[Slot | Static] = []
    infos: list[OutputInfo] = []
    for i, arg in enumerate(listed):
        where = f"subgraph output {i}"
        tag, payload = union(arg, where)
        kind = USER_VALUE_TAGS.get(tag)
        if kind == "custom_obj":
            raise ProgramError(f"{where}: a subgraph cannot return a TorchBind object")
        if kind is None:
            outputs.append(Static(static_scalar(tag, payload, where)))
            infos.append(OutputInfo(None))
            continue
        name = value_name(tag, payload, where)
        outputs.append(values.ref(name, kind, where))
        infos.append(OutputInfo(kind, _dtype(meta.get(name)) if kind == "tensor" else None))
    return outputs, infos


def _dtype(meta: object) -> int | None:
    code = meta.get("dtype") if isinstance(meta, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None
