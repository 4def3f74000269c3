"""The runner cache never serves a stale program: in-place graph edits, traced functions."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from tests.conformance.support import installed_executors

EXECUTORS = installed_executors()


def _edit_add_to_mul(gm: torch.fx.GraphModule) -> None:
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.add.Tensor:
            node.target = torch.ops.aten.mul.Tensor
    gm.recompile()


@pytest.mark.parametrize("executor", EXECUTORS)
def test_graph_edited_in_place_and_recompiled_is_prepared_again(executor: str) -> None:
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    gm = make_fx(lambda x, y: (x + y).relu())(a, b)
    assert torch.equal(torchexec.execute(gm, a, b, executor=executor), (a + b).relu())
    _edit_add_to_mul(gm)
    assert torch.equal(torchexec.execute(gm, a, b, executor=executor), (a * b).relu())
    # The new graph is cached in turn: a second call is a hit and still right.
    hits = torchexec.cache_info().hits
    assert torch.equal(torchexec.execute(gm, a, b, executor=executor), (a * b).relu())
    assert torchexec.cache_info().hits == hits + 1


def test_traced_graph_module_edited_in_place_is_traced_again() -> None:
    a = torch.randn(5)
    gm = make_fx(lambda x: x + x)(a)
    traced = torchexec.make_traced(gm)
    assert torch.equal(traced(a), a + a)
    _edit_add_to_mul(gm)
    assert torch.equal(traced(a), a * a)


def test_traced_cache_info_counts_its_own_calls() -> None:
    first = torchexec.make_traced(lambda x: x.cos())
    second = torchexec.make_traced(lambda x: x.sin())
    x2, x3 = torch.zeros(2), torch.zeros(3)
    first(x2)
    first(x2)
    first(x3)
    second(x2)
    info = first.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)
    assert info.maxsize == torchexec.cache_info().maxsize
    assert (second.cache_info().hits, second.cache_info().misses) == (0, 1)
    assert torchexec.cache_info().currsize == 3

    first.cache_clear()
    assert tuple(first.cache_info())[:2] == (0, 0) and first.cache_info().currsize == 0
    assert second.cache_info().currsize == 1  # the other function's entry stays
    assert torch.equal(first(x2), x2.cos())
    assert first.cache_info().misses == 1


def test_priority_list_and_tuple_share_an_entry() -> None:
    gm = make_fx(lambda x: x.exp())(torch.ones(2))
    x = torch.ones(2)
    torchexec.execute(gm, x, executor=["aten"])
    torchexec.execute(gm, x, executor=("aten",))
    assert torchexec.cache_info().hits == 1
