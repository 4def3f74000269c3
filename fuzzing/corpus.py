"""The valid programs the fuzzer mutates, built once and stored in a folder.

:func:`build` exports every program of :mod:`.programs` (``torch.export``), serializes it to
ExportedProgram JSON (``torchexec.normalize(...).serialized()``), saves its ``.pt2`` archive
(``torch.export.save``) and records its reference outputs (the exported module run eagerly:
``aten``); it also writes the extern-kernel documents of :mod:`.externs`. :func:`load` reads the
folder back, which is all a worker process needs: nothing is traced twice.

Layout::

    corpus/programs/<name>/model.json   model.pt2   state.pt   meta.json
    corpus/extern/<name>.json           <name>.pt
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from .externs import extern_specs
from .programs import PROGRAMS, ProgramSpec

__all__ = ["Corpus", "ExternItem", "ProgramItem", "build", "load", "load_testing_lib"]


def load_testing_lib() -> None:
    """Load ``torchexec_torchbind.testing`` (the ``Scale`` class and ``scale_add`` operator)."""
    from torchexec_torchbind import testing

    testing.load()


def make_scale(weight: torch.Tensor) -> torch.ScriptObject:
    """A fresh ``torchexec_testing.Scale`` holding a copy of ``weight``."""
    from torchexec_torchbind import testing

    return testing.scale(weight.clone())


@dataclass
class ProgramItem:
    """One valid program in every form the loaders read, with its reference results.

    ``expected`` are the flat outputs of one run on ``inputs`` from the stored state;
    ``expected_state`` the buffers and ``expected_inputs`` the user inputs after that run
    (they differ from the starting ones only for programs that mutate).
    """

    name: str
    model_json: bytes
    pt2: bytes
    weights: dict[str, torch.Tensor]
    tensor_constants: dict[str, torch.Tensor]
    objects: dict[str, torch.Tensor]
    inputs: tuple[torch.Tensor, ...]
    expected: list[Any]
    expected_state: dict[str, torch.Tensor]
    expected_inputs: list[torch.Tensor]
    namespaces: tuple[str, ...]
    mutates: bool
    doc: dict[str, Any] = field(default_factory=dict)
    engine: bool = True

    @property
    def parameters(self) -> frozenset[str]:
        """Names of the weights that are parameters (the others are buffers)."""
        names = set()
        for spec in self.doc["graph_module"]["signature"]["input_specs"]:
            if "parameter" in spec:
                names.add(spec["parameter"]["parameter_name"])
        return frozenset(names)

    def fresh_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Copies of the weights and constants (TorchBind objects re-created): a case may
        write into them. Parameters are ``nn.Parameter``s, as in ``ExportedProgram.state_dict``."""
        params = self.parameters
        weights = {
            k: torch.nn.Parameter(v.clone()) if k in params else v.clone()
            for k, v in self.weights.items()
        }
        constants: dict[str, Any] = {k: v.clone() for k, v in self.tensor_constants.items()}
        for name, weight in self.objects.items():
            constants[name] = make_scale(weight)
        return weights, constants

    def fresh_inputs(self) -> list[torch.Tensor]:
        """Copies of the inputs."""
        return [x.clone() for x in self.inputs]


@dataclass
class ExternItem:
    """One extern-kernel document with the tensors its nodes name."""

    name: str
    text: str
    env: dict[str, torch.Tensor]
    objects: dict[str, torch.Tensor]
    namespaces: tuple[str, ...]
    doc: dict[str, Any] = field(default_factory=dict)

    def fresh_objects(self) -> dict[str, Any]:
        """New TorchBind objects by name."""
        return {name: make_scale(w) for name, w in self.objects.items()}


@dataclass
class Corpus:
    """Everything a worker needs."""

    root: Path
    programs: list[ProgramItem]
    externs: list[ExternItem]

    def program(self, name: str) -> ProgramItem:
        """The program called ``name``."""
        for item in self.programs:
            if item.name == name:
                return item
        raise KeyError(name)


def _save_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _build_program(spec: ProgramSpec, folder: Path) -> None:
    import torchexec

    torch.manual_seed(0)
    module = spec.make()
    inputs = spec.inputs()
    dynamic = spec.dynamic_shapes() if spec.dynamic_shapes is not None else None
    ep = torch.export.export(module, inputs, dynamic_shapes=dynamic, strict=False)
    serialized = torchexec.Program.from_exported(ep).serialized()
    weights = {k: v.detach().clone() for k, v in serialized.weights.items()}
    tensor_constants: dict[str, torch.Tensor] = {}
    objects: dict[str, torch.Tensor] = {}
    for name, value in serialized.constants.items():
        if isinstance(value, torch.Tensor):
            tensor_constants[name] = value.detach().clone()
        else:
            objects[name] = value.get_weight().clone()  # the only class used: Scale
    pt2 = io.BytesIO()
    torch.export.save(ep, pt2)
    # The reference: the exported program run eagerly on copies (it may mutate its state).
    run_ep = copy.deepcopy(ep) if not objects else ep
    unlifted = run_ep.module()
    run_inputs = [x.clone() for x in inputs]
    outputs = unlifted(*run_inputs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_bytes(serialized.model_json)
    (folder / "model.pt2").write_bytes(pt2.getvalue())
    state = {
        "weights": weights,
        "tensor_constants": tensor_constants,
        "objects": objects,
        "inputs": list(inputs),
        "expected": [_detached(v) for v in pytree.tree_leaves(outputs)],
        "expected_state": {k: v.detach().clone() for k, v in unlifted.state_dict().items()},
        "expected_inputs": [x.clone() for x in run_inputs],
    }
    (folder / "state.pt").write_bytes(_save_bytes(state))
    meta = {"namespaces": list(spec.namespaces), "mutates": spec.mutates, "engine": spec.engine}
    (folder / "meta.json").write_text(json.dumps(meta))


def _detached(v: object) -> object:
    return v.detach().clone() if isinstance(v, torch.Tensor) else v


def build(root: Path) -> Path:
    """Build the corpus under ``root`` (created); returns ``root``."""
    load_testing_lib()
    for spec in PROGRAMS:
        _build_program(spec, root / "programs" / spec.name)
    extern_dir = root / "extern"
    extern_dir.mkdir(parents=True, exist_ok=True)
    for ext in extern_specs():
        (extern_dir / f"{ext.name}.json").write_text(ext.text)
        payload = {"env": ext.env, "objects": ext.objects, "namespaces": list(ext.namespaces)}
        (extern_dir / f"{ext.name}.pt").write_bytes(_save_bytes(payload))
    (root / "DONE").write_text("ok")
    return root


def _load_state(path: Path) -> Mapping[str, Any]:
    state: Mapping[str, Any] = torch.load(path, weights_only=True)
    return state


def load(root: Path) -> Corpus:
    """Read a corpus made by :func:`build`."""
    if not (root / "DONE").exists():
        raise FileNotFoundError(f"{root} holds no complete fuzz corpus")
    load_testing_lib()
    programs: list[ProgramItem] = []
    for spec in PROGRAMS:
        folder = root / "programs" / spec.name
        state = _load_state(folder / "state.pt")
        meta = json.loads((folder / "meta.json").read_text())
        model_json = (folder / "model.json").read_bytes()
        programs.append(
            ProgramItem(
                name=spec.name,
                model_json=model_json,
                pt2=(folder / "model.pt2").read_bytes(),
                weights=dict(state["weights"]),
                tensor_constants=dict(state["tensor_constants"]),
                objects=dict(state["objects"]),
                inputs=tuple(state["inputs"]),
                expected=list(state["expected"]),
                expected_state=dict(state["expected_state"]),
                expected_inputs=list(state["expected_inputs"]),
                namespaces=tuple(meta["namespaces"]),
                mutates=bool(meta["mutates"]),
                doc=json.loads(model_json),
                engine=bool(meta.get("engine", True)),
            )
        )
    externs: list[ExternItem] = []
    for path in sorted((root / "extern").glob("*.json")):
        payload = _load_state(path.with_suffix(".pt"))
        text = path.read_text()
        externs.append(
            ExternItem(
                name=path.stem,
                text=text,
                env=dict(payload["env"]),
                objects=dict(payload["objects"]),
                namespaces=tuple(payload["namespaces"]),
                doc=json.loads(text),
            )
        )
    return Corpus(root, programs, externs)


@cache
def shared_corpus_dir() -> Path:
    """A corpus built once per process (a test session) in a temporary folder."""
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="torchexec-fuzz-corpus-"))
    atexit.register(shutil.rmtree, root, True)
    return build(root)
