"""Run ``"hop"`` plan nodes: higher-order operators whose subgraphs were planned at load.

Each :class:`~torchexec_proxy.plan.SubPlan` becomes a :class:`SubRunner` once, when the enclosing
runner is built; a run only moves values between slot lists and calls the subgraphs' steps. The
semantics are torch's eager implementations (``torch/_higher_order_ops``), so the results are
bit for bit those of the aten executor (see :data:`torchexec_proxy.plan.HOP_LAYOUTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchexec import ExecutorError
from torchexec_proxy import _runner
from torchexec_proxy._op_hops import CALLING_HOPS
from torchexec_proxy.plan import PlanNode, Slot, SlotList, Static, SubPlan

__all__ = ["LoopLimitError", "SubRunner", "hop_step"]

Slots = list[Any]


class LoopLimitError(ExecutorError):
    """A ``while_loop`` ran more iterations than the ``max_loop_iterations`` option allows."""


class SubRunner:
    """Runs one subgraph: ``runner(operands)`` -> its outputs, in order. ``loop_limit`` bounds
    the iterations of each ``while_loop`` in it (``None``: no bound)."""

    def __init__(self, sub: SubPlan, loop_limit: int | None = None) -> None:
        self.name = sub.name
        scratch = sub.num_slots
        self._template: Slots = [None] * (scratch + 1)
        self._inputs = tuple((i, s) for i, s in enumerate(sub.inputs) if s is not None)
        self._steps = tuple(
            _runner.compile_step(node, scratch, self._template, loop_limit) for node in sub.nodes
        )
        self._outputs = tuple(
            (True, o.index) if isinstance(o, Slot) else (False, o.value) for o in sub.outputs
        )

    def __call__(self, operands: Sequence[Any]) -> list[Any]:
        s = self._template.copy()
        for i, slot in self._inputs:
            s[slot] = operands[i]
        _runner.run_steps(self._steps, s)
        return [s[v] if dyn else v for dyn, v in self._outputs]


def _items(arg: object) -> tuple[int, ...]:
    assert isinstance(arg, SlotList)  # the loader builds hop arguments as slot lists
    return tuple(i for i in arg.items if i is not None)


def _store(node: PlanNode) -> Callable[[Slots, Sequence[Any]], None]:
    pairs = tuple((k, o) for k, o in enumerate(node.outputs) if o is not None)
    frees = node.free_after

    def store(s: Slots, results: Sequence[Any]) -> None:
        for k, o in pairs:
            s[o] = results[k]
        for f in frees:
            s[f] = None

    return store


def hop_step(node: PlanNode, loop_limit: int | None = None) -> Callable[[Slots], None]:
    """A closure that runs the ``"hop"`` node ``node`` on the slots; ``loop_limit`` bounds the
    iterations of each ``while_loop`` (``None``: no bound, as torch)."""
    if node.op in CALLING_HOPS:  # the operator itself, with the arguments prepared at load
        hop = getattr(torch.ops.higher_order, str(node.op))
        return _runner.general_step(node, hop, list(node.args), dict(node.kwargs))
    runners = [SubRunner(sub, loop_limit) for sub in node.subplans]
    store = _store(node)
    if node.op == "cond":
        return _cond(node, runners, store)
    if node.op == "while_loop":
        return _while_loop(node, runners, store, loop_limit)
    if node.op == "map":
        return _map(node, runners[0], store)
    if node.op == "scan":
        return _scan(node, runners[0], store)
    if node.op == "invoke_subgraph":
        body = runners[0]
        operands = _items(node.args[0])
        return lambda s: store(s, body([s[i] for i in operands]))
    raise AssertionError(f"unknown higher-order operator {node.op!r}")  # the loader checks


def _cond(
    node: PlanNode, runners: list[SubRunner], store: Callable[[Slots, Sequence[Any]], None]
) -> Callable[[Slots], None]:
    pred = node.args[0]
    operands = _items(node.args[1])
    true, false = runners
    if isinstance(pred, Static):
        branch = true if pred.value else false

        def run_static(s: Slots) -> None:
            store(s, branch([s[i] for i in operands]))

        return run_static
    assert isinstance(pred, Slot)
    p = pred.index

    def run(s: Slots) -> None:
        store(s, (true if s[p] else false)([s[i] for i in operands]))

    return run


def _check_pred(pred: object, node: PlanNode) -> None:
    if isinstance(pred, bool):
        return
    if isinstance(pred, torch.Tensor) and pred.dtype == torch.bool and pred.dim() == 0:
        return
    raise ExecutorError(
        f"node {node.name!r} (while_loop): the condition must return a boolean scalar tensor or "
        f"a bool, got {pred!r}"
    )


def _while_loop(
    node: PlanNode,
    runners: list[SubRunner],
    store: Callable[[Slots, Sequence[Any]], None],
    limit: int | None,
) -> Callable[[Slots], None]:
    carried_slots = _items(node.args[0])
    extra_slots = _items(node.args[1])
    cond, body = runners

    def run(s: Slots) -> None:
        extra = [s[i] for i in extra_slots]
        carried = [s[i] for i in carried_slots]
        pred = cond([*carried, *extra])[0]
        _check_pred(pred, node)
        if not pred:  # torch returns copies when the body never runs
            store(s, [v.clone() if isinstance(v, torch.Tensor) else v for v in carried])
            return
        count = 0
        while pred:
            if limit is not None and count == limit:
                raise LoopLimitError(
                    f"node {node.name!r} (while_loop) ran {limit} iterations without ending "
                    "(the max_loop_iterations option)"
                )
            carried = body([*carried, *extra])
            count += 1
            pred = cond([*carried, *extra])[0]
            _check_pred(pred, node)
        store(s, carried)

    return run


def _leading(xs: Sequence[torch.Tensor], node: PlanNode) -> int:
    n = xs[0].shape[0] if xs[0].dim() else 0
    if n == 0 or any(x.dim() == 0 or x.shape[0] != n for x in xs):
        shapes = ", ".join(str(list(x.shape)) for x in xs)
        raise ExecutorError(
            f"node {node.name!r} ({node.op}): the tensors iterated over must share a non-empty "
            f"leading dimension, got shapes {shapes}"
        )
    return int(n)


def _map(
    node: PlanNode, body: SubRunner, store: Callable[[Slots, Sequence[Any]], None]
) -> Callable[[Slots], None]:
    xs_slots = _items(node.args[0])
    extra_slots = _items(node.args[1])

    def run(s: Slots) -> None:
        xs = [s[i] for i in xs_slots]
        extra = [s[i] for i in extra_slots]
        _leading(xs, node)
        results = [body([*row, *extra]) for row in zip(*xs, strict=True)]
        store(s, [torch.stack(column) for column in zip(*results, strict=True)])

    return run


def _scan(
    node: PlanNode, combine: SubRunner, store: Callable[[Slots, Sequence[Any]], None]
) -> Callable[[Slots], None]:
    init_slots = _items(node.args[0])
    xs_slots = _items(node.args[1])
    extra_slots = _items(node.args[2])
    k = len(init_slots)

    def run(s: Slots) -> None:
        carry = [s[i] for i in init_slots]
        xs = [s[i] for i in xs_slots]
        extra = [s[i] for i in extra_slots]
        ys: list[list[Any]] = []
        for i in range(_leading(xs, node)):
            out = combine([*carry, *(x.select(0, i) for x in xs), *extra])
            carry = out[:k]
            ys.append(out[k:])
        store(s, [*carry, *(torch.stack(column) for column in zip(*ys, strict=True))])

    return run
