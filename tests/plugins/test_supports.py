"""``Executor.supports``: which nodes of an ATen graph each shipped executor claims."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import pytest
import torch

import torchexec

LOADER_EXECUTORS = ("proxy", "torchbind")


def _graph() -> tuple[torch.fx.Graph, dict[str, bool]]:
    """A graph with one node of each kind, and whether the proxy's loader claims each node."""
    g = torch.fx.Graph()
    x = g.placeholder("x")
    obj = g.placeholder("obj")
    sin = g.call_function(torch.ops.aten.sin.default, (x,))
    mx = g.call_function(torch.ops.aten.max.dim, (sin, 0))
    first = g.call_function(operator.getitem, (mx, 0))
    size = g.call_function(torch.ops.aten.sym_size.int, (x, 0))
    twice = g.call_function(operator.mul, (size, 2))
    conv = g.call_function(torch.ops.prims.convert_element_type.default, (first, torch.float64))
    method = g.call_function(torch.ops.higher_order.call_torchbind, (obj, "apply", x))
    reduced = g.call_function(torch.ops._c10d_functional.all_reduce.default, (x, "sum", "0"))
    profiled = g.call_function(torch.ops.profiler._record_function_enter_new.default, ("f", None))
    cond = g.call_function(torch.ops.higher_order.cond, (True, x, x, (x,)))
    branch = g.call_function(operator.getitem, (cond, 0))
    matmul = g.call_function(operator.matmul, (x, x))
    g.output((first, twice, conv, method, reduced, profiled, branch, matmul))
    claims = {
        sin.name: True,
        mx.name: True,
        first.name: True,  # getitem of a claimed node
        size.name: True,
        twice.name: True,  # SymInt arithmetic
        conv.name: True,  # prims
        method.name: True,  # a TorchBind method call
        reduced.name: True,  # a functional collective
        profiled.name: False,  # a namespace outside the default allow-list
        cond.name: True,  # a higher-order operator both loaders run (issue #19)
        branch.name: True,  # getitem of a claimed node
        matmul.name: False,  # a Python function that is not SymInt arithmetic
    }
    return g, claims


@pytest.mark.parametrize("name", LOADER_EXECUTORS)
def test_loader_executors_claim_the_default_allow_list(name: str) -> None:
    executor: Any = torchexec.get_executor(name)
    defaults = executor.validate_options(None)
    graph, claims = _graph()
    got = {n.name: executor.supports(n, defaults) for n in graph.nodes if n.op == "call_function"}
    assert got == claims
    assert not any(executor.supports(n, defaults) for n in graph.nodes if n.op != "call_function")


@pytest.mark.parametrize("name", LOADER_EXECUTORS)
def test_allowed_namespaces_widen_the_claims(name: str) -> None:
    executor: Any = torchexec.get_executor(name)
    options = executor.validate_options({"allowed_namespaces": ["profiler"]})
    graph, claims = _graph()
    got = {n.name: executor.supports(n, options) for n in graph.nodes if n.op == "call_function"}
    reduced = [
        n.name
        for n in graph.nodes
        if n.op == "call_function" and str(n.target).startswith("profiler")
    ]
    assert reduced and all(got[r] for r in reduced)
    assert {k: v for k, v in got.items() if k not in reduced} == {
        k: v for k, v in claims.items() if k not in reduced
    }


def test_aten_claims_every_node() -> None:
    executor: Any = torchexec.get_executor("aten")
    graph, _ = _graph()
    assert all(executor.supports(n, {}) for n in graph.nodes)


class _Dynamic(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = torch.max(x.sin(), 0)
        return values * x.shape[0], indices


@pytest.mark.parametrize("name", LOADER_EXECUTORS)
def test_claims_every_node_of_a_program_it_runs(name: str) -> None:
    """On a program with a multi-output operator and symbolic sizes, every operator node is
    claimed, and the executor runs the program as the reference does."""
    x = torch.randn(5, 3)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(_Dynamic(), (x,), dynamic_shapes=({0: batch},), strict=False)
    program = torchexec.normalize(ep, (x,))
    nodes = [n for n in program.graph_module().graph.nodes if n.op == "call_function"]
    targets = {n.target for n in nodes}
    assert operator.getitem in targets and torch.ops.aten.sym_size.int in targets
    executor: Any = torchexec.get_executor(name)
    assert all(executor.supports(n, executor.validate_options(None)) for n in nodes)
    y = torch.randn(7, 3)
    got = torchexec.execute(program, y, executor=name)
    want = _Dynamic()(y)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_an_executor_without_supports_is_still_an_executor() -> None:
    """``supports`` is optional: the protocol check accepts an executor that lacks it."""

    class Minimal:
        name = "minimal"
        description = "no supports method"
        capabilities = torchexec.Capabilities()

        def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
            return torchexec.validate_options(self.name, (), options)

        def prepare(self, program: torchexec.Program, options: Mapping[str, object]) -> Any:
            return lambda *args: []

    assert isinstance(Minimal(), torchexec.Executor)
    assert not hasattr(Minimal(), "supports")
