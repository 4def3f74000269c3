"""Liveness and slot assignment: value numbers -> a small set of reusable slots.

Every value's last reader is computed first. Walking the nodes in order, the slots of the values a
node reads for the last time are released; the node's outputs take released slots first (so the
old value is dropped when the new one is stored, as ``x = op(x)`` does in eager code), and the
released slots no output took are listed in the node's ``free_after``. State slots and the values
the program returns are never released.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchexec_proxy._nodes import Draft
from torchexec_proxy.plan import Arg, MixedList, PlanNode, Slot, SlotList, Static

__all__ = ["FOREVER", "NEVER", "SlotAssignment", "assign_slots"]

NEVER = -1
"""``last`` of a value nothing reads."""
FOREVER = 1 << 62
"""``last`` of a value alive to the end (state, outputs)."""


class _Remap:
    """Replaces value numbers by slots, sharing one :class:`Slot` object per slot."""

    def __init__(self, slot_of: Sequence[int | None]) -> None:
        self.slot_of = slot_of
        self.objects: dict[int, Slot] = {}

    def slot(self, value: int) -> int:
        slot = self.slot_of[value]
        if slot is None:  # pragma: no cover - the loader checks every read value is defined
            raise AssertionError(f"value {value} has no slot")
        return slot

    def __call__(self, a: Arg) -> Arg:
        if isinstance(a, Static):
            return a
        if isinstance(a, Slot):
            return self.slot_object(a.index)
        if isinstance(a, SlotList):
            return SlotList(tuple(None if i is None else self.slot(i) for i in a.items))
        return MixedList(
            tuple(self.slot_object(i.index) if isinstance(i, Slot) else i for i in a.items)
        )

    def slot_object(self, value: int) -> Slot:
        slot = self.slot(value)
        obj = self.objects.get(slot)
        if obj is None:
            obj = self.objects[slot] = Slot(slot)
        return obj


class SlotAssignment:
    """The result of :func:`assign_slots`."""

    def __init__(self, slot_of: list[int | None], nodes: list[PlanNode], num_slots: int) -> None:
        self.slot_of = slot_of
        self.nodes = nodes
        self.num_slots = num_slots


def assign_slots(
    drafts: Sequence[Draft],
    last: list[int],
    state_values: Sequence[int],
    input_values: Sequence[int | None],
) -> SlotAssignment:
    """Assign slots and compute each node's ``free_after``.

    Args:
        drafts: the nodes, in order, each with the value numbers it reads (``Draft.reads``).
        last: for each value number, the index of the last node reading it, :data:`NEVER`, or
            :data:`FOREVER` for state and the values the program returns.
        state_values: value numbers of the state (slots ``0..len-1``, never released).
        input_values: value numbers of the user inputs (``None`` for constant inputs).
    """
    slot_of: list[int | None] = [None] * len(last)
    for i, v in enumerate(state_values):
        slot_of[v] = i
    count = len(state_values)
    for iv in input_values:
        if iv is not None and last[iv] != NEVER:
            slot_of[iv] = count
            count += 1

    pool: list[int] = []
    nodes: list[PlanNode] = []
    remap = _Remap(slot_of)
    for k, d in enumerate(drafts):
        reads = d.reads if len(d.reads) < 2 else dict.fromkeys(d.reads)
        dying: list[int] = []
        for v in reads:
            if last[v] == k:
                dying.append(slot_of[v])  # type: ignore[arg-type]
        outputs: list[int | None] = []
        for ov in d.outputs:
            if ov is None or last[ov] == NEVER:
                outputs.append(None)
                continue
            slot: int
            if dying:
                slot = dying.pop()
            elif pool:
                slot = pool.pop()
            else:
                slot = count
                count += 1
            slot_of[ov] = slot
            outputs.append(slot)
        if dying:
            pool.extend(dying)
            dying.sort()
        # Positional, in PlanNode's field order: a frozen dataclass takes keywords more slowly,
        # and this runs once per node.
        nodes.append(
            PlanNode(
                d.name,
                d.target,
                d.kind,
                d.op,
                tuple([a if type(a) is Static else remap(a) for a in d.args]),
                {n: remap(a) for n, a in d.kwargs.items()} if d.kwargs else {},
                tuple(outputs),
                d.returns_list,
                tuple(dying),
                d.returns_tuple,
                d.subplans,
            )
        )
    return SlotAssignment(slot_of, nodes, count)
