"""A flat ATen graph (as ``aot_autograd`` hands a ``torch.compile`` backend) as a :class:`Program`.

The graph's placeholders are all user inputs, each with an example value in ``meta["val"]``
(fake tensors and symbolic sizes): the program is an ExportedProgram built around a copy of the
graph, with a signature read from those values. It is never traced again.

- Tensors the graph reads with ``get_attr`` become lifted constants (inputs of kind
  ``CONSTANT_TENSOR`` held by the program), as ``torch.export`` lifts them.
- The program returns each distinct value the graph returns once; what else the graph returns
  (``None`` where ``aot_autograd``'s backward has no gradient, a value returned twice) is put
  back by :meth:`GraphProgram.outputs`, so that no executor has to return ``None``.
- Node metadata other than the example value and the stack trace stays behind: dynamo's module
  stacks hold classes where ``torch.export``'s serializer expects names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.utils._pytree as pytree

from torchexec._errors import ProgramError
from torchexec._program import Program

if TYPE_CHECKING:
    from torch.export.graph_signature import ArgumentSpec, InputSpec, OutputSpec
    from torch.fx import Graph, GraphModule, Node
    from torch.utils._sympy.value_ranges import ValueRanges

__all__ = ["GraphProgram", "argument_for", "program_from_aten_graph"]

_KEPT_META = ("val", "stack_trace")
"""Node metadata the program keeps: the example value and where the node came from."""


def argument_for(node: Node, where: str) -> ArgumentSpec:
    """The signature argument of a value a program takes or returns, from its example value
    (``node.meta["val"]``); ``where`` names the value in the error for one that cannot be."""
    from torch.export.graph_signature import (
        ConstantArgument,
        SymBoolArgument,
        SymFloatArgument,
        SymIntArgument,
        TensorArgument,
    )

    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        return TensorArgument(name=node.name)
    if isinstance(val, torch.SymInt):
        return SymIntArgument(name=node.name)
    if isinstance(val, torch.SymFloat):
        return SymFloatArgument(name=node.name)
    if isinstance(val, torch.SymBool):
        return SymBoolArgument(name=node.name)
    if val is None or isinstance(val, (int, float, bool, str)):
        return ConstantArgument(name=node.name, value=val)
    raise ProgramError(
        f"{where} {node.name!r} is a {type(val).__name__}, which a program cannot take or return"
    )


@dataclass(frozen=True)
class GraphProgram:
    """An ATen graph as a program, and how the program's outputs become the graph's.

    Attributes:
        program: the graph as a :class:`~torchexec.Program`; its flat inputs are the graph's
            placeholders in order.
        layout: for each output of the graph, the index of the program output that holds it,
            or ``-1`` where the graph returns the constant in ``constants``.
        constants: for each output of the graph, the constant it returns (``None`` for the
            outputs the program computes).
    """

    program: Program
    layout: tuple[int, ...]
    constants: tuple[object, ...]

    @property
    def direct(self) -> bool:
        """Whether the program's outputs are the graph's outputs, one for one."""
        return self.layout == tuple(range(len(self.layout)))

    def outputs(self, values: Sequence[Any]) -> list[Any]:
        """The graph's outputs from the program's ``values``."""
        return [
            values[i] if i >= 0 else c for i, c in zip(self.layout, self.constants, strict=True)
        ]


def _copy_graph(gm: GraphModule) -> Graph:
    """A copy of ``gm``'s graph that keeps only :data:`_KEPT_META` of each node's metadata, its
    placeholders named ``input_0``, ``input_1``, ...

    ``aot_autograd`` names the inputs of a backward graph after the forward nodes that saved
    them (``t_1``, ``addmm``): a tool that traces the program again may give the same name to
    one of its own nodes.
    """
    graph = torch.fx.Graph()
    env: dict[Node, Node] = {}
    graph.output(graph.graph_copy(gm.graph, env))
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for i, node in enumerate(placeholders):
        node._rename(f"input_{i}")
        node.target = node.name
    for node in graph.nodes:
        kept = {k: node.meta[k] for k in _KEPT_META if k in node.meta}
        node.meta.clear()
        node.meta.update(kept)
    return graph


def _lift_constants(gm: GraphModule, graph: Graph) -> dict[Node, torch.Tensor]:
    """Turn each ``get_attr`` of a tensor into a placeholder ahead of the user inputs; returns
    the new placeholders with their tensors. Submodules (the branches of higher-order operators)
    stay attributes."""
    first_input = next((n for n in graph.nodes if n.op == "placeholder"), None)
    anchor = first_input if first_input is not None else next(iter(graph.nodes))
    lifted: dict[Node, torch.Tensor] = {}
    for node in [n for n in graph.nodes if n.op == "get_attr"]:
        target = str(node.target)
        value = _attribute(gm, target)
        if isinstance(value, torch.nn.Module):
            continue
        if not isinstance(value, torch.Tensor):
            raise ProgramError(
                f"the graph reads attribute {target!r}, a {type(value).__name__}; "
                "only tensors and submodules can be attributes of a program"
            )
        with graph.inserting_before(anchor):
            ph = graph.placeholder(node.name)
        ph.meta.update(node.meta)
        ph.meta.setdefault("val", value)
        node.replace_all_uses_with(ph)
        graph.erase_node(node)
        lifted[ph] = value
    return lifted


def _attribute(gm: GraphModule, target: str) -> object:
    obj: object = gm
    for part in target.split("."):
        if not hasattr(obj, part):
            raise ProgramError(f"the graph reads attribute {target!r}, which it does not have")
        obj = getattr(obj, part)
    return obj


def _distinct_outputs(graph: Graph) -> tuple[list[Node], tuple[int, ...], tuple[object, ...]]:
    """Make the graph return each distinct node it returns once; returns those nodes and the
    layout (see :class:`GraphProgram`)."""
    out_node = graph.output_node()
    outs = out_node.args[0]
    if not isinstance(outs, (tuple, list)):
        raise ProgramError(
            f"the graph returns a {type(outs).__name__}; expected a tuple of outputs"
        )
    kept: list[Node] = []
    index: dict[Node, int] = {}
    layout: list[int] = []
    constants: list[object] = []
    for value in outs:
        if isinstance(value, torch.fx.Node):
            if value not in index:
                index[value] = len(kept)
                kept.append(value)
            layout.append(index[value])
            constants.append(None)
        else:
            layout.append(-1)
            constants.append(value)
    out_node.args = (tuple(kept),)
    return kept, tuple(layout), tuple(constants)


def _sym_values(val: object) -> Iterator[torch.SymInt | torch.SymFloat | torch.SymBool]:
    if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        yield val
    elif isinstance(val, torch.Tensor):
        for size in (*val.shape, *val.stride(), val.storage_offset()):
            if isinstance(size, torch.SymInt):
                yield size


def _range_constraints(graph: Graph) -> dict[Any, ValueRanges[Any]]:
    """The value range of each (sympy) symbol of the graph's example values, from dynamo's shape
    environment."""
    from torch.utils._sympy.value_ranges import ValueRanges

    ranges: dict[Any, ValueRanges[Any]] = {}
    for node in graph.nodes:
        for val in pytree.tree_leaves(node.meta.get("val")):
            for sym_val in _sym_values(val):
                shape_env = sym_val.node.shape_env
                for symbol in sym_val.node.expr.free_symbols:
                    if symbol not in ranges:
                        known = shape_env.var_to_range.get(symbol) if shape_env else None
                        ranges[symbol] = known if known is not None else ValueRanges.unknown()
    return ranges


def _input_specs(lifted: Sequence[Node], graph: Graph) -> list[InputSpec]:
    from torch.export.graph_signature import InputKind, InputSpec, TensorArgument

    specs = [
        InputSpec(kind=InputKind.CONSTANT_TENSOR, arg=TensorArgument(name=ph.name), target=ph.name)
        for ph in lifted
    ]
    specs.extend(
        InputSpec(kind=InputKind.USER_INPUT, arg=argument_for(ph, "the input"), target=None)
        for ph in graph.nodes
        if ph.op == "placeholder" and ph not in lifted
    )
    return specs


def _output_specs(outs: Sequence[Node]) -> list[OutputSpec]:
    from torch.export.graph_signature import OutputKind, OutputSpec

    return [
        OutputSpec(kind=OutputKind.USER_OUTPUT, arg=argument_for(o, "the output"), target=None)
        for o in outs
    ]


def program_from_aten_graph(gm: GraphModule, name: str) -> GraphProgram:
    """``gm``, a flat ATen graph whose placeholders are all user inputs (each with
    ``meta["val"]``), as a program; ``gm`` itself is left unchanged.

    Raises:
        ProgramError: the graph returns or takes a value a program cannot, reads an attribute
            that is neither a tensor nor a submodule, or does not make a valid ExportedProgram.
    """
    from torch.export import ExportedProgram
    from torch.export.exported_program import ModuleCallEntry, ModuleCallSignature
    from torch.export.graph_signature import ExportGraphSignature

    graph = _copy_graph(gm)
    lifted = _lift_constants(gm, graph)
    outs, layout, returned = _distinct_outputs(graph)
    input_specs = _input_specs(list(lifted), graph)
    signature = ModuleCallSignature(
        inputs=[],
        outputs=[],
        in_spec=pytree.tree_structure((tuple(range(len(input_specs) - len(lifted))), {})),
        out_spec=pytree.tree_structure(tuple(range(len(outs)))),
    )
    try:
        ep = ExportedProgram(
            root=torch.fx.GraphModule(gm, graph),
            graph=graph,
            graph_signature=ExportGraphSignature(input_specs, _output_specs(outs)),
            state_dict={},
            range_constraints=_range_constraints(graph),
            module_call_graph=[ModuleCallEntry("", signature)],
            constants={ph.name: value for ph, value in lifted.items()},
        )
    except Exception as exc:
        raise ProgramError(f"cannot make the graph {name!r} a program: {exc}") from exc
    return GraphProgram(Program.from_exported(ep, name=name), layout, returned)
