"""Bad programs with higher-order operators fail at load, naming the node (and the subgraph)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import torch
from torch import _higher_order_ops, nn
from torch._export.serde.serialize import serialize

import torchexec
import torchexec_proxy
from torchexec_proxy import load_plan_from_json

Doc = dict[str, Any]
T = torch.Tensor
# torch's control-flow entry points, untyped for mypy (their stubs do not describe pytrees).
cond: Any = torch.cond
hop_map: Any = _higher_order_ops.map
scan: Any = _higher_order_ops.scan
while_loop: Any = _higher_order_ops.while_loop


class Branch(nn.Module):
    """``x + 1`` if ``p`` else ``x - 1``, with the predicate passed to the branches too."""

    def forward(self, p: T, x: T) -> Any:
        def yes(p: T, x: T) -> T:
            return torch.where(p, x + 1, x)

        def no(p: T, x: T) -> T:
            return torch.where(p, x, x - 1)

        return cond(p, yes, no, (p, x))


class TwoOut(nn.Module):
    def forward(self, x: T) -> Any:
        return cond(x.sum() > 0, lambda x: (x + 1, x * 2), lambda x: (x - 1, x / 2), (x,))


class Loop(nn.Module):
    def forward(self, x: T) -> Any:
        def body(i: T, x: T) -> tuple[T, T]:
            return i + 1, x * 2

        return while_loop(lambda i, x: i < 3, body, (torch.zeros((), dtype=torch.int64), x))


class Mapped(nn.Module):
    def forward(self, xs: T) -> Any:
        return hop_map(lambda x: x.cos(), xs)


class Scanned(nn.Module):
    def forward(self, init: T, xs: T) -> Any:
        return scan(lambda c, x: (c + x, c * x), init, xs)


def _doc(module: nn.Module, *args: T) -> Doc:
    ep = torch.export.export(module, args, strict=False)
    doc: Doc = json.loads(serialize(ep).exported_program)
    return doc


def _hop(graph: Doc, target: str) -> Doc:
    return next(n for n in graph["nodes"] if n["target"] == f"torch.ops.higher_order.{target}")


def _top(doc: Doc) -> Doc:
    graph: Doc = doc["graph_module"]["graph"]
    return graph


def _sub(node: Doc, index: int) -> Doc:
    graph: Doc = node["inputs"][index]["arg"]["as_graph"]["graph"]
    return graph


def _expect(doc: Doc, *patterns: str) -> None:
    with pytest.raises(torchexec.ProgramError) as info:
        load_plan_from_json(doc, {}, {})
    message = str(info.value)
    for p in patterns:
        assert re.search(p, message), f"{p!r} not in {message!r}"


def test_branches_with_different_output_counts() -> None:
    doc = _doc(TwoOut(), torch.randn(3))
    _sub(_hop(_top(doc), "cond"), 2)["outputs"].pop()
    _expect(doc, r"node 'cond' \(torch.ops.higher_order.cond\)", "branches disagree",
            "'false_graph_0' returns 1 values, expected 2")  # fmt: skip


def test_branches_with_different_dtypes() -> None:
    doc = _doc(TwoOut(), torch.randn(3))
    false = _sub(_hop(_top(doc), "cond"), 2)
    out = false["outputs"][0]["as_tensor"]["name"]
    false["tensor_values"][out]["dtype"] = 5  # another dtype than the true branch's
    _expect(doc, r"node 'cond'", r"output 0 is a tensor of dtype code 5, expected a tensor")


def test_wrong_arity() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    _hop(_top(doc), "cond")["inputs"].pop()
    _expect(doc, r"node 'cond'", r"cond takes 4 arguments .*the node passes 3")


def test_missing_subgraph() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    _hop(_top(doc), "cond")["inputs"][1]["arg"] = {"as_none": True}
    _expect(doc, r"node 'cond'.*argument 1", r"expected a subgraph \(as_graph\), got as_none")


def test_subgraph_without_its_graph() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    del _hop(_top(doc), "cond")["inputs"][2]["arg"]["as_graph"]["graph"]
    _expect(doc, r"node 'cond'", "subgraph 'false_graph_0'", "graph")


def test_subgraph_with_a_wrong_input_count() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    _sub(_hop(_top(doc), "cond"), 1)["inputs"].pop()
    _expect(doc, "subgraph 'true_graph_0'", "takes 1 inputs, the node passes 2 operands")


def test_subgraph_input_of_another_kind() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    true = _sub(_hop(_top(doc), "cond"), 1)
    name = true["inputs"][1]["as_tensor"]["name"]
    true["inputs"][1] = {"as_sym_int": {"as_name": name}}
    _expect(doc, "subgraph 'true_graph_0'", "input 1 is a SymInt, but the node passes a tensor")


def test_errors_inside_a_subgraph_name_the_whole_path() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    true = _sub(_hop(_top(doc), "cond"), 1)
    true["nodes"][0]["target"] = "torch.ops.aten.no_such_op.default"
    _expect(doc, r"node 'cond'.*subgraph 'true_graph_0'.*node 'add'", "unknown operator")


def test_subgraph_reading_a_name_of_the_enclosing_graph() -> None:
    """Subgraphs have their own names: a value of the enclosing graph is undefined there."""
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    true = _sub(_hop(_top(doc), "cond"), 1)
    true["nodes"][0]["inputs"][0]["arg"] = {"as_tensor": {"name": "x"}}
    true["inputs"][1]["as_tensor"]["name"] = "renamed"
    _expect(doc, "subgraph 'true_graph_0'", "'x' is used but never defined")


def test_wrong_node_output_count() -> None:
    doc = _doc(TwoOut(), torch.randn(3))
    _hop(_top(doc), "cond")["outputs"].append({"as_tensor": {"name": "extra"}})
    _expect(doc, r"node 'cond'", "cond returns 2 values here, the node lists 3 outputs")


def _nest(doc: Doc, levels: int) -> None:
    """Put ``levels`` more conds around the true branch's body."""
    template = copy.deepcopy(_hop(_top(doc), "cond"))
    node = _hop(_top(doc), "cond")
    for level in range(levels):
        true = _sub(node, 1)
        out = true["outputs"][0]["as_tensor"]["name"]
        inner = copy.deepcopy(template)
        inner["name"] = f"inner_{level}"
        inner["inputs"][0]["arg"] = {"as_tensor": {"name": true["inputs"][0]["as_tensor"]["name"]}}
        inner["inputs"][3]["arg"] = {"as_tensors": [a["as_tensor"] for a in true["inputs"]]}
        inner["outputs"] = [{"as_tensor": {"name": out}}]
        true["nodes"] = [inner]
        node = inner


def test_nested_conds_run() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    _nest(doc, 3)
    run = torchexec_proxy.ProxyRunner(load_plan_from_json(doc, {}, {}))
    x = torch.randn(3)
    (out,) = run(torch.tensor(True), x)
    assert torch.equal(out, x + 1)
    (out,) = run(torch.tensor(False), x)
    assert torch.equal(out, x - 1)


def test_excessive_nesting() -> None:
    doc = _doc(Branch(), torch.tensor(True), torch.randn(3))
    _nest(doc, 20)
    _expect(doc, r"node 'inner_15'", "nest more than 16 levels deep")


def test_while_loop_condition_returning_two_values() -> None:
    doc = _doc(Loop(), torch.randn(3))
    loop = _hop(_top(doc), "while_loop")
    cond = _sub(loop, 0)
    cond["outputs"].append(cond["outputs"][0])
    _expect(doc, r"node 'while_loop'", "condition 'while_loop_cond_graph_0' must return one")


def test_while_loop_body_returning_too_few_values() -> None:
    doc = _doc(Loop(), torch.randn(3))
    _sub(_hop(_top(doc), "while_loop"), 1)["outputs"].pop()
    _expect(
        doc, r"node 'while_loop'", "body 'while_loop_body_graph_0' returns 1 values, expected 2"
    )


def test_map_over_nothing() -> None:
    doc = _doc(Mapped(), torch.randn(4, 3))
    _hop(_top(doc), "map_impl")["inputs"][1]["arg"] = {"as_tensors": []}
    _expect(doc, r"node 'map_impl'", "at least one tensor to iterate over")


def test_scan_combine_returning_fewer_values_than_carried() -> None:
    doc = _doc(Scanned(), torch.randn(3), torch.randn(4, 3))
    node = _hop(_top(doc), "scan")
    node["inputs"][1]["arg"]["as_tensors"].append(node["inputs"][1]["arg"]["as_tensors"][0])
    _sub(node, 0)["inputs"].insert(0, {"as_tensor": {"name": "c2"}})
    _sub(node, 0)["outputs"] = _sub(node, 0)["outputs"][:1]
    _expect(doc, r"node 'scan'", "returns 1 values, fewer than the 2 carried values")


def test_scan_and_map_run_from_json() -> None:
    init, xs = torch.randn(3), torch.randn(4, 3)
    run = torchexec_proxy.ProxyRunner(load_plan_from_json(_doc(Scanned(), init, xs), {}, {}))
    ep = torch.export.export(Scanned(), (init, xs), strict=False)
    for got, want in zip(run(init, xs), ep.module()(init, xs), strict=True):
        assert torch.equal(got, want)
