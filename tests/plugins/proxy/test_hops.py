"""Higher-order operators with subgraphs (cond, while_loop, map, scan) on the proxy: bit for bit
equal to aten, in memory and from ``.pt2``, with dynamic shapes inside subgraphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.export import Dim

import torchexec
import torchexec_proxy
from tests.hop_programs import CASES, Cond, Loop, Mapped, Nested, Scanned, ShapeCond
from torchexec_proxy.claims import supports_node
from torchexec_proxy.plan import HOP_LAYOUTS, PlanNode, SubPlan

from .conftest import assert_bitwise

T = torch.Tensor
cond: Any = torch.cond  # untyped for mypy: its stub does not describe pytrees


def _export(module: nn.Module, args: tuple[T, ...], **kw: Any) -> torch.export.ExportedProgram:
    return torch.export.export(module, args, strict=False, **kw)


def _runner(ep: torch.export.ExportedProgram) -> torchexec_proxy.ProxyRunner:
    """A runner of the program's plan, called with flat inputs of any shape the program
    accepts (``torchexec.prepare`` fixes the shapes of its example inputs)."""
    return torchexec_proxy.ProxyRunner(
        torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_aten(case: str) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    ep = _export(make(), inputs())
    for _ in range(2):
        args = inputs()
        expected = torchexec.execute(ep, *args, executor="aten")
        assert_bitwise(expected, torchexec.execute(ep, *args, executor="proxy"))


@pytest.mark.parametrize("case", ["cond_true", "while_loop", "map", "scan", "nested"])
def test_from_pt2(case: str, tmp_path: Path) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    args = inputs()
    path = tmp_path / f"{case}.pt2"
    torch.export.save(_export(make(), args), path)
    expected = torchexec.execute(path, *args, executor="aten")
    assert_bitwise(expected, torchexec.execute(path, *args, executor="proxy"))


def test_both_branches_from_one_preparation() -> None:
    torch.manual_seed(0)
    ep = _export(Cond(), (torch.ones(3), torch.ones(3)))
    run = torchexec.prepare(ep, torch.ones(3), torch.ones(3), executor="proxy")
    ref = torchexec.prepare(ep, torch.ones(3), torch.ones(3), executor="aten")
    for sign in (1.0, -1.0, 1.0):
        args = (torch.full((3,), sign), torch.randn(3))
        assert_bitwise(ref(*args), run(*args))


def test_symbool_predicate_and_dynamic_shapes_in_subgraphs() -> None:
    x = torch.randn(6, 3)
    ep = _export(ShapeCond(), (x,), dynamic_shapes=({0: Dim("n", min=2, max=64)},))
    (cond,) = [n for n in ep.graph.nodes if "cond" in str(n.target)]
    assert not isinstance(cond.args[0].meta["val"], torch.Tensor)  # a SymBool
    run = _runner(ep)
    for n in (2, 4, 5, 9):
        x = torch.randn(n, 3)
        assert_bitwise([ep.module()(x)], run(x))


def test_dynamic_leading_dimension_of_map_and_scan() -> None:
    n = Dim("n", min=2, max=64)
    args = (torch.randn(5, 3), torch.randn(5, 3), torch.randn(3))
    ep = _export(Mapped(), args, dynamic_shapes=({0: n}, {0: n}, None))
    run = _runner(ep)
    for rows in (2, 7):
        new = (torch.randn(rows, 3), torch.randn(rows, 3), torch.randn(3))
        assert_bitwise(list(ep.module()(*new)), run(*new))
    sargs = (torch.randn(3), torch.randn(6, 3), torch.randn(6, 3), torch.randn(3))
    ep = _export(Scanned(), sargs, dynamic_shapes=(None, {0: n}, {0: n}, None))
    run = _runner(ep)
    for rows in (2, 11):
        snew = (torch.randn(3), torch.randn(rows, 3), torch.randn(rows, 3), torch.randn(3))
        assert_bitwise(list(ep.module()(*snew)), run(*snew))


def test_each_subgraph_is_planned_once_with_its_own_slots() -> None:
    torch.manual_seed(0)
    ep = _export(Nested(), (torch.randn(4, 3), torch.tensor(2)))
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    hops = [n for n in plan.nodes if n.kind == "hop"]
    assert [n.op for n in hops] == ["map", "cond"]
    assert all(n.op in HOP_LAYOUTS for n in hops)
    (body,) = hops[0].subplans
    assert isinstance(body, SubPlan) and body.num_slots >= 1
    inner = [n for n in body.nodes if n.kind == "hop"]
    assert [n.op for n in inner] == ["cond"] and len(inner[0].subplans) == 2
    loop_branch = hops[1].subplans[0]
    assert [n.op for n in loop_branch.nodes if isinstance(n, PlanNode) and n.kind == "hop"] == [
        "while_loop"
    ]


def test_while_loop_that_never_runs_returns_copies() -> None:
    ep = _export(Loop(), (torch.randn(4), torch.randn(4)))
    doc_ep = ep  # the counter starts at 0 < 5; a carried copy is only made when it never runs
    run = torchexec.prepare(doc_ep, torch.randn(4), torch.randn(4), executor="proxy")
    x = torch.randn(4)
    i, acc, _ = run(x, torch.zeros(4))
    assert int(i) == 5 and acc.data_ptr() != x.data_ptr()


def test_claims() -> None:
    ep = _export(Nested(), (torch.randn(4, 3), torch.tensor(2)))
    hops = [n for n in ep.graph.nodes if isinstance(n.target, torch._ops.HigherOrderOperator)]
    assert hops and all(supports_node(n) for n in hops)
    assert not any(supports_node(n, higher_order=()) for n in hops)


@torch.library.custom_op("torchexec_hops_test::twice", mutates_args=())
def twice(x: T) -> T:
    """An operator outside the proxy's default allow-list."""
    return x * 2


@twice.register_fake
def _(x: T) -> T:
    return torch.empty_like(x)


class WithCustomOpInBranch(nn.Module):
    def forward(self, x: T) -> Any:
        return cond(x.sum() > 0, twice, lambda x: x - 1, (x,))


def test_subgraph_operators_follow_the_allow_list() -> None:
    ep = _export(WithCustomOpInBranch(), (torch.ones(3),))
    (cond,) = [n for n in ep.graph.nodes if isinstance(n.target, torch._ops.HigherOrderOperator)]
    assert not supports_node(cond)
    assert supports_node(cond, ["torchexec_hops_test"])
    x = torch.ones(3)
    with pytest.raises(torchexec.UnsupportedOperatorError, match="higher_order::cond"):
        torchexec.prepare(ep, x, executor="proxy")
    with pytest.raises(torchexec.ProgramError, match=r"node 'twice'.*torchexec_hops_test"):
        torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    opts = {"allowed_namespaces": ["torchexec_hops_test"]}
    run = torchexec.prepare(ep, x, executor="proxy", executor_parameters=opts)
    assert_bitwise(torchexec.execute(ep, x, executor="aten"), run(x))


def test_partitioned_with_a_subgraph_claimed_elsewhere() -> None:
    """The HOP and its subgraphs stay together on the executor that claims all of it."""

    class Model(nn.Module):
        def forward(self, x: T) -> Any:
            y = WithCustomOpInBranch()(x.cos())
            return y + 1

    x = torch.ones(3)
    ep = _export(Model(), (x,))
    run = torchexec.prepare(ep, x, executor=["proxy", "aten"])
    placement = run.placement
    assert "higher_order::cond" in placement.operators("aten")
    assert_bitwise(torchexec.execute(ep, x, executor="aten"), run(x))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", sorted(CASES))
def test_on_cuda(case: str) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    args = tuple(a.cuda() for a in inputs())
    ep = _export(make().cuda(), args)
    expected = torchexec.execute(ep, *args, executor="aten")
    actual = torchexec.execute(ep, *args, executor="proxy")
    assert_bitwise(expected, actual)


def test_max_loop_iterations() -> None:
    args = (torch.randn(4), torch.randn(4))
    ep = _export(Loop(), args)  # five iterations
    bounded = torchexec.prepare(ep, *args, executor="proxy",
                                executor_parameters={"max_loop_iterations": 5})  # fmt: skip
    assert_bitwise(torchexec.execute(ep, *args, executor="aten"), bounded(*args))
    too_few = torchexec.prepare(ep, *args, executor="proxy",
                                executor_parameters={"max_loop_iterations": 4})  # fmt: skip
    with pytest.raises(torchexec_proxy.LoopLimitError, match=r"'while_loop'.*ran 4 iterations"):
        too_few(*args)
    for bad in (0, True, 2.5):
        with pytest.raises(torchexec.InvalidOptionsError, match="max_loop_iterations"):
            torchexec.prepare(ep, *args, executor="proxy",
                              executor_parameters={"max_loop_iterations": bad})  # fmt: skip
