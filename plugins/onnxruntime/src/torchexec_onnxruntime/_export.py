"""From a torchexec ``Program`` to an ONNX model and the plan that binds it to torch tensors.

The torch.onnx exporter keeps only a program's user inputs and outputs: parameters and buffers
become initializers (constants of the model) and buffer or input mutations are dropped. So before
exporting, the program is functionalised and its signature rewritten:

- a mutated buffer becomes a model input (the runner binds the live buffer every call), and its
  new value a model output that the runner copies back into the buffer;
- a mutated user input's new value becomes a model output that the runner copies back;
- outputs that are not computed by the graph (constants, inputs returned as they are) are left
  out of the model and produced by the runner; an output returned twice is exported once.

Dynamic dimensions of the program are symbolic in its graph, and the exporter turns them into
dynamic ONNX axes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.utils._pytree as pytree
from torch.export.graph_signature import (
    ConstantArgument,
    ExportGraphSignature,
    InputKind,
    InputSpec,
    OutputKind,
    OutputSpec,
    SymIntArgument,
    TensorArgument,
)

from torchexec import Program, ProgramError
from torchexec_onnxruntime._options import EXECUTOR
from torchexec_onnxruntime._quiet import quiet_exporter
from torchexec_onnxruntime._support import (
    crashes_runtime,
    registry,
    supports,
    training_batch_norm,
)

if TYPE_CHECKING:
    from torch.export import ExportedProgram

__all__ = ["Binding", "ExportPlan", "Result", "export_program", "unclaimed_operators"]

_EXPORT_LOCK = threading.Lock()  # the exporter is not documented as thread-safe


@dataclass(frozen=True)
class Binding:
    """One model input: the live tensor of a mutated buffer, or user input ``user_index``."""

    name: str
    user_index: int | None = None
    buffer: torch.Tensor | None = None


@dataclass(frozen=True)
class Result:
    """One flat user output of the program, made by the runner.

    ``kind`` is ``model`` (model output ``index``), ``input`` (user input ``index``
    returned as it is), ``value`` (the constant ``value``) or ``scalar`` (model output ``index``,
    a 0-d tensor turned into the Python number ``value`` is a type of).
    """

    kind: str
    index: int = 0
    value: Any = None


@dataclass(frozen=True)
class ExportPlan:
    """The ONNX model and how the runner feeds it and turns its outputs into the program's.

    Attributes:
        model: the serialized ONNX ModelProto; its outputs are numbered as ``results`` and
            the updates refer to them. ``None`` when the graph computes nothing the program
            returns (every output is an input or a constant): there is no model to run.
        inputs: the model's inputs and where their tensors come from.
        results: the program's flat user outputs.
        buffer_updates: ``(model output, buffer)``: copy the output into the buffer after a call.
        input_updates: ``(model output, user input)``: copy the output into the user's tensor.
        dtypes: the dtype the program gives each model output (``None``: not a tensor); the
            exporter computes some outputs in another dtype (``native_layer_norm``'s statistics
            in float32), and the runner casts them back.
        device: the device type of the program's tensors (``cpu`` or ``cuda``).
    """

    model: bytes | None
    inputs: tuple[Binding, ...]
    results: tuple[Result, ...]
    buffer_updates: tuple[tuple[int, torch.Tensor], ...]
    input_updates: tuple[tuple[int, int], ...]
    dtypes: tuple[torch.dtype | None, ...]
    device: str


def _operator_name(node: torch.fx.Node) -> str:
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}::{target._opname}.{target._overloadname}"
    return str(getattr(target, "__name__", target))


def unclaimed_operators(graph: torch.fx.Graph) -> list[str]:
    """The operators of ``graph`` the exporter cannot translate, each once, in graph order."""
    names = [_operator_name(n) for n in graph.nodes if not supports(n)]
    return list(dict.fromkeys(names))


def _has_mutations(ep: ExportedProgram) -> bool:
    if any(
        s.kind in (OutputKind.BUFFER_MUTATION, OutputKind.USER_INPUT_MUTATION)
        for s in ep.graph_signature.output_specs
    ):
        return True
    return any(
        n.op == "call_function"
        and isinstance(n.target, torch._ops.OpOverload)
        and n.target._schema.is_mutable
        for n in ep.graph.nodes
    )


def _state_tensor(ep: ExportedProgram, target: str) -> torch.Tensor:
    value = ep.state_dict.get(target, ep.constants.get(target))
    if not isinstance(value, torch.Tensor):
        raise ProgramError(f"the program's buffer {target!r} has no tensor value")
    return value


def _device_type(ep: ExportedProgram) -> str:
    types = set()
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder" and isinstance(val, torch.Tensor):
            types.add(val.device.type)
    types.discard("meta")
    if len(types) > 1:
        raise ProgramError(
            f"the {EXECUTOR} executor runs a program on one device; this one has tensors on "
            f"{', '.join(sorted(types))}"
        )
    return types.pop() if types else "cpu"


@dataclass
class _Rewritten:
    """The all-user-IO ExportedProgram and what the runner needs to feed and read it."""

    program: ExportedProgram
    bindings: list[Binding] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    buffer_updates: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    input_updates: list[tuple[int, int]] = field(default_factory=list)
    dtypes: list[torch.dtype | None] = field(default_factory=list)


class _Rewriter:
    """Rewrites a functional ExportedProgram so that everything the runner binds or reads is a
    user input or output (see the module docstring)."""

    def __init__(
        self, original: ExportedProgram, ep: ExportedProgram, *, bind_state: bool = False
    ) -> None:
        self.original = original
        self.ep = ep
        self.bind_state = bind_state
        self.graph = torch.fx.Graph()
        self.env: dict[torch.fx.Node, torch.fx.Node] = {}
        self.copied = self.graph.graph_copy(ep.graph, self.env)
        # graph_copy may rename a placeholder (``input`` is taken by a builtin): use new names
        self.names = {old.name: new.name for old, new in self.env.items()}
        self.user_index: dict[str, int] = {}
        for spec in ep.graph_signature.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                name = self.names.get(spec.arg.name, spec.arg.name)
                self.user_index[name] = len(self.user_index)
        self.mutated = {
            s.target
            for s in ep.graph_signature.output_specs
            if s.kind == OutputKind.BUFFER_MUTATION and s.target is not None
        }
        self.kept: list[torch.fx.Node] = []
        self.position: dict[torch.fx.Node, int] = {}

    def _arg(self, spec: InputSpec) -> Any:
        arg = spec.arg
        if isinstance(arg, (TensorArgument, SymIntArgument)):
            return type(arg)(name=self.names.get(arg.name, arg.name))
        return arg

    def inputs(self, out: _Rewritten) -> tuple[list[InputSpec], set[str]]:
        """New input specs (the bindings go to ``out``) and the state that became inputs."""
        specs: list[InputSpec] = []
        moved: set[str] = set()
        for spec in self.ep.graph_signature.input_specs:
            arg = self._arg(spec)
            state = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
            bound = spec.kind in state and (self.bind_state or spec.target in self.mutated)
            if bound:
                assert spec.target is not None  # state inputs always name their target
                specs.append(InputSpec(InputKind.USER_INPUT, arg, None))
                buffer = _state_tensor(self.original, spec.target)
                out.bindings.append(Binding(arg.name, buffer=buffer))
                moved.add(spec.target)
            elif spec.kind == InputKind.USER_INPUT:
                specs.append(InputSpec(InputKind.USER_INPUT, arg, None))
                if not isinstance(arg, ConstantArgument):
                    out.bindings.append(Binding(arg.name, user_index=self.user_index[arg.name]))
            elif spec.kind in state:
                specs.append(InputSpec(spec.kind, arg, spec.target, spec.persistent))
            else:
                raise ProgramError(
                    f"the {EXECUTOR} executor does not run programs with {spec.kind.name} "
                    f"inputs ({spec.arg.name})"
                )
        return specs, moved

    def _model_output(self, node: torch.fx.Node, out: _Rewritten) -> int:
        if node not in self.position:
            self.position[node] = len(self.kept)
            self.kept.append(node)
            meta = node.meta.get("val")
            out.dtypes.append(meta.dtype if isinstance(meta, torch.Tensor) else None)
        return self.position[node]

    def _user_output(self, value: Any, out: _Rewritten) -> None:
        if not isinstance(value, torch.fx.Node):
            out.results.append(Result("value", value=value))
            return
        if value.op == "placeholder" and value.name in self.user_index:
            out.results.append(Result("input", self.user_index[value.name]))
            return
        meta = value.meta.get("val")
        for sym, kind in ((torch.SymInt, int), (torch.SymFloat, float), (torch.SymBool, bool)):
            if isinstance(meta, sym):
                out.results.append(Result("scalar", self._model_output(value, out), kind))
                return
        out.results.append(Result("model", self._model_output(value, out)))

    def outputs(self, out: _Rewritten) -> None:
        """Sort the graph's outputs into results, buffer updates and input updates."""
        copied = self.copied
        values = list(copied) if isinstance(copied, (tuple, list)) else [copied]
        specs = self.ep.graph_signature.output_specs
        if len(values) != len(specs):
            raise ProgramError(
                f"the program's graph returns {len(values)} values but its signature lists "
                f"{len(specs)} outputs"
            )
        for value, spec in zip(values, specs, strict=True):
            if spec.kind in (OutputKind.USER_OUTPUT, OutputKind.LOSS_OUTPUT):
                self._user_output(value, out)
            elif spec.kind == OutputKind.BUFFER_MUTATION and isinstance(value, torch.fx.Node):
                assert spec.target is not None
                buffer = _state_tensor(self.original, spec.target)
                out.buffer_updates.append((self._model_output(value, out), buffer))
            elif spec.kind == OutputKind.USER_INPUT_MUTATION and isinstance(value, torch.fx.Node):
                assert spec.target is not None
                user = self.user_index[self.names.get(spec.target, spec.target)]
                out.input_updates.append((self._model_output(value, out), user))
            else:
                raise ProgramError(
                    f"the {EXECUTOR} executor does not run programs with {spec.kind.name} outputs"
                )

    def rewrite(self) -> _Rewritten:
        """The rewritten program and its bookkeeping."""
        from torch.export import ExportedProgram
        from torch.export.exported_program import ModuleCallEntry, ModuleCallSignature

        out = _Rewritten(program=self.ep)
        in_specs, moved = self.inputs(out)
        self.outputs(out)
        self.graph.output(tuple(self.kept))
        gm = torch.fx.GraphModule(self.ep.graph_module, self.graph)
        signature = ExportGraphSignature(
            in_specs, [OutputSpec(OutputKind.USER_OUTPUT, _argument(n), None) for n in self.kept]
        )
        n_user = sum(1 for s in in_specs if s.kind == InputKind.USER_INPUT)
        call = ModuleCallSignature(
            inputs=[],
            outputs=[],
            in_spec=pytree.tree_structure((tuple(range(n_user)), {})),
            out_spec=pytree.tree_structure(tuple(range(len(self.kept)))),
        )
        out.program = ExportedProgram(
            root=gm,
            graph=gm.graph,
            graph_signature=signature,
            state_dict={k: v for k, v in self.ep.state_dict.items() if k not in moved},
            range_constraints=self.ep.range_constraints,
            module_call_graph=[ModuleCallEntry("", call)],
            constants={k: v for k, v in self.ep.constants.items() if k not in moved},
        )
        return out


def _argument(node: torch.fx.Node) -> Any:
    if isinstance(node.meta.get("val"), torch.SymInt):
        return SymIntArgument(name=node.name)
    return TensorArgument(name=node.name)


def _to_onnx(ep: ExportedProgram, input_names: list[str]) -> bytes:
    """``torch.onnx.export(ep, dynamo=True)``, with the exporter's registry built once.

    ``torch.onnx.export`` builds the registry of translations on every call, two thirds of the
    time of exporting a small program (measured: about 3 s of 4.5 s on a loaded 2-core machine);
    the function it delegates to takes the registry as an argument.
    """
    import onnxscript  # noqa: F401  (the exporter needs it: fail here with a clear message)
    from torch.onnx._constants import ONNX_DEFAULT_OPSET
    from torch.onnx._internal.exporter import _core

    with _EXPORT_LOCK:
        onnx_program = _core.export(
            ep,
            registry=registry(),
            input_names=input_names,
            verbose=False,
            optimize=True,
            opset_version=ONNX_DEFAULT_OPSET,
        )
    data: bytes = onnx_program.model_proto.SerializeToString()
    return data


def export_program(program: Program) -> ExportPlan:
    """Export ``program`` with the torch.onnx exporter (see the module docstring).

    Raises:
        ProgramError: the program holds an operator or construct the exporter cannot translate
            (the message names the operators) or kinds of inputs/outputs this executor does not
            run (TorchBind objects, gradients).
    """
    original = program.exported_program()
    device = _device_type(original)
    for spec in original.graph_signature.input_specs:
        if spec.kind == InputKind.CUSTOM_OBJ:
            raise ProgramError(
                f"the {EXECUTOR} executor does not run programs holding TorchBind objects "
                f"({spec.target}); run them on executor=['{EXECUTOR}', 'aten']"
            )
    for node in original.graph.nodes:
        if crashes_runtime(node):
            raise ProgramError(
                f"the {EXECUTOR} executor does not run group normalisation of an empty tensor "
                f"(node {node.name}): ONNX Runtime crashes running it. Run it on "
                f"executor=['{EXECUTOR}', 'aten']."
            )
        if training_batch_norm(node):
            raise ProgramError(
                f"the {EXECUTOR} executor does not run batch normalisation in training mode "
                f"(node {node.name}: {_operator_name(node)}): ONNX Runtime computes it in "
                f"inference mode. Call model.eval() before exporting, or run it on "
                f"executor=['{EXECUTOR}', 'aten']."
            )
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor) and val.is_complex():
            raise ProgramError(
                f"the {EXECUTOR} executor does not run complex tensors (node {node.name}: "
                f"{val.dtype})"
            )
    with quiet_exporter():
        try:
            ep = original.run_decompositions({}) if _has_mutations(original) else original
            try:
                rw, model = _export(original, ep, bind_state=False)
            except ProgramError:
                raise
            except Exception:
                # The exporter fails when a translation returns a parameter or constant as it
                # is (t() of a 1-d constant, mean over no dimension of a 0-d one): it renames
                # the initializer. With the state bound as inputs there is no initializer.
                rw, model = _export(original, ep, bind_state=True)
        except ProgramError:
            raise
        except Exception as exc:
            raise _export_error(program, exc) from exc
    return ExportPlan(
        model=model,
        inputs=tuple(rw.bindings),
        results=tuple(rw.results),
        buffer_updates=tuple(rw.buffer_updates),
        input_updates=tuple(rw.input_updates),
        dtypes=tuple(rw.dtypes),
        device=device,
    )


def _export(
    original: ExportedProgram, ep: ExportedProgram, *, bind_state: bool
) -> tuple[_Rewritten, bytes | None]:
    """Rewrite and export; the parameters, buffers and constants are initializers of the model
    (ONNX Runtime can fold them), or with ``bind_state`` inputs the runner binds every call."""
    rw = _Rewriter(original, ep, bind_state=bind_state).rewrite()
    computes = any(r.kind in ("model", "scalar") for r in rw.results)
    model = _to_onnx(rw.program, [b.name for b in rw.bindings]) if computes else None
    return rw, model


def _export_error(program: Program, exc: Exception) -> ProgramError:
    """A ProgramError naming the operators the exporter lacks, or its own first line."""
    unclaimed = unclaimed_operators(program.exported_program().graph)
    if unclaimed:
        return ProgramError(
            f"the {EXECUTOR} executor cannot export {program.name!r} to ONNX: the torch.onnx "
            f"exporter cannot translate {', '.join(unclaimed)} ({_first_line(exc)}). Run it "
            f"on executor=['{EXECUTOR}', 'aten'] to place those operators on aten."
        )
    return ProgramError(
        f"the {EXECUTOR} executor cannot export {program.name!r} to ONNX: the torch.onnx "
        f"exporter failed: {_first_line(exc)}"
    )


def _first_line(exc: BaseException) -> str:
    """The innermost cause's first line (the exporter wraps the real error twice)."""
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"[:300]
