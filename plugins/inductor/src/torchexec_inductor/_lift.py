"""Buffers become inputs of the compiled program, so that their updates land in the program.

AOTInductor bakes parameters, buffers and constants into the package. A buffer the program
updates in place (a step counter, batch-norm running statistics) is then updated in the
package's private copy at best: checked on torch 2.13, a counter ``self.count.add_(1)`` gave
``1`` on every call, also when the package was handed the program's tensor with
``load_constants(..., user_managed=True)``. Nor can the graph alone say which buffers are
written: ``aten.batch_norm`` updates its running statistics although its schema does not mark
them as written. So before compiling, every buffer (and any parameter or constant the graph
visibly writes) is turned into a user input that precedes the program's own inputs; the runner
passes the program's tensors there, and AOTInductor applies the writes to them in place, as it
does for any mutated user input. Parameters and constants stay in the package.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.utils._pytree as pytree
from torch.export import ExportedProgram
from torch.export.graph_signature import (
    ExportGraphSignature,
    InputKind,
    InputSpec,
    OutputKind,
    OutputSpec,
    TensorArgument,
)

from torchexec import ProgramError

__all__ = ["LiftedState", "compile_program", "written_placeholders"]


def _arguments(node: torch.fx.Node) -> Iterable[tuple[Any, object]]:
    """``(schema argument, value)`` pairs of an operator call."""
    schema = node.target._schema  # type: ignore[union-attr]
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            yield arg, node.args[i]
        elif arg.name in node.kwargs:
            yield arg, node.kwargs[arg.name]


def written_placeholders(ep: ExportedProgram) -> frozenset[str]:
    """Names of the placeholders the program writes to, directly or through a view.

    Follows aliases through operator schemas (``Tensor(a)`` views, ``Tensor(a!)`` in-place
    results) and ``getitem`` on multi-output views; adds the targets of mutation outputs for
    programs in functional form.
    """
    root: dict[torch.fx.Node, str] = {}
    written: set[str] = set()
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            root[node] = node.name
        elif node.op == "call_function" and node.target is operator.getitem:
            src = node.args[0]
            if isinstance(src, torch.fx.Node) and src in root:
                root[node] = root[src]
        elif node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
            returns_alias = any(r.alias_info is not None for r in node.target._schema.returns)
            for arg, value in _arguments(node):
                if arg.alias_info is None:
                    continue
                values = value if isinstance(value, (list, tuple)) else [value]
                for v in values:
                    if not isinstance(v, torch.fx.Node) or v not in root:
                        continue
                    if arg.alias_info.is_write:
                        written.add(root[v])
                    if returns_alias:
                        root[node] = root[v]
    names = {n.name for n in ep.graph.nodes if n.op == "placeholder"}
    sig = ep.graph_signature
    targets = {s.target: s.arg.name for s in sig.input_specs if s.target is not None}
    for out in sig.output_specs:
        if out.kind == OutputKind.BUFFER_MUTATION and out.target in targets:
            written.add(targets[out.target])
        elif out.kind == OutputKind.USER_INPUT_MUTATION and out.target in names:
            written.add(out.target)
    return frozenset(written)


@dataclass(frozen=True)
class LiftedState:
    """The state passed to the package before the user inputs: every buffer, and any parameter
    or constant the program writes.

    Attributes:
        names: the state's names (``count``, ``bn.running_mean``), in placeholder order.
        placeholders: the graph's names for them (``b_count``).
        tensors: the program's own tensors, updated in place by every call.
    """

    names: tuple[str, ...]
    placeholders: tuple[str, ...]
    tensors: tuple[torch.Tensor, ...]

    @classmethod
    def of(cls, ep: ExportedProgram, written: frozenset[str]) -> LiftedState:
        """The lifted state of ``ep``, given the placeholders it writes.

        Raises:
            ProgramError: a lifted piece of state that is not a tensor.
        """
        names: list[str] = []
        placeholders: list[str] = []
        tensors: list[torch.Tensor] = []
        for spec in ep.graph_signature.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                continue
            if spec.kind != InputKind.BUFFER and spec.arg.name not in written:
                continue
            target = spec.target
            value = ep.state_dict.get(target) if target is not None else None
            if value is None and target is not None:
                value = ep.constants.get(target)
            if not isinstance(value, torch.Tensor):
                raise ProgramError(
                    f"the program's {spec.kind.name.lower()} {target!r} has no tensor value; "
                    "the inductor executor cannot run it"
                )
            names.append(str(target))
            placeholders.append(spec.arg.name)
            tensors.append(value)
        return cls(tuple(names), tuple(placeholders), tuple(tensors))


def compile_program(
    ep: ExportedProgram, lifted: LiftedState, examples: Sequence[object]
) -> ExportedProgram:
    """The program AOTInductor compiles: ``ep`` with ``lifted`` turned into leading inputs.

    ``examples`` are the user inputs to compile with (``ep.example_inputs`` may be missing for
    a program read from JSON). ``ep`` itself is left as it is: the graph is copied.
    """
    args_spec, kwargs_spec = ep.call_spec.in_spec.children()
    user_args = pytree.tree_unflatten(list(examples[: args_spec.num_leaves]), args_spec)
    user_kwargs = pytree.tree_unflatten(list(examples[args_spec.num_leaves :]), kwargs_spec)
    if not lifted.names:
        if ep.example_inputs is not None:
            return ep
        placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
        gm = _graph_copy(ep, placeholders)
        return _rebuilt(ep, gm, ep.graph_signature, (user_args, user_kwargs), None)
    moved = set(lifted.placeholders)
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    state = [n for n in placeholders if n.name not in moved and _is_state(ep, n.name)]
    order = (
        state
        + [n for n in placeholders if n.name in moved]
        + [n for n in placeholders if n.name not in moved and not _is_state(ep, n.name)]
    )
    gm = _graph_copy(ep, order)

    by_arg = {s.arg.name: s for s in ep.graph_signature.input_specs}
    specs = [
        InputSpec(InputKind.USER_INPUT, TensorArgument(name=n.name), target=None)
        if n.name in moved
        else by_arg[n.name]
        for n in order
    ]
    outputs = [
        OutputSpec(OutputKind.USER_INPUT_MUTATION, o.arg, target=_placeholder_of(ep, o.target))
        if o.kind == OutputKind.BUFFER_MUTATION and o.target in lifted.names
        else o
        for o in ep.graph_signature.output_specs
    ]
    signature = ExportGraphSignature(input_specs=specs, output_specs=outputs)
    state_args = tuple(t.detach().clone() for t in lifted.tensors)
    return _rebuilt(
        ep, gm, signature, ((*state_args, *user_args), user_kwargs), lifted.placeholders
    )


def _graph_copy(ep: ExportedProgram, placeholders: Sequence[torch.fx.Node]) -> torch.fx.GraphModule:
    """A copy of ``ep``'s graph module with its placeholders in the given order (node metadata is
    shared, not copied: the program's own graph is never touched)."""
    graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    for node in placeholders:
        env[node] = graph.node_copy(node, env.__getitem__)
    for node in ep.graph.nodes:
        if node.op != "placeholder":
            env[node] = graph.node_copy(node, env.__getitem__)
    return torch.fx.GraphModule(ep.graph_module, graph)


def _is_state(ep: ExportedProgram, name: str) -> bool:
    return any(
        s.arg.name == name and s.kind != InputKind.USER_INPUT
        for s in ep.graph_signature.input_specs
    )


def _placeholder_of(ep: ExportedProgram, target: str | None) -> str | None:
    for s in ep.graph_signature.input_specs:
        if s.target == target:
            return str(s.arg.name)
    return target


def _rebuilt(
    ep: ExportedProgram,
    gm: torch.fx.GraphModule,
    signature: ExportGraphSignature,
    examples: tuple[Any, Any],
    lifted: tuple[str, ...] | None,
) -> ExportedProgram:
    import copy

    call_graph = copy.deepcopy(ep.module_call_graph)
    if lifted:
        args, kwargs = examples
        sig = call_graph[0].signature
        if sig is None:
            raise ProgramError("the program has no module call signature to extend")
        sig.in_spec = pytree.tree_structure((args, kwargs))
        sig.inputs = [TensorArgument(name=n) for n in lifted] + list(sig.inputs)
        if sig.forward_arg_names is not None:
            sig.forward_arg_names = [*lifted, *sig.forward_arg_names]
    names = set(lifted or ())
    state_dict = {k: v for k, v in ep.state_dict.items() if not _lifted_target(ep, k, names)}
    constants = {k: v for k, v in ep.constants.items() if not _lifted_target(ep, k, names)}
    return ExportedProgram(
        root=gm,
        graph=gm.graph,
        graph_signature=signature,
        state_dict=state_dict,
        range_constraints=ep.range_constraints,
        module_call_graph=call_graph,
        example_inputs=examples,
        constants=constants,
        verifiers=ep.verifiers,
    )


def _lifted_target(ep: ExportedProgram, target: str, placeholders: set[str]) -> bool:
    return any(
        s.target == target and s.arg.name in placeholders for s in ep.graph_signature.input_specs
    )
