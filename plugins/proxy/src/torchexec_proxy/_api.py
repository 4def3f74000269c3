"""The public loaders: a program (file or in memory) or JSON + tensors -> a validated Plan."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from torchexec import Program, ProgramError
from torchexec_proxy._json import parse_document
from torchexec_proxy._loader import build_plan
from torchexec_proxy._pt2 import read_archive
from torchexec_proxy._targets import normalize_namespaces
from torchexec_proxy.plan import Plan

__all__ = ["load_plan", "load_plan_from_json"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building: parsing a large program creates
    millions of acyclic objects, and repeated full collections over them would dominate."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _objs(custom_objs: Mapping[str, object] | None) -> dict[str, object]:
    if custom_objs is None:
        return {}
    if not isinstance(custom_objs, Mapping):
        raise ProgramError(
            f"custom_objs must be a mapping of names to TorchBind objects, got "
            f"{type(custom_objs).__name__}"
        )
    return dict(custom_objs)


def load_plan(
    program: Program,
    *,
    custom_objs: Mapping[str, object] | None = None,
    allowed_namespaces: Iterable[str] = (),
    allow_pickle: bool = False,
) -> Plan:
    """Load and validate ``program`` into a :class:`~torchexec_proxy.plan.Plan`.

    A program from a file (``program.path`` set) is read from that file: a ``.pt2`` archive
    written by ``torch.export.save`` (its ``models/model.json`` and the weights and constants
    stored beside it) or an ExportedProgram ``.json`` file. ``torch.export.load`` is never called.
    Any other program is serialized to ExportedProgram JSON by ``program.serialized()`` and loaded
    from that JSON and its tensors.

    Args:
        program: the program.
        custom_objs: TorchBind objects by the names the program's signature gives them
            (``custom_obj_name``); they take the place of objects stored with the program.
        allowed_namespaces: operator namespaces allowed besides ``aten`` and ``prims``.
        allow_pickle: read archive payloads stored with Python pickle (tensor subclasses, plain
            Python objects). Off by default: unpickling can run arbitrary code.

    Raises:
        ProgramError: the program is malformed, uses a target that is unknown or not allowed,
            passes an argument of the wrong type, or lacks a value; the message names the node
            and argument.
    """
    objs = _objs(custom_objs)
    allowed = normalize_namespaces(allowed_namespaces)
    if program.path is not None:
        path = program.path
        source = str(path)
        weights: Mapping[str, Any]
        constants: Mapping[str, Any]
        if path.suffix == ".json":
            try:
                model_json = path.read_bytes()
            except OSError as exc:
                raise ProgramError(f"{path}: cannot read the program: {exc}") from exc
            weights, constants = {}, {}
        else:
            contents = read_archive(path, allow_pickle=allow_pickle, skip=frozenset(objs))
            model_json, weights, constants = (
                contents.model_json,
                contents.weights,
                contents.constants,
            )
    else:
        serialized = program.serialized()
        source = program.name
        model_json, weights, constants = (
            serialized.model_json,
            serialized.weights,
            serialized.constants,
        )
    with _gc_paused():  # the parsed document is dropped before the collector resumes
        plan = build_plan(
            parse_document(model_json, source),
            weights,
            constants,
            custom_objs=objs,
            allowed=allowed,
            source=source,
        )
    _check_call_specs(program, plan, source)
    return plan


def _check_call_specs(program: Program, plan: Plan, source: str) -> None:
    """The program's input and output specs (how callers' arguments are flattened and outputs
    rebuilt) must count the values its graph signature takes and returns; otherwise the first
    call would fail, and a bad program must fail at load."""
    try:
        n_in, n_out = program.in_spec.num_leaves, program.out_spec.num_leaves
    except ProgramError:
        return  # no specs to check (a bare program JSON); torchexec.prepare reports that
    if n_in != len(plan.inputs):
        raise ProgramError(
            f"{source}: the program's input spec has {n_in} values, but its graph signature "
            f"takes {len(plan.inputs)} user inputs"
        )
    if n_out != len(plan.outputs):
        raise ProgramError(
            f"{source}: the program's output spec has {n_out} values, but its graph signature "
            f"returns {len(plan.outputs)} user outputs"
        )


def load_plan_from_json(
    model_json: bytes | str | Mapping[str, Any],
    weights: Mapping[str, torch.Tensor],
    constants: Mapping[str, object],
    *,
    custom_objs: Mapping[str, object] | None = None,
    allowed_namespaces: Iterable[str] = (),
    source: str = "<json>",
) -> Plan:
    """Load and validate an ExportedProgram JSON document with its tensors held in memory.

    Args:
        model_json: the document (the bytes ``torch.export.save`` stores as
            ``models/model.json``), or the already-parsed mapping.
        weights: parameters and buffers by their state-dict names.
        constants: lifted tensor constants, non-persistent buffers and TorchBind objects by name.
        custom_objs: TorchBind objects overriding those in ``constants``.
        allowed_namespaces: operator namespaces allowed besides ``aten`` and ``prims``.
        source: how messages name the program.

    Raises:
        ProgramError: as :func:`load_plan`.
    """
    objs = _objs(custom_objs)
    allowed = normalize_namespaces(allowed_namespaces)
    with _gc_paused():  # the parsed document is dropped before the collector resumes
        return build_plan(
            parse_document(model_json, source),
            dict(weights),
            dict(constants),
            custom_objs=objs,
            allowed=allowed,
            source=source,
        )
