"""The runner of a partitioned program: calls each partition's runner in order, moving values
between them through a flat list of slots, then applies the program's mutations once."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from torchexec._errors import ExecutorError, ProgramError, TorchexecError
from torchexec._placement import format_operator_counts
from torchexec._program import Program
from torchexec._subprogram import SubProgram

if TYPE_CHECKING:
    from torch.export import ExportedProgram
    from torch.fx import GraphModule, Node

__all__ = ["StitchedRunner"]

_Step = tuple[Any, Callable[[list[Any]], Sequence[Any]], int, int, SubProgram]
"""A partition's runner, what reads its inputs from the slots, the slice of slots its outputs
fill, and the partition."""


def _gather(slots: tuple[int, ...]) -> Callable[[list[Any]], Sequence[Any]]:
    """Reads ``slots`` from a slot list as a sequence (``itemgetter`` returns a bare value for
    one index, so that case is wrapped)."""
    if len(slots) == 1:
        (only,) = slots
        return lambda env: (env[only],)
    if not slots:
        return lambda env: ()
    return operator.itemgetter(*slots)


class _Slots:
    """Assigns a slot to each value of the partitioned graph."""

    def __init__(self) -> None:
        self.of: dict[Node, int] = {}
        self.template: list[Any] = []

    def add(self, node: Node | None, value: Any = None) -> int:
        self.template.append(value)
        index = len(self.template) - 1
        if node is not None:
            self.of[node] = index
        return index

    def lookup(self, node: Node) -> int:
        try:
            return self.of[node]
        except KeyError:
            raise ProgramError(
                f"internal error: no value for node {node.name!r} of the partitioned graph"
            ) from None


class StitchedRunner:
    """Runs the partitions of a program in execution order on their executors.

    Parameters, buffers and constants that partitions take as inputs (mutated buffers) sit in
    their slots from the start; the user's inputs fill the slots after them on each call. Buffer
    and user-input mutations are applied after the last partition, in the program's order.
    """

    def __init__(
        self, program: Program, ep: ExportedProgram, top: GraphModule, parts: Sequence[SubProgram]
    ) -> None:
        from torch.export.graph_signature import InputKind, OutputKind

        self.name = program.name
        slots = _Slots()
        specs = ep.graph_signature.input_specs
        placeholders = [n for n in top.graph.nodes if n.op == "placeholder"]
        user_slots: list[int] = []
        buffers: dict[str, Any] = {}
        for node, spec in zip(placeholders, specs, strict=True):
            if spec.kind == InputKind.USER_INPUT:
                user_slots.append(slots.add(node))
                continue
            target = spec.target
            value = (
                ep.state_dict.get(target) if target in ep.state_dict else ep.constants.get(target)
            )
            if value is None:
                raise ProgramError(
                    f"the program's {spec.kind.name.lower()} {target!r} has no value"
                )
            slots.add(node, value)
            buffers[str(target)] = value
        self._user_start = user_slots[0] if user_slots else len(slots.template)
        if user_slots != list(range(self._user_start, self._user_start + len(user_slots))):
            raise ProgramError("internal error: user inputs are not the last placeholders")
        self._user_end = self._user_start + len(user_slots)

        part_nodes = [n for n in top.graph.nodes if n.op == "call_module"]
        self._steps: list[_Step] = []
        for node, sub in zip(part_nodes, parts, strict=True):
            assert sub.runner is not None
            ins = tuple(slots.lookup(f) for f in sub.inputs)
            outs = tuple(slots.add(None) for _ in range(sub.n_outputs))
            for user in node.users:
                if user.op != "call_function" or user.target is not operator.getitem:
                    raise ProgramError(
                        f"internal error: partition {node.target} is used by {user.name!r}"
                    )
                slots.of[user] = outs[user.args[1]]
            start = outs[0] if outs else len(slots.template)
            self._steps.append((sub.runner, _gather(ins), start, start + len(outs), sub))

        results = top.graph.output_node().args[0]
        if not isinstance(results, (tuple, list)):
            results = (results,)
        result_slots = [
            slots.lookup(r) if isinstance(r, torch.fx.Node) else slots.add(None, r) for r in results
        ]
        user_names = [s.arg.name for s in specs if s.kind == InputKind.USER_INPUT]
        user_index = {name: i for i, name in enumerate(user_names)}
        self._buffer_updates: list[tuple[int, torch.Tensor]] = []
        self._input_updates: list[tuple[int, int]] = []
        self._results: list[int] = []
        for slot, spec in zip(result_slots, ep.graph_signature.output_specs, strict=True):
            if spec.kind == OutputKind.BUFFER_MUTATION:
                self._buffer_updates.append((slot, buffers[str(spec.target)]))
            elif spec.kind == OutputKind.USER_INPUT_MUTATION:
                self._input_updates.append((slot, user_index[str(spec.target)]))
            elif spec.kind in (OutputKind.USER_OUTPUT, OutputKind.LOSS_OUTPUT):
                self._results.append(slot)
            else:
                raise ProgramError(
                    f"{program.name!r}: partitioned execution does not run programs with "
                    f"{spec.kind.name} outputs"
                )
        self._template = slots.template

    def __call__(self, *args: Any) -> list[Any]:
        env = self._template.copy()
        env[self._user_start : self._user_end] = args
        step: _Step | None = None
        try:
            for step in self._steps:
                runner, gather, start, stop, _ = step
                values = runner(*gather(env))
                if len(values) != stop - start:
                    raise ExecutorError(
                        f"{self._where(step)} returned {len(values)} outputs, "
                        f"expected {stop - start}"
                    )
                env[start:stop] = values  # the partition's outputs have consecutive slots
        except TorchexecError:
            raise
        except Exception as exc:
            assert step is not None
            raise ExecutorError(f"{self._where(step)} failed: {type(exc).__name__}: {exc}") from exc
        if self._buffer_updates or self._input_updates:
            with torch.no_grad():
                for slot, buf in self._buffer_updates:
                    buf.copy_(env[slot])
                for slot, j in self._input_updates:
                    args[j].copy_(env[slot])
        return [env[i] for i in self._results]

    def _where(self, step: _Step) -> str:
        sub = step[4]
        return (
            f"executor {sub.executor!r}, running partition {sub.program.name!r} of {self.name!r} "
            f"({format_operator_counts(sub.operators, limit=3)}),"
        )
