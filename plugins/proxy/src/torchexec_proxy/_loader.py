"""ExportedProgram JSON + state -> a validated :class:`~torchexec_proxy.plan.Plan`.

The loader reads the graph signature (which graph inputs are user inputs, parameters, buffers,
constants or TorchBind objects; which outputs are user outputs or buffer / input mutations), drafts
every node against its operator's schema, then assigns slots. Everything a run will need is checked
here: names defined before use, targets allowed and registered, argument types, state values
present with the dtype and shape the graph expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchexec import ProgramError
from torchexec_proxy._convert import static_scalar
from torchexec_proxy._enums import DTYPES, dtype_name
from torchexec_proxy._json import check_schema_version, field, short, union
from torchexec_proxy._nodes import Draft, draft_node
from torchexec_proxy._slots import FOREVER, assign_slots
from torchexec_proxy._subgraph import GraphPlanner
from torchexec_proxy._targets import Resolved, resolve_target
from torchexec_proxy._values import KIND_WORDS, USER_VALUE_TAGS, Values, value_name
from torchexec_proxy.plan import Mutation, Plan, Slot, StateEntry, Static

__all__ = ["build_plan"]


class _State:
    """Finds the value of each parameter, buffer, constant and custom object, and checks it."""

    def __init__(
        self,
        weights: Mapping[str, Any],
        constants: Mapping[str, Any],
        custom_objs: Mapping[str, object],
        tensor_meta: Mapping[str, Any],
    ) -> None:
        self.weights = weights
        self.constants = constants
        self.custom_objs = custom_objs
        self.tensor_meta = tensor_meta
        self.entries: list[StateEntry] = []
        self.values: dict[str, Any] = {}
        self.vids: list[int] = []

    def add(self, vid: int, kind: str, fqn: str, arg: str) -> object:
        order = {
            "parameter": (self.weights,),
            "buffer": (self.weights, self.constants),
            "constant": (self.constants, self.weights),
            "custom_obj": (self.custom_objs, self.constants),
        }[kind]
        for table in order:
            if fqn in table:
                value = table[fqn]
                break
        else:
            hint = " (pass it with custom_objs={name: object})" if kind == "custom_obj" else ""
            raise ProgramError(
                f"the program's {kind.replace('_', ' ')} {fqn!r} (graph input "
                f"{arg!r}) has no value{hint}"
            )
        if kind != "custom_obj":
            self._check_tensor(value, kind, fqn, arg)
        self.entries.append(StateEntry(slot=vid, kind=kind, name=fqn))  # type: ignore[arg-type]
        self.values[fqn] = value
        self.vids.append(vid)
        return value

    def add_token(self, vid: int, arg: str) -> None:
        """An effect token (graph input ``arg``): a fresh empty tensor, as torch starts with."""
        name = f"token:{arg}"  # not a state-dict name (those have no colon)
        self.entries.append(StateEntry(slot=vid, kind="token", name=name))
        self.values[name] = torch.empty(0)
        self.vids.append(vid)

    def _check_tensor(self, value: object, kind: str, fqn: str, arg: str) -> None:
        what = f"{kind} {fqn!r} (graph input {arg!r})"
        if not isinstance(value, torch.Tensor):
            raise ProgramError(f"{what}: expected a tensor, got {type(value).__name__}")
        meta = self.tensor_meta.get(arg)
        if not isinstance(meta, dict):
            return
        code = meta.get("dtype", -1)
        if isinstance(code, bool) or not isinstance(code, int):
            raise ProgramError(f"{what}: its tensor metadata has the dtype {short(code)}")
        dtype = DTYPES.get(code)
        if dtype is not None and value.dtype != dtype:
            raise ProgramError(
                f"{what}: the graph expects dtype {dtype_name(dtype)}, the value has "
                f"{dtype_name(value.dtype)}"
            )
        sizes = meta.get("sizes")
        if isinstance(sizes, list) and all(isinstance(s, dict) and "as_int" in s for s in sizes):
            shape = [s["as_int"] for s in sizes]
            if list(value.shape) != shape:
                raise ProgramError(
                    f"{what}: the graph expects shape {shape}, the value has {list(value.shape)}"
                )


def build_plan(
    doc: Mapping[str, Any],
    weights: Mapping[str, Any],
    constants: Mapping[str, Any],
    *,
    custom_objs: Mapping[str, object],
    allowed: frozenset[str],
    source: str,
) -> Plan:
    """Validate an ExportedProgram JSON document and build its plan.

    Raises:
        ProgramError: naming ``source`` and the node, input or output at fault.
    """
    try:
        return _build(doc, weights, constants, custom_objs, allowed, source)
    except ProgramError as exc:
        raise ProgramError(f"{source}: {exc}") from exc.__cause__


def _build(
    doc: Mapping[str, Any],
    weights: Mapping[str, Any],
    constants: Mapping[str, Any],
    custom_objs: Mapping[str, object],
    allowed: frozenset[str],
    source: str,
) -> Plan:
    major, minor = check_schema_version(doc)
    gm = field(doc, "graph_module", dict, "document")
    graph = field(gm, "graph", dict, "graph_module")
    signature = field(gm, "signature", dict, "graph_module")
    nodes = field(graph, "nodes", list, "graph")
    tensor_meta = graph.get("tensor_values") or {}
    if not isinstance(tensor_meta, dict):
        raise ProgramError(
            f"graph.tensor_values must be a JSON object, got {type(tensor_meta).__name__}"
        )
    values = Values(nodes)
    state = _State(weights, constants, custom_objs, tensor_meta)

    input_vids, user_names = _read_inputs(signature, graph, values, state)
    _check_custom_obj_names(custom_objs, state)

    resolved: dict[str, Resolved] = {}

    def resolve(target: str, where: str) -> Resolved:
        found = resolved.get(target)
        if found is None:
            found = resolved[target] = resolve_target(target, allowed, where)
        return found

    hop = GraphPlanner(resolve).drafter(values, depth=0)
    drafts: list[Draft] = []
    for i, node in enumerate(nodes):
        values.begin(i)
        draft = draft_node(i, node, resolve, values.ref, values.define, values.object_of, hop)
        draft.reads = values.reads
        drafts.append(draft)

    values.begin(FOREVER)
    outputs, mutations = _read_outputs(signature, values, state, user_names, graph)
    for vid in state.vids:
        values.last[vid] = FOREVER
    assignment = assign_slots(drafts, values.last, state.vids, input_vids)
    slot_of = assignment.slot_of

    def slot(vid: int) -> int:
        s = slot_of[vid]
        assert s is not None  # kept values always get a slot
        return s

    plan_outputs = tuple(Slot(slot(o.index)) if isinstance(o, Slot) else o for o in outputs)
    plan_mutations = tuple(Mutation(slot(m.slot), m.kind, m.target) for m in mutations)
    call_sig = _module_call_signature(gm)
    return Plan(
        num_slots=assignment.num_slots,
        inputs=tuple(None if v is None else slot_of[v] for v in input_vids),
        state=tuple(StateEntry(slot(e.slot), e.kind, e.name) for e in state.entries),
        state_values=state.values,
        nodes=tuple(assignment.nodes),
        outputs=plan_outputs,
        mutations=plan_mutations,
        metadata={
            "source": source,
            "schema_version": f"{major}.{minor}",
            "torch_version": doc.get("torch_version"),
            "allowed_namespaces": sorted(allowed),
            "in_spec": call_sig.get("in_spec"),
            "out_spec": call_sig.get("out_spec"),
        },
    )


def _module_call_signature(gm: Mapping[str, Any]) -> Mapping[str, Any]:
    graph = gm.get("module_call_graph")
    if isinstance(graph, list) and graph and isinstance(graph[0], dict):
        sig = graph[0].get("signature")
        if isinstance(sig, dict):
            return sig
    return {}


def _read_inputs(
    signature: Mapping[str, Any],
    graph: Mapping[str, Any],
    values: Values,
    state: _State,
) -> tuple[list[int | None], dict[str, int]]:
    """Define the graph inputs; return the flat user inputs' values and user input positions."""
    specs = field(signature, "input_specs", list, "signature")
    graph_inputs = graph.get("inputs")
    user: list[int | None] = []
    user_names: dict[str, int] = {}
    spec_names: list[Named] = []
    for i, spec in enumerate(specs):
        where = f"input {i}"
        kind, body = union(spec, f"{where}")
        w = f"{where} ({kind})"
        named: Named = None
        if kind == "user_input":
            tag, payload = union(field(body, "arg", dict, w), w)
            if tag in USER_VALUE_TAGS:
                name = value_name(tag, payload, w)
                user_names[name] = len(user)
                user.append(values.define(name, USER_VALUE_TAGS[tag], where))
                named = USER_VALUE_TAGS[tag], name
            else:  # a constant the graph was specialised for
                static_scalar(tag, payload, w)
                user.append(None)
        elif kind == "constant_input":
            const_name = field(body, "name", str, w)
            ctag, cvalue = union(field(body, "value", dict, w), w)
            values.consts[const_name] = Static(static_scalar(ctag, cvalue, w))
            user.append(None)
        elif kind in ("parameter", "buffer", "tensor_constant"):
            name = field(field(body, "arg", dict, w), "name", str, w)
            fqn_key = {"parameter": "parameter_name", "buffer": "buffer_name",
                       "tensor_constant": "tensor_constant_name"}[kind]  # fmt: skip
            vid = values.define(name, "tensor", where)
            state_kind = "constant" if kind == "tensor_constant" else kind
            state.add(vid, state_kind, field(body, fqn_key, str, w), name)
            named = "tensor", name
        elif kind == "token":
            name = field(field(body, "arg", dict, w), "name", str, w)
            vid = values.define(name, "tensor", where)
            state.add_token(vid, name)
            named = "tensor", name
        elif kind == "custom_obj":
            arg = field(body, "arg", dict, w)
            name = field(arg, "name", str, w)
            vid = values.define(name, "custom_obj", where)
            values.objects[vid] = state.add(
                vid, "custom_obj", field(body, "custom_obj_name", str, w), name
            )
            named = "custom_obj", name
        else:
            raise ProgramError(f"{w}: programs with {kind} inputs are not supported")
        spec_names.append(named)
    _check_graph_values(graph_inputs, spec_names, "input")
    return user, user_names


Named = tuple[str, str] | None
"""A value as the signature or the graph lists it: (kind, name); ``None`` for a constant."""


def _graph_value(arg: object, where: str) -> Named:
    """The value a graph input or output names."""
    tag, payload = union(arg, where)
    if tag in USER_VALUE_TAGS:
        return USER_VALUE_TAGS[tag], value_name(tag, payload, where)
    return None


def _words(value: Named) -> str:
    return "a constant" if value is None else f"{KIND_WORDS[value[0]]} {value[1]!r}"


def _check_graph_values(listed: object, spec_names: list[Named], what: str) -> None:
    """The graph's inputs (outputs) must be the values the signature describes, in order: a
    program whose two lists disagree is ambiguous, and torch refuses to load it."""
    if listed is None:
        return
    if not isinstance(listed, list):
        raise ProgramError(f"graph: field '{what}s' must be a list, got {short(listed)}")
    if len(listed) != len(spec_names):
        raise ProgramError(
            f"the graph has {len(listed)} {what}s but the signature describes {len(spec_names)}"
        )
    for i, (arg, expected) in enumerate(zip(listed, spec_names, strict=True)):
        got = _graph_value(arg, f"graph {what} {i}")
        if got != expected:
            raise ProgramError(
                f"graph {what} {i} is {_words(got)}, but the signature's {what} {i} is "
                f"{_words(expected)}"
            )


def _check_custom_obj_names(custom_objs: Mapping[str, object], state: _State) -> None:
    known = {e.name for e in state.entries if e.kind == "custom_obj"}
    for name in custom_objs:
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise ProgramError(
                f"custom_objs names {name!r}, but the program has no custom object of "
                f"that name (it has: {have})"
            )


def _read_outputs(
    signature: Mapping[str, Any],
    values: Values,
    state: _State,
    user_names: Mapping[str, int],
    graph: Mapping[str, Any],
) -> tuple[list[Slot | Static], list[Mutation]]:
    """Read the output specs: user outputs (slots or constants) and mutations."""
    specs = field(signature, "output_specs", list, "signature")
    outputs: list[Slot | Static] = []
    mutations: list[Mutation] = []
    buffers = {e.name for e in state.entries if e.kind == "buffer"}
    spec_names: list[Named] = []
    for i, spec in enumerate(specs):
        where = f"output {i}"
        kind, body = union(spec, f"{where}")
        w = f"{where} ({kind})"
        arg = field(body, "arg", dict, w)
        name: str | None = None
        value_kind = "tensor"
        if kind == "user_output":
            tag, payload = union(arg, w)
            if tag in USER_VALUE_TAGS:
                name = value_name(tag, payload, w)
                value_kind = USER_VALUE_TAGS[tag]
                outputs.append(values.ref(name, value_kind, where))
            else:
                outputs.append(Static(static_scalar(tag, payload, w)))
        elif kind == "loss_output":
            name = field(arg, "name", str, w)
            outputs.append(values.ref(name, "tensor", where))
        elif kind == "token":  # threaded from one effectful call to the next; not returned
            name = field(arg, "name", str, w)
            values.ref(name, "tensor", where)
        elif kind == "buffer_mutation":
            name = field(arg, "name", str, w)
            ref = values.ref(name, "tensor", where)
            target = field(body, "buffer_name", str, w)
            if target not in buffers:
                raise ProgramError(f"{w}: mutates {target!r}, which is not a buffer of the program")
            mutations.append(Mutation(_vid(ref, w), "buffer", target))
        elif kind == "user_input_mutation":
            name = field(arg, "name", str, w)
            ref = values.ref(name, "tensor", where)
            target_name = field(body, "user_input_name", str, w)
            if target_name not in user_names:
                raise ProgramError(f"{w}: mutates {target_name!r}, which is not a user input")
            mutations.append(Mutation(_vid(ref, w), "user_input", user_names[target_name]))
        else:
            raise ProgramError(f"{w}: programs with {kind} outputs are not supported")
        spec_names.append(None if name is None else (value_kind, name))
    _check_graph_values(graph.get("outputs"), spec_names, "output")
    return outputs, mutations


def _vid(ref: Slot | Static, where: str) -> int:
    if not isinstance(ref, Slot):
        raise ProgramError(f"{where}: a mutation must write a tensor value")
    return ref.index
