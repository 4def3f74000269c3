"""Mutations of the subgraphs of higher-order operators (``as_graph`` arguments of ``cond``,
``while_loop``, ``map_impl``, ``scan``): the shapes of bad control flow a loader must reject.

- a subgraph loses or repeats an output (branches whose outputs no longer match);
- two subgraphs trade places (a branch becomes a loop body, ...);
- a subgraph is wrapped in ``cond(True, wrapped, g, inputs)`` many times over: valid up to the
  loaders' nesting limit, too deep beyond it.
"""

from __future__ import annotations

import copy
from typing import Any

from .chooser import Chooser
from .jsontree import Path, get, paths

__all__ = ["mutate_subgraph"]

_COND = "torch.ops.higher_order.cond"


def _subgraphs(doc: Any) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``as_graph`` payload holding a graph, with its path."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for path, value in paths(doc):
        if (
            path
            and path[-1] == "as_graph"
            and isinstance(value, dict)
            and isinstance(value.get("graph"), dict)
        ):
            found.append((path, value))
    return found


def _wrap_in_conds(graph: dict[str, Any], levels: int) -> bool:
    """Replace ``graph``'s body by ``levels`` nested ``cond(True, body, graph, inputs)`` (the
    false branch is the original graph, so the document grows linearly)."""
    inputs = graph.get("inputs")
    outputs = graph.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not outputs:
        return False
    if not all(isinstance(a, dict) and set(a) == {"as_tensor"} for a in inputs + outputs):
        return False
    operands = {"as_tensors": [a["as_tensor"] for a in inputs]}
    body = copy.deepcopy(graph)
    for level in range(levels):
        node = {
            "target": _COND,
            "name": f"fuzz_cond_{level}",
            "inputs": [
                {"name": "", "arg": {"as_bool": True}, "kind": 1},
                {"name": "", "arg": {"as_graph": {"name": f"fuzz_t{level}", "graph": body}},
                 "kind": 1},
                {"name": "", "arg": {"as_graph": {"name": f"fuzz_f{level}",
                                                  "graph": copy.deepcopy(graph)}}, "kind": 1},
                {"name": "", "arg": copy.deepcopy(operands), "kind": 1},
            ],
            "outputs": copy.deepcopy(outputs),
        }  # fmt: skip
        body = dict(copy.deepcopy(graph), nodes=[node])
    graph["nodes"] = body["nodes"]
    return True


def mutate_subgraph(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    """One mutation of a randomly chosen subgraph (see the module docstring)."""
    found = _subgraphs(doc)
    if not found:
        return doc, "subgraph: none", True
    path, payload = ch.choice(found)
    graph = payload["graph"]
    where = "/".join(str(p) for p in path)
    how = ch.integer(0, 3)
    outputs = graph.get("outputs")
    if how == 0 and isinstance(outputs, list) and outputs:
        outputs.pop(ch.integer(0, len(outputs) - 1))
        return doc, f"subgraph {where}: drop an output", False
    if how == 1 and isinstance(outputs, list) and outputs:
        outputs.append(copy.deepcopy(ch.choice(outputs)))
        return doc, f"subgraph {where}: repeat an output", False
    if how == 2 and len(found) > 1:
        other_path, other = ch.choice([f for f in found if f[0] != path] or found)
        mine, theirs = copy.deepcopy(payload), copy.deepcopy(other)
        get(doc, path[:-1])["as_graph"] = theirs
        get(doc, other_path[:-1])["as_graph"] = mine
        return doc, f"subgraph {where}: swap with {'/'.join(map(str, other_path))}", False
    levels = ch.choice((1, 2, 15, 16, 17, 40))
    if _wrap_in_conds(graph, levels):
        return doc, f"subgraph {where}: wrap in {levels} nested conds", False
    return doc, f"subgraph {where}: nothing to wrap", True
