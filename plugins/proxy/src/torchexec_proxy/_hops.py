"""Higher-order operators with subgraphs (``cond``, ``while_loop``, ``map_impl``, ``scan``,
``invoke_subgraph``): one serialized node -> one ``"hop"`` draft whose subgraphs are planned
once, here at load.

torch.export writes these nodes without a schema: every input is positional (``name == ""``),
subgraphs are ``as_graph`` arguments (``{"name": ..., "graph": Graph}``) and operand groups are
``as_tensors`` lists. Everything a run relies on is checked here: the argument count and
types, each subgraph's input count and kinds against the operands it receives, its output count
and kinds against the node's outputs (and, for ``cond``, against the other branch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torchexec import ProgramError
from torchexec_proxy._convert import Refs
from torchexec_proxy._json import field as json_field, short, union
from torchexec_proxy._nodes import Define, Draft, Inputs, define_output
from torchexec_proxy._targets import HOP_TARGETS
from torchexec_proxy._values import KIND_WORDS, value_name
from torchexec_proxy.plan import Slot, SlotList, Static, SubPlan

__all__ = ["MAX_DEPTH", "OutputInfo", "PlanSubgraph", "draft_hop"]

MAX_DEPTH = 16
"""How deeply higher-order operators may nest (a subgraph of a subgraph of ...)."""


@dataclass(frozen=True)
class OutputInfo:
    """What a subgraph returns at one output position: the value's kind (``"tensor"``,
    ``"sym_int"``, ...; ``None`` for a constant) and its dtype code (``None`` when unknown)."""

    kind: str | None
    dtype: int | None = None

    def words(self) -> str:
        what = "a constant" if self.kind is None else KIND_WORDS.get(self.kind, self.kind)
        return what if self.dtype is None else f"{what} of dtype code {self.dtype}"


class PlanSubgraph(Protocol):
    """Plans one subgraph (one nesting level deeper than the node calling it)."""

    def __call__(
        self, payload: object, kinds: Sequence[str], where: str, shared: str | None = None
    ) -> tuple[SubPlan, list[OutputInfo]]:
        """``payload`` is the ``as_graph`` argument, ``kinds`` the kinds of the operands passed
        to it. A ``shared`` identifier (``invoke_subgraph``) plans the subgraph once: later calls
        with the same identifier get the same :class:`SubPlan`, and must carry the same graph.
        Returns the plan and what each output is."""
        ...


_VALUE_KINDS = {"as_tensor": "tensor", "as_sym_int": "sym_int", "as_sym_float": "sym_float",
                "as_sym_bool": "sym_bool"}  # fmt: skip
_GROUP_KINDS = {"as_tensors": "tensor", "as_sym_ints": "sym_int", "as_sym_bools": "sym_bool"}
_ARITY = {"cond": 4, "while_loop": 4, "map": 3, "scan": 4, "invoke_subgraph": -1}
_USAGE = {
    "cond": "(pred, true_graph, false_graph, operands)",
    "while_loop": "(cond_graph, body_graph, carried_inputs, additional_inputs)",
    "map": "(body_graph, xs, args)",
    "scan": "(combine_graph, init, xs, additional_inputs)",
    "invoke_subgraph": "(subgraph, identifier, *operands)",
}


def _positional(inputs: Inputs, hop: str, where: str) -> list[object]:
    if len(inputs) != _ARITY[hop] and not (_ARITY[hop] < 0 and len(inputs) >= 2):
        raise ProgramError(
            f"{where}: {hop} takes {_ARITY[hop]} arguments {_USAGE[hop]}, the node passes "
            f"{len(inputs)}"
        )
    for i, (name, _, _) in enumerate(inputs):
        if name:
            raise ProgramError(
                f"{where}, input {i}: {hop} takes positional arguments only, got {name!r}"
            )
    return [arg for _, arg, _ in inputs]


def _group(arg: object, ref: Refs, where: str) -> tuple[SlotList, list[str]]:
    """An operand list: the slots it reads and the kind of each value."""
    tag, payload = union(arg, where)
    kind = _GROUP_KINDS.get(tag)
    if kind is None:
        raise ProgramError(f"{where}: expected a list of tensors (as_tensors), got {tag}")
    if not isinstance(payload, list):
        raise ProgramError(f"{where}: {tag} must be a list, got {short(payload)}")
    items: list[int | None] = []
    for i, item in enumerate(payload):
        w = f"{where}[{i}]"
        if kind == "tensor":
            name = json_field(item, "name", str, w)
        else:
            inner, name = union(item, w)
            if inner != "as_name" or not isinstance(name, str):
                raise ProgramError(f"{w}: operands must be named values, got {short(item)}")
        value = ref(name, kind, w)
        if not isinstance(value, Slot):
            raise ProgramError(f"{w}: operands must be named values, got a constant")
        items.append(value.index)
    return SlotList(tuple(items)), [kind] * len(items)


def _graph(arg: object, where: str) -> object:
    tag, payload = union(arg, where)
    if tag != "as_graph":
        raise ProgramError(f"{where}: expected a subgraph (as_graph), got {tag}")
    return payload


def _check_outputs(
    got: Sequence[OutputInfo], want: Sequence[OutputInfo], what: str, where: str
) -> None:
    """``got`` (a subgraph's outputs) must match ``want`` in count, kind and known dtypes."""
    if len(got) != len(want):
        raise ProgramError(f"{where}: {what} returns {len(got)} values, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        kind_differs = g.kind != w.kind and None not in (g.kind, w.kind)
        dtype_differs = g.dtype != w.dtype and None not in (g.dtype, w.dtype)
        if kind_differs or dtype_differs:
            raise ProgramError(f"{where}: {what} output {i} is {g.words()}, expected {w.words()}")


def _define_outputs(
    outputs: list[Any], expected: int, define: Define, hop: str, where: str
) -> tuple[int | None, ...]:
    if len(outputs) != expected:
        raise ProgramError(
            f"{where}: {hop} returns {expected} values here, the node lists {len(outputs)} outputs"
        )
    return tuple(
        define_output(out, None, define, f"{where}, output {i}") for i, out in enumerate(outputs)
    )


def draft_hop(
    name: str,
    target: str,
    inputs: Inputs,
    outputs: list[Any],
    ref: Refs,
    define: Define,
    plan: PlanSubgraph,
    where: str,
) -> Draft:
    """Validate a higher-order operator node and plan its subgraphs (see the module docstring).

    Args:
        name: the node's name.
        target: its serialized target, a key of :data:`~torchexec_proxy._targets.HOP_TARGETS`.
        inputs: its serialized inputs.
        outputs: its serialized outputs.
        ref: reads a named value of the enclosing graph.
        define: defines the values the node writes.
        plan: plans one subgraph (one nesting level deeper).
        where: how messages name the node.
    """
    hop = HOP_TARGETS[target]
    args = _positional(inputs, hop, where)
    subplans: list[SubPlan]
    if hop == "cond":
        pred = _pred(args[0], ref, f"{where}, argument 0 (pred)")
        operands, kinds = _group(args[3], ref, f"{where}, argument 3 (operands)")
        true, true_out = plan(_graph(args[1], f"{where}, argument 1"), kinds, where)
        false, false_out = plan(_graph(args[2], f"{where}, argument 2"), kinds, where)
        _check_outputs(
            false_out, true_out, f"the false branch {false.name!r}",
            f"{where}: the branches disagree:",
        )  # fmt: skip
        plan_args: tuple[Any, ...] = (pred, operands)
        subplans = [true, false]
        count = len(true_out)
    elif hop == "while_loop":
        carried, carried_kinds = _group(args[2], ref, f"{where}, argument 2 (carried_inputs)")
        extra, extra_kinds = _group(args[3], ref, f"{where}, argument 3 (additional_inputs)")
        kinds = carried_kinds + extra_kinds
        cond, cond_out = plan(_graph(args[0], f"{where}, argument 0"), kinds, where)
        body, body_out = plan(_graph(args[1], f"{where}, argument 1"), kinds, where)
        if len(cond_out) != 1 or cond_out[0].kind not in ("tensor", "sym_bool", None):
            got = ", ".join(o.words() for o in cond_out) or "nothing"
            raise ProgramError(
                f"{where}: the condition {cond.name!r} must return one boolean, it returns {got}"
            )
        _check_outputs(
            body_out, [OutputInfo(k) for k in carried_kinds], f"the body {body.name!r}", where
        )
        plan_args, subplans, count = (carried, extra), [cond, body], len(carried_kinds)
    elif hop == "map":
        xs, xs_kinds = _tensor_group(args[1], ref, f"{where}, argument 1 (xs)")
        extra, extra_kinds = _group(args[2], ref, f"{where}, argument 2 (args)")
        body, body_out = plan(_graph(args[0], f"{where}, argument 0"), xs_kinds + extra_kinds,
                              where)  # fmt: skip
        _tensors_only(body_out, 0, f"the body {body.name!r}", where)
        plan_args, subplans, count = (xs, extra), [body], len(body_out)
    elif hop == "invoke_subgraph":
        ident_tag, ident = union(args[1], f"{where}, argument 1")
        if ident_tag != "as_string" or not isinstance(ident, str):
            raise ProgramError(f"{where}, argument 1: expected the subgraph's identifier "
                               f"(as_string), got {ident_tag}")  # fmt: skip
        operands, kinds = _values(args[2:], ref, where)
        body, body_out = plan(_graph(args[0], f"{where}, argument 0"), kinds, where, ident)
        plan_args, subplans, count = (operands,), [body], len(body_out)
    else:  # scan
        init, init_kinds = _group(args[1], ref, f"{where}, argument 1 (init)")
        xs, xs_kinds = _tensor_group(args[2], ref, f"{where}, argument 2 (xs)")
        extra, extra_kinds = _group(args[3], ref, f"{where}, argument 3 (additional_inputs)")
        combine, comb_out = plan(
            _graph(args[0], f"{where}, argument 0"), init_kinds + xs_kinds + extra_kinds, where
        )
        what = f"the combine function {combine.name!r}"
        if len(comb_out) < len(init_kinds):
            raise ProgramError(
                f"{where}: {what} returns {len(comb_out)} values, fewer than the "
                f"{len(init_kinds)} carried values"
            )
        _check_outputs(
            comb_out[: len(init_kinds)], [OutputInfo(k) for k in init_kinds], what, where
        )
        _tensors_only(comb_out, len(init_kinds), what, where)
        plan_args, subplans, count = (init, xs, extra), [combine], len(comb_out)
    outs = _define_outputs(outputs, count, define, hop, where)
    return Draft(name, target, "hop", hop, plan_args, {}, outs, False, True,
                 subplans=tuple(subplans))  # fmt: skip


def _pred(arg: object, ref: Refs, where: str) -> Slot | Static:
    tag, payload = union(arg, where)
    if tag == "as_bool" and isinstance(payload, bool):
        return Static(payload)
    if tag == "as_tensor":
        return ref(json_field(payload, "name", str, where), "tensor", where)
    if tag == "as_sym_bool":
        inner, value = union(payload, where)
        if inner == "as_bool" and isinstance(value, bool):
            return Static(value)
        if inner == "as_name" and isinstance(value, str):
            return ref(value, "sym_bool", where)
    raise ProgramError(
        f"{where}: the predicate must be a boolean tensor, a SymBool or a bool, got "
        f"{tag} {short(payload, 60)}"
    )


def _values(args: Sequence[object], ref: Refs, where: str) -> tuple[SlotList, list[str]]:
    """Operands passed one by one (``invoke_subgraph``): named tensors or SymInts."""
    items: list[int | None] = []
    kinds: list[str] = []
    for i, arg in enumerate(args):
        w = f"{where}, argument {i + 2}"
        tag, payload = union(arg, w)
        kind = _VALUE_KINDS.get(tag)
        if kind is None:
            raise ProgramError(f"{w}: operands must be tensors or SymInts, got {tag}")
        value = ref(value_name(tag, payload, w), kind, w)
        if not isinstance(value, Slot):
            raise ProgramError(f"{w}: operands must be named values, got a constant")
        items.append(value.index)
        kinds.append(kind)
    return SlotList(tuple(items)), kinds


def _tensor_group(arg: object, ref: Refs, where: str) -> tuple[SlotList, list[str]]:
    group, kinds = _group(arg, ref, where)
    if any(k != "tensor" for k in kinds):
        raise ProgramError(f"{where}: the values iterated over must be tensors")
    if not kinds:
        raise ProgramError(f"{where}: there must be at least one tensor to iterate over")
    return group, kinds


def _tensors_only(outs: Sequence[OutputInfo], start: int, what: str, where: str) -> None:
    for i in range(start, len(outs)):
        if outs[i].kind != "tensor":
            raise ProgramError(
                f"{where}: {what} output {i} is {outs[i].words()}; stacked outputs must be tensors"
            )
