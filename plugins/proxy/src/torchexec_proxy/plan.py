"""The load-time plan: a validated program as numbered slots and prepared operator calls.

This is the one place where a serialized program becomes something runnable. The ``proxy``
executor runs a :class:`Plan` in Python; the ``torchbind`` executor hands the same plan to its C++
engine. A plan is only ever built by the loader, which validates the whole program first, so every
slot is written before it is read and every operator's arguments match its schema.

Value model: every value of the program (tensor, list of tensors, SymInt, TorchBind object) lives in
a numbered *slot*. A node's arguments are, per schema argument, either a :class:`Static` value
prefilled at load or a reference to slots read at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "HOP_LAYOUTS",
    "Arg",
    "MixedList",
    "Mutation",
    "Plan",
    "PlanNode",
    "Slot",
    "SlotList",
    "StateEntry",
    "Static",
    "SubPlan",
]


@dataclass(frozen=True)
class Static:
    """A value known at load: int, float, bool, str, None, complex, torch.dtype, torch.layout,
    torch.memory_format, torch.device, or a list of ints/floats/bools."""

    value: Any


@dataclass(frozen=True)
class Slot:
    """A value read from a slot at run time (a tensor, SymInt, TorchBind object, ...)."""

    index: int


@dataclass(frozen=True)
class SlotList:
    """A ``Tensor[]`` or ``Tensor?[]`` argument: one slot per element, ``None`` for a missing
    optional element."""

    items: tuple[int | None, ...]


@dataclass(frozen=True)
class MixedList:
    """A ``SymInt[]`` argument with some elements known at load (int) and some read from slots."""

    items: tuple[int | Slot, ...]


Arg = Static | Slot | SlotList | MixedList


@dataclass(frozen=True)
class PlanNode:
    """One call.

    Attributes:
        name: the node's name in the program (used in every error message).
        target: the serialized target, e.g. ``"torch.ops.aten.add.Tensor"``.
        kind: ``"op"`` (an ``OpOverload`` called with ``args``/``kwargs``), ``"torchbind"``
            (``call_torchbind``: ``args[0]`` is the object, ``args[1]`` the method name as a
            :class:`Static`, the rest the method's arguments), ``"python"`` (a function of the
            ``operator`` module on SymInts), or ``"hop"`` (a higher-order operator running
            the :class:`SubPlan` s in ``subplans``; see :data:`HOP_LAYOUTS`).
        op: the resolved callable (``torch._ops.OpOverload`` for ``"op"``; the higher-order
            operator's short name, e.g. ``"cond"``, for ``"hop"``).
        args: positional arguments in schema order, defaults filled in.
        kwargs: keyword-only arguments by schema name, defaults filled in.
        outputs: the slot of each returned value, ``None`` where the program does not use it.
            For an operator returning ``Tensor[]`` there is one entry per list element.
        returns_list: the operator returns a single ``Tensor[]`` (``outputs`` are its elements).
        free_after: slots whose last read is this node; cleared after it runs. It never lists a
            slot the node writes: the loader reuses slots, so an output may be written into the
            slot of a value whose last read is this node (the old value is released when the
            slot is overwritten).
        returns_tuple: the call returns a tuple whose elements are ``outputs`` (operators with
            several returns, TorchBind methods returning a tuple). Otherwise a node with one
            output stores the returned value itself.
        subplans: the subgraphs a ``"hop"`` node runs, each planned once at load.

    The loader creates nodes with positional arguments (faster for a frozen dataclass), so the
    order of these fields is part of this class's contract.
    """

    name: str
    target: str
    kind: Literal["op", "torchbind", "python", "hop"]
    op: Any
    args: tuple[Arg, ...]
    kwargs: Mapping[str, Arg]
    outputs: tuple[int | None, ...]
    returns_list: bool = False
    free_after: tuple[int, ...] = ()
    returns_tuple: bool = False
    subplans: tuple[SubPlan, ...] = ()


@dataclass(frozen=True)
class SubPlan:
    """A subgraph of a higher-order operator, planned once: its own slots, nodes and outputs.

    It runs like a plan without state: its ``inputs`` slots are filled from the operands the
    ``"hop"`` node passes (in order), its nodes run, and its ``outputs`` are returned in order.

    Attributes:
        name: the subgraph's name in the program (``true_graph_0``, ...).
        num_slots: the number of slots.
        inputs: for each subgraph input, its slot, or ``None`` for an input the subgraph does
            not read.
        nodes: the calls, in order (which may be ``"hop"`` nodes themselves).
        outputs: the subgraph's outputs, each a slot or a :class:`Static`.
    """

    name: str
    num_slots: int
    inputs: tuple[int | None, ...]
    nodes: tuple[PlanNode, ...]
    outputs: tuple[Slot | Static, ...]


HOP_LAYOUTS: Mapping[str, str] = {
    "cond": "args = (pred: Slot | Static, operands: SlotList); subplans = (true, false)",
    "while_loop": "args = (carried: SlotList, additional: SlotList); subplans = (cond, body)",
    "map": "args = (xs: SlotList, extra: SlotList); subplans = (body,)",
    "scan": "args = (init: SlotList, xs: SlotList, additional: SlotList); subplans = (combine,)",
    "invoke_subgraph": "args = (operands: SlotList,); subplans = (body,), shared by its calls",
    "auto_functionalized": "args = (Static(OpOverload),); kwargs = the operator's arguments",
    "auto_functionalized_v2": "args = (Static(OpOverload),); kwargs = arguments and view info",
    "with_effects": "args = (token: Slot, Static(OpOverload), *op args); kwargs = op kwargs",
}
"""The higher-order operators a ``"hop"`` node runs (``PlanNode.op``), and its layout.

* ``cond``: runs ``subplans[0]`` (``pred`` true) or ``subplans[1]`` on the operands; its outputs
  are the node's outputs.
* ``while_loop``: while ``subplans[0](*carried, *additional)`` (a bool scalar tensor or a bool)
  holds, ``carried = subplans[1](*carried, *additional)``; the outputs are the final carried
  values (tensors cloned when the loop never ran, as torch does).
* ``map`` (``torch.ops.higher_order.map_impl``): ``subplans[0](*xs_i, *extra)`` for each index
  ``i`` of the leading dimension of ``xs``; each output is the ``torch.stack`` of its values.
* ``scan``: ``carry = init``; for each index ``i`` of the leading dimension of ``xs``:
  ``carry, y_i = split(subplans[0](*carry, *xs_i, *additional))``; the outputs are the final
  carry followed by each ``y`` stacked along a new leading dimension.
* ``invoke_subgraph``: ``subplans[0](*operands)``; every call of one subgraph identifier holds
  the same :class:`SubPlan` object (planned once).
* ``auto_functionalized``, ``auto_functionalized_v2``, ``with_effects``: no subplans; the runner
  calls ``torch.ops.higher_order.<op>(*args, **kwargs)`` (torch's own semantics: the mutating
  operator runs on clones of its bases and the node's outputs are the operator's returns followed
  by the new values of the mutated arguments (v1) or bases (v2); ``with_effects`` returns a new
  token followed by the operator's returns).

A ``SlotList`` here lists the slots of tensors or SymInts (never ``None``).
"""


@dataclass(frozen=True)
class StateEntry:
    """A value the program holds (parameter, buffer, constant tensor, TorchBind object), or the
    effect token a program with ``with_effects`` nodes starts from (``kind="token"``, an empty
    tensor named ``"token:<graph input name>"``)."""

    slot: int
    kind: Literal["parameter", "buffer", "constant", "custom_obj", "token"]
    name: str


@dataclass(frozen=True)
class Mutation:
    """A program output that updates a buffer or a user input in place (functional programs)."""

    slot: int
    kind: Literal["buffer", "user_input"]
    target: str | int  # the buffer's name, or the user input's flat index


@dataclass(frozen=True)
class Plan:
    """A validated, runnable program.

    Attributes:
        num_slots: the number of slots.
        inputs: for each flat user input, its slot, or ``None`` for an input the graph does not
            read (a constant input, or an unused one).
        state: slots prefilled from ``state_values`` before each run (not freed).
        state_values: parameter, buffer, constant and custom-object values by name.
        nodes: the calls, in order.
        outputs: the user outputs, each a slot or a :class:`Static` (a constant output).
        mutations: outputs written back into buffers or user inputs after a run.
    """

    num_slots: int
    inputs: tuple[int | None, ...]
    state: tuple[StateEntry, ...]
    state_values: Mapping[str, Any]
    nodes: tuple[PlanNode, ...]
    outputs: tuple[Slot | Static, ...]
    mutations: tuple[Mutation, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
