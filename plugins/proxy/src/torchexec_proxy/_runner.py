"""Run a :class:`~torchexec_proxy.plan.Plan` in Python: the hot path.

At construction every plan node becomes a *step*, a tuple ``(code, fn, a, b, out, free)`` whose
``code`` is a :class:`StepCode`. The common shapes run inline in the loop of
:meth:`ProxyRunner.__call__` without a Python frame of their own:

- ``UNARY``: ``slots[out] = fn(slots[a])``
- ``BINARY``: ``slots[out] = fn(slots[a], slots[b])``
- ``WITH_CONST``: ``slots[out] = fn(slots[a], b)`` (``b`` a constant)
- ``WITH_CONSTS``: ``slots[out] = fn(slots[a], *b)`` (``b`` a tuple of constants)

where ``fn`` is the operator's underlying builtin (``OpOverload._op``, which ``OpOverload.__call__``
forwards to), trailing arguments equal to their schema defaults are left to the dispatcher, and
``free`` is a slot to clear after the call (a scratch slot when there is none). Everything else
(keyword arguments, tensor lists, several outputs, several slots to free, TorchBind calls) is
``GENERAL``: ``fn(slots)``, a closure built here that does the whole node (higher-order
operators: :mod:`torchexec_proxy._hoprun`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Any

import torch

from torchexec import InputMismatchError
from torchexec_proxy import _hoprun
from torchexec_proxy._schema import op_info
from torchexec_proxy.plan import Arg, MixedList, Plan, PlanNode, Slot, SlotList, Static

__all__ = ["ProxyRunner", "StepCode", "compile_step", "general_step", "run_steps"]


class StepCode(Enum):
    """What a step does (see the module docstring); the loop tests it with ``is``."""

    GENERAL = "general"
    UNARY = "unary"
    BINARY = "binary"
    WITH_CONST = "with_const"
    WITH_CONSTS = "with_consts"


Step = tuple[StepCode, Callable[..., Any], Any, Any, int, int]
Slots = list[Any]

# Plain names for the codes, which the run loop reads as (cached) globals.
GENERAL = StepCode.GENERAL
UNARY = StepCode.UNARY
BINARY = StepCode.BINARY
WITH_CONST = StepCode.WITH_CONST
WITH_CONSTS = StepCode.WITH_CONSTS


def _same(a: object, b: object) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic values never equal a default
        return False


def _call_args(node: PlanNode) -> tuple[list[Arg], dict[str, Arg]]:
    """Positional and keyword arguments worth passing: schema defaults are dropped."""
    args = list(node.args)
    kwargs = dict(node.kwargs)
    if node.kind != "op":
        return args, kwargs
    info = op_info(node.op)
    positional = info.positional
    while args:
        i = len(args) - 1
        a = args[i]
        spec = positional[i]
        if isinstance(a, Static) and spec.has_default and _same(a.value, spec.default):
            args.pop()
        else:
            break
    if kwargs:
        for a_info in info.keyword:
            v = kwargs.get(a_info.name)
            if isinstance(v, Static) and a_info.has_default and _same(v.value, a_info.default):
                del kwargs[a_info.name]
    return args, kwargs


def _callable(node: PlanNode) -> Callable[..., Any]:
    op = node.op
    if isinstance(op, torch._ops.OpOverload):
        return op._op
    return op  # type: ignore[no-any-return]


def _reader(a: Arg) -> Callable[[Slots], Any] | None:
    """A function reading a dynamic argument from the slots; ``None`` for a constant."""
    if isinstance(a, Slot):
        i = a.index
        return lambda s: s[i]
    if isinstance(a, SlotList):
        items = a.items
        if None in items:
            return lambda s: [None if i is None else s[i] for i in items]
        return lambda s: [s[i] for i in items]  # type: ignore[index]
    if isinstance(a, MixedList):
        mixed = tuple((True, x.index) if isinstance(x, Slot) else (False, x) for x in a.items)
        return lambda s: [s[x] if dyn else x for dyn, x in mixed]
    return None


def general_step(node: PlanNode, fn: Callable[..., Any], args: list[Arg],
             kwargs: dict[str, Arg]) -> Callable[[Slots], None]:  # fmt: skip
    """A closure that runs ``node`` completely: read, call, store outputs, free."""
    template = [a.value if isinstance(a, Static) else None for a in args]
    slot_reads = tuple((p, a.index) for p, a in enumerate(args) if isinstance(a, Slot))
    other_reads = tuple(
        (p, r) for p, a in enumerate(args) if not isinstance(a, (Slot, Static))
        for r in (_reader(a),) if r is not None
    )  # fmt: skip
    kw_static = {n: a.value for n, a in kwargs.items() if isinstance(a, Static)}
    kw_reads = tuple((n, r) for n, a in kwargs.items() for r in (_reader(a),) if r is not None)
    frees = node.free_after
    outputs = node.outputs
    multi = node.returns_tuple or node.returns_list
    pairs = tuple((k, o) for k, o in enumerate(outputs) if o is not None)
    single = outputs[0] if len(outputs) == 1 and not multi else None

    def run(s: Slots) -> None:
        a = template.copy()
        for p, i in slot_reads:
            a[p] = s[i]
        for p, r in other_reads:
            a[p] = r(s)
        if kw_static or kw_reads:
            kw = dict(kw_static)
            for n, r in kw_reads:
                kw[n] = r(s)
            result = fn(*a, **kw)
        else:
            result = fn(*a)
        if single is not None:
            s[single] = result
        elif multi:
            for k, o in pairs:
                s[o] = result[k]
        for f in frees:
            s[f] = None

    return run


def _torchbind(node: PlanNode, obj: object) -> Callable[[Slots], None]:
    """A closure calling the TorchBind method ``node`` names on ``obj``."""
    method_arg = node.args[1]
    assert isinstance(method_arg, Static)
    method = getattr(obj, str(method_arg.value))
    rest = list(node.args[2:])
    inner = general_step(node, method, rest, {})
    return inner


def compile_step(
    node: PlanNode, scratch: int, state: Sequence[Any], loop_limit: int | None = None
) -> Step:
    """Turn one plan node into a step (see the module docstring); ``loop_limit`` bounds the
    iterations of a ``while_loop`` node."""
    if node.kind == "hop":
        return (GENERAL, _hoprun.hop_step(node, loop_limit), 0, 0, scratch, scratch)
    if node.kind == "torchbind":
        obj_arg = node.args[0]
        assert isinstance(obj_arg, Slot)
        return (GENERAL, _torchbind(node, state[obj_arg.index]), 0, 0, scratch, scratch)
    fn = _callable(node)
    args, kwargs = _call_args(node)
    single = len(node.outputs) == 1 and not (node.returns_tuple or node.returns_list)
    frees = node.free_after
    if single and not kwargs and args and isinstance(args[0], Slot):
        out = node.outputs[0]
        if out is None and not frees:
            out = scratch
        if out is not None and len(frees) <= 1:
            free = frees[0] if frees else scratch
            first = args[0].index
            rest = args[1:]
            if not rest:
                return (UNARY, fn, first, 0, out, free)
            if len(rest) == 1 and isinstance(rest[0], Slot):
                return (BINARY, fn, first, rest[0].index, out, free)
            if all(isinstance(a, Static) for a in rest):
                consts = tuple(a.value for a in rest)  # type: ignore[union-attr]
                if len(consts) == 1:
                    return (WITH_CONST, fn, first, consts[0], out, free)
                return (WITH_CONSTS, fn, first, consts, out, free)
    return (GENERAL, general_step(node, fn, args, kwargs), 0, 0, scratch, scratch)


def run_steps(steps: Sequence[Step], s: Slots) -> None:
    """Run compiled steps on the slots ``s``."""
    for code, fn, a, b, out, free in steps:
        if code is UNARY:
            s[out] = fn(s[a])
        elif code is BINARY:
            s[out] = fn(s[a], s[b])
        elif code is WITH_CONST:
            s[out] = fn(s[a], b)
        elif code is WITH_CONSTS:
            s[out] = fn(s[a], *b)
        else:
            fn(s)
        s[free] = None


class ProxyRunner:
    """Runs a plan: ``runner(*flat_user_inputs)`` -> list of flat user outputs.

    Buffer and user-input mutations the program returns (functional programs) are copied back
    into the buffer or the caller's tensor after the run. ``max_loop_iterations`` bounds each
    ``while_loop`` (:class:`~torchexec_proxy._hoprun.LoopLimitError` beyond it; ``None``: no
    bound, as torch).
    """

    def __init__(self, plan: Plan, *, max_loop_iterations: int | None = None) -> None:
        self.plan = plan
        scratch = plan.num_slots
        template: list[Any] = [None] * (scratch + 1)
        for entry in plan.state:
            template[entry.slot] = plan.state_values[entry.name]
        self._template = template
        self._num_inputs = len(plan.inputs)
        self._inputs = tuple((i, s) for i, s in enumerate(plan.inputs) if s is not None)
        self._steps: tuple[Step, ...] = tuple(
            compile_step(node, scratch, template, max_loop_iterations) for node in plan.nodes
        )
        self._outputs = tuple(
            (True, o.index) if isinstance(o, Slot) else (False, o.value) for o in plan.outputs
        )
        self._plain_outputs = all(dyn for dyn, _ in self._outputs)
        self._output_slots = tuple(i for _, i in self._outputs)
        self._buffer_updates = tuple(
            (m.slot, plan.state_values[str(m.target)]) for m in plan.mutations
            if m.kind == "buffer"
        )  # fmt: skip
        self._input_updates = tuple(
            (m.slot, int(m.target)) for m in plan.mutations if m.kind == "user_input"
        )
        self._mutates = bool(plan.mutations)

    def __repr__(self) -> str:
        return (
            f"ProxyRunner({self.plan.metadata.get('source', '?')!r}, "
            f"{len(self.plan.nodes)} nodes, {self.plan.num_slots} slots)"
        )

    def _start(self, args: tuple[Any, ...]) -> Slots:
        if len(args) != self._num_inputs:
            raise InputMismatchError(
                f"the program takes {self._num_inputs} flat inputs, got {len(args)}"
            )
        s = self._template.copy()
        for i, slot in self._inputs:
            s[slot] = args[i]
        return s

    def _finish(self, s: Slots, args: tuple[Any, ...]) -> list[Any]:
        if self._mutates:
            with torch.no_grad():
                for slot, buffer in self._buffer_updates:
                    buffer.copy_(s[slot])
                for slot, index in self._input_updates:
                    args[index].copy_(s[slot])
        if self._plain_outputs:
            return [s[i] for i in self._output_slots]
        return [s[v] if dyn else v for dyn, v in self._outputs]

    def __call__(self, *args: Any) -> list[Any]:
        s = self._start(args)
        run_steps(self._steps, s)
        return self._finish(s, args)

    def trace(self, *args: Any) -> Iterator[tuple[str, Sequence[Any]]]:
        """Run step by step, yielding ``(node name, slots)`` after each node.

        The same steps as a call run, so a test can watch values being freed; the slot list is
        live (do not keep it). The last item is ``("<outputs>", outputs)``.
        """
        s = self._start(args)
        for node, step in zip(self.plan.nodes, self._steps, strict=True):
            run_steps((step,), s)
            yield node.name, s[: self.plan.num_slots]
        yield "<outputs>", self._finish(s, args)
