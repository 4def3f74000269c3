"""One partition of a program as a standalone ExportedProgram.

Its inputs are the values flowing in from the rest of the program (user inputs of the new
program) plus the parameters, buffers, constants and TorchBind objects it reads (its own state,
under their original names); its outputs are the values other partitions or the program's
output read. Buffers the program mutates are passed as inputs rather than held as state, so
that an executor that copies its state at prepare never reads a stale buffer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.utils._pytree as pytree

from torchexec._errors import ProgramError
from torchexec._executor import Runner
from torchexec._graph_program import argument_for
from torchexec._placement import is_operator_node, operator_name
from torchexec._program import Program

if TYPE_CHECKING:
    from torch.export import ExportedProgram
    from torch.export.graph_signature import InputSpec
    from torch.fx import GraphModule, Node

__all__ = ["SubProgram", "build_subprogram"]


@dataclass
class SubProgram:
    """A partition prepared as a program of its own.

    Attributes:
        program: the partition as a :class:`~torchexec.Program`.
        inputs: the nodes of the partitioned graph that feed its user inputs, in order.
        n_outputs: how many values it returns.
        operators: operator name -> number of nodes in the partition.
        executor: the executor that runs it; runner: its prepared runner (set once prepared).
    """

    program: Program
    inputs: tuple[Node, ...]
    n_outputs: int
    operators: dict[str, int]
    executor: str = ""
    runner: Runner | None = field(default=None, repr=False)


def _top_level_specs(ep: ExportedProgram) -> dict[str, InputSpec]:
    return {spec.arg.name: spec for spec in ep.graph_signature.input_specs}


def _mutated_targets(ep: ExportedProgram) -> set[str]:
    from torch.export.graph_signature import OutputKind

    return {
        spec.target
        for spec in ep.graph_signature.output_specs
        if spec.kind == OutputKind.BUFFER_MUTATION and spec.target is not None
    }


def _order_placeholders(sub: GraphModule, first: list[Node], then: list[Node]) -> None:
    """Put ``first`` then ``then`` at the head of ``sub``'s graph, in that order."""
    anchor = next(n for n in sub.graph.nodes if n.op != "placeholder")
    for ph in [*first, *then]:
        anchor.prepend(ph)
    sub.recompile()


def build_subprogram(ep: ExportedProgram, top: GraphModule, part: Node, *, name: str) -> SubProgram:
    """The partition called by ``part`` (a ``call_module`` node of ``top``) as a program."""
    from torch.export import ExportedProgram
    from torch.export.exported_program import ModuleCallEntry, ModuleCallSignature
    from torch.export.graph_signature import (
        ExportGraphSignature,
        InputKind,
        InputSpec,
        OutputKind,
        OutputSpec,
    )

    sub = getattr(top, str(part.target))
    placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
    feeders: list[Node] = [a for a in part.args if isinstance(a, torch.fx.Node)]
    if len(feeders) != len(placeholders):
        raise ProgramError(f"internal error: partition {part.target} has mismatched inputs")
    specs = _top_level_specs(ep)
    mutated = _mutated_targets(ep)
    state: list[tuple[Node, InputSpec]] = []
    user: list[tuple[Node, Node]] = []
    for ph, feeder in zip(placeholders, feeders, strict=True):
        spec = specs.get(feeder.name) if feeder.op == "placeholder" else None
        if spec is not None and spec.kind != InputKind.USER_INPUT and spec.target not in mutated:
            state.append((ph, spec))
        else:
            user.append((ph, feeder))
    _order_placeholders(sub, [ph for ph, _ in state], [ph for ph, _ in user])

    input_specs: list[InputSpec] = []
    state_dict: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for ph, spec in state:
        arg = dataclasses.replace(spec.arg, name=ph.name)
        input_specs.append(dataclasses.replace(spec, arg=arg))
        target = spec.target
        assert target is not None
        if target in ep.state_dict:
            state_dict[target] = ep.state_dict[target]
        elif target in ep.constants:
            constants[target] = ep.constants[target]
        else:
            raise ProgramError(f"the program's {spec.kind.name.lower()} {target!r} has no value")
    for ph, feeder in user:
        original = specs.get(feeder.name) if feeder.op == "placeholder" else None
        arg = (
            dataclasses.replace(original.arg, name=ph.name)
            if original is not None
            else argument_for(ph, "the value")
        )
        input_specs.append(InputSpec(kind=InputKind.USER_INPUT, arg=arg, target=None))

    out_node = sub.graph.output_node()
    outs = out_node.args[0]
    if not isinstance(outs, (tuple, list)):
        raise ProgramError(f"internal error: partition {part.target} does not return a tuple")
    output_specs = [
        OutputSpec(kind=OutputKind.USER_OUTPUT, arg=argument_for(o, "the output"), target=None)
        for o in outs
    ]
    in_spec = pytree.tree_structure((tuple(range(len(user))), {}))
    out_spec = pytree.tree_structure(tuple(range(len(outs))))
    signature = ModuleCallSignature(inputs=[], outputs=[], in_spec=in_spec, out_spec=out_spec)
    try:
        sub_ep = ExportedProgram(
            root=sub,
            graph=sub.graph,
            graph_signature=ExportGraphSignature(input_specs, output_specs),
            state_dict=state_dict,
            range_constraints=dict(ep.range_constraints),
            module_call_graph=[ModuleCallEntry("", signature)],
            constants=constants,
            verifiers=list(ep.verifiers),
        )
    except Exception as exc:
        raise ProgramError(f"cannot make partition {name!r} a program: {exc}") from exc
    ops = Counter(operator_name(n.target) for n in sub.graph.nodes if is_operator_node(n))
    return SubProgram(
        program=Program.from_exported(sub_ep, name=name),
        inputs=tuple(feeder for _, feeder in user),
        n_outputs=len(outs),
        operators=dict(ops),
    )
