"""Functionalized custom operators (auto_functionalized, auto_functionalized_v2), effectful
operators (with_effects) and shared subgraphs (invoke_subgraph) on the proxy: bit for bit equal
to aten, with buffer and input mutations copied back alike."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch._export.serde.serialize import serialize
from torch._higher_order_ops.effects import _EffectType, _register_effectful_op

import torchexec
import torchexec_proxy
from torchexec_proxy import load_plan_from_json

from .conftest import assert_bitwise

T = torch.Tensor
NS = "torchexec_hops_test"
OPTIONS = {"allowed_namespaces": [NS]}


@torch.library.custom_op(f"{NS}::scale_shift_", mutates_args=("a", "b"))
def scale_shift_(a: T, b: T, x: T, k: float) -> T:
    """Mutates two arguments and returns a fresh tensor."""
    a.add_(x * k)
    b.mul_(2)
    return x + 1


@scale_shift_.register_fake
def _(a: T, b: T, x: T, k: float) -> T:
    return torch.empty_like(x)


@torch.library.custom_op(f"{NS}::logged", mutates_args=())
def logged(x: T) -> T:
    """An operator registered as having ordered side effects."""
    return x * 3


@logged.register_fake
def _(x: T) -> T:
    return torch.empty_like(x)


_register_effectful_op(torch.ops.torchexec_hops_test.logged.default, _EffectType.ORDERED)


class Mutating(nn.Module):
    """Mutates a buffer and a view (a slice) of a user input through the custom operator."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(3))

    def forward(self, a: T, x: T) -> Any:
        y = scale_shift_(self.buf, a[1:], x, 0.5)
        return y + self.buf


class Effects(nn.Module):
    def forward(self, x: T) -> Any:
        a = torch.ops.torchexec_hops_test.logged(x)
        b = torch.ops.torchexec_hops_test.logged(a + 1)
        return a + b


@torch.compiler.nested_compile_region
def block(x: T) -> T:
    return x.sin() * 2 + 1


class Repeated(nn.Module):
    def forward(self, x: T) -> Any:
        return block(block(x)) + block(x.cos())


def _functionalized(v2: bool) -> torch.export.ExportedProgram:
    ep = torch.export.export(Mutating(), (torch.randn(4), torch.randn(3)), strict=False)
    with torch._export.config.patch(enable_auto_functionalized_v2_for_export=v2):
        decomposed: torch.export.ExportedProgram = ep.run_decompositions()
    return decomposed


def _targets(ep: torch.export.ExportedProgram) -> list[str]:
    return [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]


def _compare(ep: torch.export.ExportedProgram, *args: T) -> None:
    """aten and proxy on copies of the program and the inputs: outputs, the mutated inputs
    and the buffers agree bit for bit."""
    ref_ep, prox_ep = copy.deepcopy(ep), copy.deepcopy(ep)
    ref_args = tuple(a.clone() for a in args)
    expected = torchexec.execute(ref_ep, *ref_args, executor="aten")
    actual = torchexec.execute(prox_ep, *args, executor="proxy", executor_parameters=OPTIONS)
    assert_bitwise(expected, actual)
    assert_bitwise(ref_args, args)
    assert_bitwise(dict(ref_ep.state_dict), dict(prox_ep.state_dict))


@pytest.mark.parametrize("v2", [True, False], ids=["v2", "v1"])
def test_auto_functionalized(v2: bool) -> None:
    ep = _functionalized(v2)
    hop = "auto_functionalized_v2" if v2 else "auto_functionalized"
    assert hop in _targets(ep)
    for _ in range(2):  # the second call sees the first call's buffer update
        _compare(ep, torch.randn(4), torch.randn(3))


def test_auto_functionalized_from_pt2(tmp_path: Path) -> None:
    path = tmp_path / "mutating.pt2"
    torch.export.save(_functionalized(True), path)
    a, x = torch.randn(4), torch.randn(3)
    ref_a = a.clone()
    expected = torchexec.execute(path, ref_a, x, executor="aten")
    actual = torchexec.execute(path, a, x, executor="proxy", executor_parameters=OPTIONS)
    assert_bitwise(expected, actual)
    assert_bitwise(ref_a, a)


def test_auto_functionalized_follows_the_allow_list() -> None:
    ep = _functionalized(True)
    with pytest.raises(torchexec.UnsupportedOperatorError, match="auto_functionalized_v2"):
        torchexec.prepare(ep, torch.randn(4), torch.randn(3), executor="proxy")
    with pytest.raises(torchexec.ProgramError, match=f"namespace '{NS}', which is not allowed"):
        torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))


def test_with_effects() -> None:
    ep = torch.export.export(Effects(), (torch.randn(3),), strict=False).run_decompositions()
    assert _targets(ep).count("with_effects") == 2
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep), allowed_namespaces=[NS])
    assert [e.kind for e in plan.state] == ["token"]
    assert len(plan.inputs) == 1 and len(plan.outputs) == 1  # the token is neither
    _compare(ep, torch.randn(3))


def test_invoke_subgraph_is_planned_once() -> None:
    x = torch.randn(3)
    ep = torch.export.export(Repeated(), (x,), strict=True)
    assert _targets(ep).count("invoke_subgraph") == 3
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    calls = [n for n in plan.nodes if n.kind == "hop"]
    assert [n.op for n in calls] == ["invoke_subgraph"] * 3
    assert calls[0].subplans[0] is calls[1].subplans[0] is calls[2].subplans[0]
    for args in ((x,), (torch.randn(3),)):
        assert_bitwise(
            torchexec.execute(ep, *args, executor="aten"),
            torchexec.execute(ep, *args, executor="proxy"),
        )


def test_invoke_subgraph_from_pt2(tmp_path: Path) -> None:
    x = torch.randn(3)
    path = tmp_path / "repeated.pt2"
    torch.export.save(torch.export.export(Repeated(), (x,), strict=True), path)
    assert_bitwise(
        torchexec.execute(path, x, executor="aten"), torchexec.execute(path, x, executor="proxy")
    )


# Bad programs


Doc = dict[str, Any]


@pytest.fixture
def v2_doc() -> Iterator[tuple[Doc, dict[str, Any]]]:
    ep = _functionalized(True)
    yield json.loads(serialize(ep).exported_program), dict(ep.state_dict)


def _hop_node(doc: Doc, hop: str) -> Doc:
    nodes: list[Doc] = doc["graph_module"]["graph"]["nodes"]
    return next(n for n in nodes if n["target"] == f"torch.ops.higher_order.{hop}")


def _expect(doc: Doc, weights: dict[str, Any], *parts: str) -> None:
    with pytest.raises(torchexec.ProgramError) as info:
        load_plan_from_json(doc, weights, {}, allowed_namespaces=[NS])
    for part in parts:
        assert part in str(info.value), str(info.value)


def test_unexpected_keyword(v2_doc: tuple[Doc, dict[str, Any]]) -> None:
    doc, weights = v2_doc
    node = _hop_node(doc, "auto_functionalized_v2")
    node["inputs"].append({"name": "_c_base_index", "arg": {"as_int": 0}, "kind": 2})
    _expect(doc, weights, "node 'auto_functionalized_v2'", "unexpected argument '_c_base_index'")


def test_base_index_out_of_range(v2_doc: tuple[Doc, dict[str, Any]]) -> None:
    doc, weights = v2_doc
    node = _hop_node(doc, "auto_functionalized_v2")
    index = next(i for i in node["inputs"] if i["name"] == "_b_base_index")
    index["arg"] = {"as_int": 7}
    _expect(doc, weights, "_b_base_index must index one of the 2 bases")


def test_missing_operator_argument(v2_doc: tuple[Doc, dict[str, Any]]) -> None:
    doc, weights = v2_doc
    node = _hop_node(doc, "auto_functionalized_v2")
    node["inputs"] = [i for i in node["inputs"] if i["name"] != "x"]
    _expect(doc, weights, "missing argument 'x'")


def test_operator_that_mutates_nothing(v2_doc: tuple[Doc, dict[str, Any]]) -> None:
    doc, weights = v2_doc
    _hop_node(doc, "auto_functionalized_v2")["inputs"][0]["arg"] = {
        "as_operator": "torch.ops.aten.add.Tensor"
    }
    _expect(doc, weights, "mutates none of its arguments")


def test_wrong_output_count(v2_doc: tuple[Doc, dict[str, Any]]) -> None:
    doc, weights = v2_doc
    _hop_node(doc, "auto_functionalized_v2")["outputs"].pop()
    _expect(doc, weights, "auto_functionalized_v2 returns 3 values here, the node lists 2")


def test_shared_subgraph_with_two_bodies() -> None:
    ep = torch.export.export(Repeated(), (torch.randn(3),), strict=True)
    doc = json.loads(serialize(ep).exported_program)
    nodes = doc["graph_module"]["graph"]["nodes"]
    last = [n for n in nodes if n["target"] == "torch.ops.higher_order.invoke_subgraph"][-1]
    body = last["inputs"][0]["arg"]["as_graph"]["graph"]
    body["nodes"][0]["target"] = "torch.ops.aten.cos.default"
    _expect(doc, {}, f"node {last['name']!r}", "was called before with another graph")
