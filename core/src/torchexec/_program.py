"""``Program``: the one currency between the core and executors, and ``normalize`` that makes one."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec
import torch
import torch.utils._pytree as pytree

from torchexec._errors import ProgramError
from torchexec.archive import Pt2Archive

if TYPE_CHECKING:
    # torch.export costs ~0.2 s to import: it is imported when a program is first traced or loaded.
    from torch.export import ExportedProgram

__all__ = ["GraphOutput", "Program", "SerializedProgram", "normalize"]


@dataclass(frozen=True)
class SerializedProgram:
    """A program as JSON plus its tensors, for executors that consume the serialized format.

    Attributes:
        model_json: the ExportedProgram JSON (torch/_export/serde schema), the bytes
            ``torch.export.save`` stores as ``models/model.json``.
        weights: parameters and buffers, by the names the JSON's graph signature uses.
        constants: lifted tensor constants and TorchBind objects, by name.
    """

    model_json: bytes
    weights: Mapping[str, torch.Tensor]
    constants: Mapping[str, Any]


@dataclass(frozen=True)
class GraphOutput:
    """What one output of a program's flat graph module (:meth:`Program.graph_module`) is.

    Attributes:
        kind: the output's role, as ``torch.export``'s ``OutputKind`` names it, in lower case.
            ``"user_output"`` and ``"loss_output"`` are returned to the caller;
            ``"buffer_mutation"`` is the new value of the buffer named ``target``;
            ``"user_input_mutation"`` is the new value of the user input at index
            ``user_input``. Training programs may also hold ``"parameter_mutation"``,
            ``"gradient_to_parameter"``, ``"gradient_to_user_input"`` and ``"token"`` outputs.
        target: for a mutation or gradient, the name of the buffer, parameter or user input it
            belongs to; otherwise ``None``.
        user_input: for ``"user_input_mutation"``, the index of the mutated input among the
            flat user inputs a runner is called with; otherwise ``None``.
    """

    kind: str
    target: str | None = None
    user_input: int | None = None


class Program:
    """An ATen-level program with its input/output structure.

    A program is made by :func:`normalize` from a GraphModule, module, function, ExportedProgram
    or a file. It is lazy: a program that came from a file is not deserialised into Python objects
    until an executor asks for :meth:`exported_program` or :meth:`graph_module`; executors that read
    files themselves use :attr:`path`.

    This is all an executor needs, and all it should use: the flat graph (:meth:`graph_module`),
    the values it takes before the user inputs (:meth:`lifted_state`), the state by name
    (:meth:`state`), what each graph output is (:meth:`graph_outputs`), the ExportedProgram JSON
    (:meth:`serialized`, :meth:`model_document`) and the pytree specs (:attr:`in_spec`,
    :attr:`out_spec`).
    """

    def __init__(
        self,
        *,
        exported: ExportedProgram | None = None,
        path: Path | None = None,
        name: str = "program",
    ) -> None:
        if (exported is None) == (path is None):
            raise TypeError("Program needs exactly one of exported= or path=")
        self.name = name
        self.path = path
        self._exported = exported
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        src = str(self.path) if self.path is not None else "ExportedProgram"
        return f"Program({self.name!r}, from {src})"

    @classmethod
    def from_exported(cls, ep: ExportedProgram, name: str = "program") -> Program:
        """Wrap an ExportedProgram."""
        return cls(exported=ep, name=name)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Program:
        """A program stored in a ``.pt2`` archive or an ExportedProgram ``.json`` file."""
        p = Path(path)
        if not p.exists():
            raise ProgramError(f"No such program file: {p}")
        if p.suffix not in (".pt2", ".json"):
            raise ProgramError(
                f"{p}: unsupported program file type {p.suffix!r}; expected a .pt2 archive "
                "written by torch.export.save or an ExportedProgram .json file"
            )
        return cls(path=p, name=p.stem)

    # --- structure -------------------------------------------------------------------------

    @cached_property
    def _signature_json(self) -> Mapping[str, Any]:
        """The module call signature from the JSON (only for file programs).

        Only the signature is decoded (msgspec skips the rest of the document without building
        it): a 10,000-node program's JSON is megabytes. A document msgspec refuses is parsed in
        full, so that the error names what is wrong.
        """
        sig = _decode_signature(self._file_json())
        if sig is not None:
            return sig
        doc = self.model_document()
        try:
            sig = doc["graph_module"]["module_call_graph"][0]["signature"]
            if not isinstance(sig, dict):
                raise TypeError("signature is not an object")
            return sig
        except (KeyError, IndexError, TypeError) as exc:
            raise ProgramError(
                f"{self.path}: the program JSON has no module call signature "
                f"(graph_module.module_call_graph[0].signature): {exc}"
            ) from exc

    def _spec_from_json(self, key: str) -> pytree.TreeSpec:
        try:
            return pytree.treespec_loads(self._signature_json[key])
        except Exception as exc:
            raise ProgramError(f"{self.path}: cannot read the program's {key}: {exc}") from exc

    @cached_property
    def in_spec(self) -> pytree.TreeSpec:
        """Pytree spec of ``(args, kwargs)`` the program takes."""
        if self._exported is not None:
            spec = self._exported.call_spec.in_spec
            if spec is None:
                raise ProgramError("the ExportedProgram has no input spec")
            return cast(pytree.TreeSpec, spec)
        return self._spec_from_json("in_spec")

    @cached_property
    def out_spec(self) -> pytree.TreeSpec:
        """Pytree spec of the program's outputs."""
        if self._exported is not None:
            spec = self._exported.call_spec.out_spec
            if spec is None:
                raise ProgramError("the ExportedProgram has no output spec")
            return cast(pytree.TreeSpec, spec)
        return self._spec_from_json("out_spec")

    # --- forms executors ask for -------------------------------------------------------------

    def model_document(self) -> Mapping[str, Any]:
        """The parsed ExportedProgram JSON document."""
        import json

        data = self.serialized().model_json if self.path is None else self._file_json()
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ProgramError(f"{self.path or self.name}: invalid program JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ProgramError(f"{self.path or self.name}: program JSON is not an object")
        return doc

    def _file_json(self) -> bytes:
        assert self.path is not None
        if self.path.suffix == ".json":
            return self.path.read_bytes()
        with Pt2Archive(self.path) as archive:
            return archive.model_json()

    def exported_program(self) -> ExportedProgram:
        """The program as an ExportedProgram (loads a file with ``torch.export.load`` once)."""
        with self._lock:
            if self._exported is None:
                assert self.path is not None
                self._exported = _load_exported(self.path)
            return self._exported

    def graph_module(self) -> torch.fx.GraphModule:
        """The flat ATen-level graph: inputs are the lifted state followed by the user inputs."""
        return cast(torch.fx.GraphModule, self.exported_program().graph_module)

    def state(self) -> Mapping[str, Any]:
        """The program's parameters, buffers, lifted constants and TorchBind objects, by the
        names its graph signature uses (loads a file program, as :meth:`exported_program`)."""
        ep = self.exported_program()
        return {**ep.constants, **ep.state_dict}

    def lifted_state(self) -> list[Any]:
        """The values of the flat graph's non-user inputs, in the order the graph takes them.

        The graph module (:meth:`graph_module`) takes these values followed by the user inputs:
        ``program.graph_module()(*program.lifted_state(), *inputs)`` runs the program.

        Raises:
            ProgramError: a parameter, buffer or constant of the signature has no value.
        """
        return lifted_state(self.exported_program())

    def graph_outputs(self) -> tuple[GraphOutput, ...]:
        """What each output of the flat graph module is, in order: a user output, or the new
        value of a buffer or user input the program mutates (a runner applies those itself)."""
        from torch.export.graph_signature import InputKind, OutputKind

        sig = self.exported_program().graph_signature
        user_inputs = [s for s in sig.input_specs if s.kind == InputKind.USER_INPUT]
        index = {spec.arg.name: i for i, spec in enumerate(user_inputs)}
        return tuple(
            GraphOutput(
                kind=spec.kind.name.lower(),
                target=spec.target,
                user_input=index.get(spec.target or "")
                if spec.kind == OutputKind.USER_INPUT_MUTATION
                else None,
            )
            for spec in sig.output_specs
        )

    def serialized(self) -> SerializedProgram:
        """The ExportedProgram JSON and the tensors it refers to (computed once)."""
        with self._lock:
            cached: SerializedProgram | None = getattr(self, "_serialized", None)
            if cached is not None:
                return cached
        ep = self.exported_program()
        import inspect

        from torch._export.serde.serialize import serialize

        # torch >= 2.12 can skip pickling the tensors, which the JSON does not need.
        skip = {
            k: False
            for k in ("serialize_state_dict", "serialize_constants", "serialize_example_inputs")
            if k in inspect.signature(serialize).parameters
        }
        try:
            artifact = serialize(ep, **skip)  # type: ignore[arg-type]
        except Exception as exc:
            raise ProgramError(
                f"cannot serialize {self.name!r} to ExportedProgram JSON: {exc}"
            ) from exc
        model_json = artifact.exported_program
        weights = dict(ep.state_dict)
        constants: dict[str, Any] = dict(ep.constants)
        result = SerializedProgram(model_json=model_json, weights=weights, constants=constants)
        with self._lock:
            self._serialized = result
        return result

    def example_inputs(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The sample inputs stored with the program, if any (``.pt2`` archives keep them)."""
        if self.path is None:
            ep = self._exported
            return ep.example_inputs if ep is not None else None
        if self.path.suffix != ".pt2":
            return None
        with Pt2Archive(self.path) as archive:
            name = "data/sample_inputs/model.pt"
            if not archive.has(name):
                return None
            data = archive.read(name)
        try:
            loaded = torch.load(io.BytesIO(data), weights_only=True)
        except Exception as exc:
            raise ProgramError(f"{self.path}: cannot read the sample inputs: {exc}") from exc
        if not (isinstance(loaded, tuple) and len(loaded) == 2):
            raise ProgramError(f"{self.path}: sample inputs are not an (args, kwargs) pair")
        return loaded[0], loaded[1]


class _CallEntry(msgspec.Struct):
    signature: dict[str, Any] | None = None


class _GraphModuleDoc(msgspec.Struct):
    module_call_graph: list[_CallEntry] = []


class _SignatureDoc(msgspec.Struct):
    """The part of a program JSON that holds its call signature (the rest is skipped)."""

    graph_module: _GraphModuleDoc


def _decode_signature(data: bytes) -> dict[str, Any] | None:
    """``graph_module.module_call_graph[0].signature`` of a program JSON, or ``None`` when it
    cannot be read that way."""
    try:
        doc = msgspec.json.decode(data, type=_SignatureDoc)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    calls = doc.graph_module.module_call_graph
    return calls[0].signature if calls and calls[0].signature is not None else None


def _load_exported(path: Path) -> ExportedProgram:
    try:
        if path.suffix == ".pt2":
            return torch.export.load(path)
        from torch._export.serde.serialize import SerializedArtifact, deserialize

        empty = io.BytesIO()
        torch.save({}, empty)
        artifact = SerializedArtifact(path.read_bytes(), empty.getvalue(), empty.getvalue(), b"")
        return deserialize(artifact)
    except ProgramError:
        raise
    except Exception as exc:
        raise ProgramError(f"{path}: cannot load the program: {exc}") from exc


class _FunctionModule(torch.nn.Module):
    """Wraps a plain function so that ``torch.export`` can trace it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def export_callable(
    fn: torch.nn.Module | Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None = None,
    name: str = "program",
) -> Program:
    """Trace a module or function to an ATen-level :class:`Program` with ``torch.export``."""
    module = fn if isinstance(fn, torch.nn.Module) else _FunctionModule(fn)
    try:
        ep = torch.export.export(module, args, dict(kwargs or {}), strict=False)
    except Exception as exc:
        raise ProgramError(f"cannot trace {name!r} to an ATen program: {exc}") from exc
    return Program.from_exported(ep, name=name)


def normalize(
    program: object, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None = None
) -> Program:
    """Turn anything ``execute`` accepts into a :class:`Program`.

    Args:
        program: a :class:`Program`, ExportedProgram, ``torch.fx.GraphModule`` (torch-level or
            ATen-level), ``torch.nn.Module``, plain function, or the path of a ``.pt2``/``.json``
            file.
        args, kwargs: example inputs, needed to trace modules and functions.
    """
    from torch.export import ExportedProgram

    if isinstance(program, Program):
        return program
    if isinstance(program, ExportedProgram):
        return Program.from_exported(program)
    if isinstance(program, (str, os.PathLike)):
        return Program.from_path(program)
    if isinstance(program, torch.nn.Module) or callable(program):
        name = (
            type(program).__name__
            if isinstance(program, torch.nn.Module)
            else getattr(program, "__name__", "function")
        )
        return export_callable(program, args, kwargs, name=name)
    raise ProgramError(
        f"Cannot run a {type(program).__name__}: expected a torch.fx.GraphModule, an "
        "ExportedProgram, a torch.nn.Module, a function, or the path of a .pt2 archive."
    )


def lifted_state(ep: ExportedProgram) -> list[Any]:
    """The values of the graph's non-user inputs (parameters, buffers, constants, effect
    tokens), in order."""
    import torch
    from torch.export.graph_signature import InputKind

    out: list[Any] = []
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            continue
        if spec.kind == InputKind.TOKEN:  # with_effects threads it: an empty tensor to start
            out.append(torch.empty(0))
            continue
        target = spec.target
        if target is None:
            raise ProgramError(f"input {spec.arg} of kind {spec.kind.name} has no target")
        if target in ep.state_dict:
            out.append(ep.state_dict[target])
        elif target in ep.constants:
            out.append(ep.constants[target])
        else:
            raise ProgramError(f"the program's {spec.kind.name.lower()} {target!r} has no value")
    return out
