"""The part of an ExportedProgram document a computation depends on.

A mutation may change a document without changing the program: tensor metadata, node metadata,
the module call graph, a repeated key that ``json.loads`` resolves, the same text in UTF-16. When
the proxy accepts such a mutant, the unmutated program's results are the reference, even where
torch's own deserializer refuses the mutant (it checks metadata the computation never reads).

The skeleton keeps what the proxy computes from: the major schema version, every node's target,
named arguments (without their ``kind``: arguments are bound by name) and outputs, the graph's
inputs and outputs and the graph signature. Two documents with equal skeletons compute the same
thing from the same state.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["keyword_bound", "repaired", "same_program", "skeleton"]

_KEYWORD = 2  # torch/_export/serde/schema.py: ArgumentKind.KEYWORD


def skeleton(doc: Any) -> Any:
    """The skeleton of a parsed document, or ``None`` when it does not have the expected shape."""
    try:
        gm = doc["graph_module"]
        graph = gm["graph"]
        nodes = [
            {
                "target": n["target"],
                "inputs": _bound_inputs(n["target"], n["inputs"]),
                "outputs": n["outputs"],
            }
            for n in graph["nodes"]
        ]
        return {
            "major": doc["schema_version"]["major"],
            "nodes": nodes,
            "inputs": graph.get("inputs"),
            "outputs": graph.get("outputs"),
            "signature": {
                "input_specs": [_spec_view(s) for s in gm["signature"]["input_specs"]],
                "output_specs": gm["signature"]["output_specs"],
            },
        }
    except (KeyError, TypeError, IndexError):
        return None


def _bound_inputs(target: Any, inputs: Any) -> list[dict[str, Any]]:
    """A node's named arguments without ``kind``; an operator's sorted by name (it binds them
    by name, so their order means nothing), others' in order (positional)."""
    named = [{"name": a["name"], "arg": a["arg"]} for a in inputs]
    operator = isinstance(target, str) and target.startswith("torch.ops.")
    if operator and not target.startswith("torch.ops.higher_order."):
        named.sort(key=lambda a: str(a["name"]))
    return named


def _spec_view(spec: Any) -> Any:
    """An input spec without the fields the proxy does not read (``persistent``, the custom
    object's ``class_fqn``: the object itself says what it is)."""
    if not isinstance(spec, dict) or len(spec) != 1:
        return spec
    ((kind, body),) = spec.items()
    if not isinstance(body, dict):
        return spec
    body = {k: v for k, v in body.items() if k != "persistent"}
    if kind == "custom_obj" and isinstance(body.get("arg"), dict):
        body["arg"] = {k: v for k, v in body["arg"].items() if k != "class_fqn"}
    return {kind: body}


def same_program(base: Any, data: bytes) -> bool:
    """Whether the document ``data`` has the skeleton of the parsed document ``base``."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return False
    mine, theirs = skeleton(doc), skeleton(base)
    if mine is None or theirs is None:
        return False
    for key in ("inputs", "outputs"):  # redundant with the signature: the proxy allows absence
        if mine[key] is None:
            theirs[key] = None
    # Compared as canonical text: 1, 1.0 and true, or 0.0 and -0.0, are different arguments.
    return _text(mine) == _text(theirs)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def repaired(mutant: Any, base: Any, *, keep_call_graph: bool) -> bytes | None:
    """The mutant with every part the proxy does not read taken from ``base``.

    torch's deserializer reads much that the computation does not need (tensor metadata, node
    metadata, the module call graph, ...) and refuses a program where any of it is damaged.
    When it refuses a mutant the proxy accepted, this document, which differs from the mutant
    only where the proxy does not look, tells what the accepted program computes. The module
    call graph is kept when the caller reads it (``.pt2`` archives through ``torchexec``,
    where it structures inputs and outputs). ``None`` when the mutant lacks the shape for it.
    ``mutant`` (a freshly parsed document) is changed in place.
    """
    try:
        doc = mutant
        for key, value in base.items():
            if key not in ("graph_module", "schema_version"):
                doc[key] = copy.deepcopy(value)
        doc["schema_version"] = {
            "major": doc["schema_version"]["major"],
            "minor": base["schema_version"]["minor"],
        }
        gm, base_gm = doc["graph_module"], base["graph_module"]
        specs = _call_specs(gm) if keep_call_graph else None
        for key, value in base_gm.items():
            if key not in ("graph", "signature"):
                gm[key] = copy.deepcopy(value)
        if specs is not None:  # the caller reads these two: the mutant's stay
            gm["module_call_graph"][0]["signature"].update(specs)
        graph, base_graph = gm["graph"], base_gm["graph"]
        for key, value in base_graph.items():
            if key not in ("nodes", "inputs", "outputs") or key not in graph:
                graph[key] = copy.deepcopy(value)
        _repair_nodes(graph, base_graph)
        _repair_objects(graph["inputs"], _classes(base_graph))
        _repair_signature(gm["signature"], base_gm["signature"])
        return json.dumps(keyword_bound(doc)).encode()
    except (KeyError, TypeError, IndexError, AttributeError, ValueError, RecursionError):
        return None


def _call_specs(gm: Any) -> dict[str, Any]:
    """The mutant's ``in_spec`` and ``out_spec`` (what torchexec reads of the call graph)."""
    signature = gm["module_call_graph"][0]["signature"]
    return {"in_spec": signature["in_spec"], "out_spec": signature["out_spec"]}


def _repair_nodes(graph: Any, base_graph: Any) -> None:
    base_nodes = {n.get("name"): n for n in base_graph["nodes"]}
    metas = graph.setdefault("tensor_values", {})
    filler = next(iter(metas.values()), None)
    classes = _classes(base_graph)
    for i, node in enumerate(graph["nodes"]):
        name = node.get("name")
        if not isinstance(name, str):  # only named in messages by the proxy
            node["name"] = name = f"node_{i}"
        twin = base_nodes.get(name, {})
        _repair_objects(node["inputs"], classes)
        node["outputs"] = [_plain_output(out) for out in node["outputs"]]
        node["metadata"] = copy.deepcopy(twin.get("metadata", {}))
        node["is_hop_single_tensor_return"] = twin.get("is_hop_single_tensor_return")
        for out in node["outputs"]:
            payload = out.get("as_tensor") if isinstance(out, dict) else None
            name = payload.get("name") if isinstance(payload, dict) else None
            if isinstance(name, str) and name not in metas and filler is not None:
                metas[name] = copy.deepcopy(filler)  # any metadata: .module() runs real ops


def _classes(graph: Any) -> dict[str, str]:
    """Custom-object value name -> class, from the graph's inputs."""
    out: dict[str, str] = {}
    for arg in graph.get("inputs") or []:
        obj = arg.get("as_custom_obj") if isinstance(arg, dict) else None
        if isinstance(obj, dict) and isinstance(obj.get("class_fqn"), str):
            out[str(obj.get("name"))] = obj["class_fqn"]
    return out


def _repair_objects(value: Any, classes: dict[str, str]) -> None:
    """Restore the ``class_fqn`` of custom-object arguments of operators (the proxy reads it
    only for ``call_torchbind``, where it checks it against the object)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            obj = v.get("as_custom_obj")
            if isinstance(obj, dict) and not isinstance(obj.get("class_fqn"), str):
                obj["class_fqn"] = classes.get(str(obj.get("name")), "")
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _plain_output(out: Any) -> Any:
    """``as_optional_tensor`` holding a tensor, as ``as_tensor``: the proxy reads both alike."""
    if isinstance(out, dict) and set(out) == {"as_optional_tensor"}:
        inner = out["as_optional_tensor"]
        if isinstance(inner, dict) and set(inner) == {"as_tensor"}:
            return inner
    return out


def keyword_bound(doc: Any) -> Any:
    """Mark every operator argument of ``doc`` (in place) as ``KEYWORD``, so that torch's
    deserializer binds it by its name; returns ``doc``. Malformed parts are left alone."""
    try:
        nodes = doc["graph_module"]["graph"]["nodes"]
    except (KeyError, TypeError, IndexError):
        return doc
    if not isinstance(nodes, list):
        return doc
    for node in nodes:
        target = node.get("target") if isinstance(node, dict) else None
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not (isinstance(target, str) and target.startswith("torch.ops.")):
            continue
        if target.startswith("torch.ops.higher_order.") or not isinstance(inputs, list):
            continue
        for named in inputs:
            if isinstance(named, dict):  # also where a mutation removed it
                named["kind"] = _KEYWORD
    return doc


def _repair_signature(signature: Any, base: Any) -> None:
    """Restore the spec fields the proxy does not read (``persistent``, ``class_fqn``)."""
    persistent = {
        s["buffer"]["buffer_name"]: s["buffer"].get("persistent", True)
        for s in base["input_specs"]
        if "buffer" in s
    }
    fqns = {
        s["custom_obj"]["custom_obj_name"]: s["custom_obj"]["arg"].get("class_fqn")
        for s in base["input_specs"]
        if "custom_obj" in s
    }
    for spec in signature["input_specs"]:
        if "buffer" in spec:
            spec["buffer"]["persistent"] = persistent.get(spec["buffer"].get("buffer_name"), True)
        if "custom_obj" in spec:
            body = spec["custom_obj"]
            body["arg"]["class_fqn"] = fqns.get(body.get("custom_obj_name"), "")
