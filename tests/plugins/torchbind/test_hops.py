"""Higher-order operators on the torchbind executor: cond, while_loop, map, scan and
invoke_subgraph run in the engine (each subgraph a child engine), bit for bit equal to aten;
the functionalized and effectful ones are declared unsupported and refused at load, naming them.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy
from tests.hop_programs import CASES, Loop
from torchexec_torchbind import encode_plan

from .conftest import engine_of

pytestmark = pytest.mark.usefixtures("engine_lib")

T = torch.Tensor


def _export(module: nn.Module, *args: T, strict: bool = False) -> torch.export.ExportedProgram:
    return torch.export.export(module, args, strict=strict)


def _same(expected: Any, actual: Any) -> None:
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    actual = [actual] if isinstance(actual, torch.Tensor) else list(actual)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual, strict=True):
        assert e.dtype == a.dtype and torch.equal(e, a)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_aten(case: str) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    ep = _export(make(), *inputs())
    run = torchexec.prepare(ep, *inputs(), executor="torchbind")
    for _ in range(2):
        args = inputs()
        _same(torchexec.execute(ep, *args, executor="aten"), run(*args))


@pytest.mark.parametrize("case", ["cond_true", "while_loop", "scan", "nested"])
def test_from_pt2(case: str, tmp_path: Path) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    args = inputs()
    path = tmp_path / f"{case}.pt2"
    torch.export.save(_export(make(), *args), path)
    _same(
        torchexec.execute(path, *args, executor="aten"),
        torchexec.execute(path, *args, executor="torchbind"),
    )


def test_subgraphs_are_child_engines_and_pickle() -> None:
    make, inputs = CASES["nested"]
    torch.manual_seed(0)
    args = inputs()
    ep = _export(make(), *args)
    run = torchexec.prepare(ep, *args, executor="torchbind")
    engine = engine_of(run)
    assert "higher_order::map" in engine.operators() and "higher_order::cond" in engine.operators()
    expected = engine.run(list(args))
    _same(expected, pickle.loads(pickle.dumps(engine)).run(list(args)))
    buf = io.BytesIO()
    torch.save(engine, buf)
    buf.seek(0)
    _same(expected, torch.load(buf, weights_only=False).run(list(args)))


@torch.compiler.nested_compile_region
def _block(x: T) -> T:
    return x.sin() * 2 + 1


class Repeated(nn.Module):
    def forward(self, x: T) -> Any:
        return _block(_block(x)) + _block(x.cos())


def test_invoke_subgraph_builds_one_child_engine() -> None:
    x = torch.randn(3)
    ep = _export(Repeated(), x, strict=True)
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    encoded = encode_plan(plan, allowed_namespaces=["aten"])
    children = {
        id(row[5])
        for node in encoded[6]
        if node[1] == "hop"
        for row in node[4]
        if row[1] == "engine"
    }
    assert len(children) == 1
    _same(torchexec.execute(ep, x, executor="aten"), torchexec.execute(ep, x, executor="torchbind"))


def test_max_loop_iterations() -> None:
    args = (torch.randn(4), torch.randn(4))
    ep = _export(Loop(), *args)  # five iterations
    opts = {"max_loop_iterations": 5}
    run = torchexec.prepare(ep, *args, executor="torchbind", executor_parameters=opts)
    _same(torchexec.execute(ep, *args, executor="aten"), run(*args))
    opts = {"max_loop_iterations": 4}
    run = torchexec.prepare(ep, *args, executor="torchbind", executor_parameters=opts)
    with pytest.raises(RuntimeError, match=r"ran 4 iterations without ending"):
        run(*args)


@torch.library.custom_op("torchexec_hops_engine_test::bump_", mutates_args=("a",))
def bump_(a: T, x: T) -> T:
    a.add_(x)
    return x * 2


@bump_.register_fake
def _(a: T, x: T) -> T:
    return torch.empty_like(x)


class Mutating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.zeros(3))

    def forward(self, x: T) -> Any:
        return bump_(self.buf, x) + self.buf


def _functionalized() -> torch.export.ExportedProgram:
    ep: torch.export.ExportedProgram = _export(Mutating(), torch.randn(3)).run_decompositions()
    return ep


def test_capabilities_list_what_the_engine_does_not_run() -> None:
    infos = {i.name: i for i in torchexec.list_executors()}
    caps = infos["torchbind"].capabilities
    assert caps is not None
    assert {"higher_order::auto_functionalized", "higher_order::auto_functionalized_v2",
            "higher_order::with_effects"} <= caps.unsupported_ops  # fmt: skip
    assert "higher_order::cond" not in caps.unsupported_ops


def test_functionalized_operators_are_refused_naming_them() -> None:
    ep = _functionalized()
    opts = {"allowed_namespaces": ["torchexec_hops_engine_test"]}
    x = torch.randn(3)
    with pytest.raises(torchexec.UnsupportedOperatorError, match="auto_functionalized_v2"):
        torchexec.prepare(ep, x, executor="torchbind", executor_parameters=opts)
    plan = torchexec_proxy.load_plan(
        torchexec.Program.from_exported(ep), allowed_namespaces=opts["allowed_namespaces"]
    )
    with pytest.raises(torchexec.ProgramError, match=r"does not run the higher-order operator "
                       "'auto_functionalized_v2'"):  # fmt: skip
        encode_plan(plan, allowed_namespaces=["aten", "torchexec_hops_engine_test"])


def test_priority_list_runs_them_on_the_proxy() -> None:
    ep = _functionalized()
    opts = {"allowed_namespaces": ["torchexec_hops_engine_test"]}
    ref_ep = _functionalized()
    x = torch.randn(3)
    run = torchexec.prepare(
        ep,
        x,
        executor=["torchbind", "proxy"],
        executor_parameters={"torchbind": opts, "proxy": opts},
    )
    assert run.placement.operators("proxy") == {"higher_order::auto_functionalized_v2": 1}
    for _ in range(2):
        _same(torchexec.execute(ref_ep, x, executor="aten"), run(x))
    assert torch.equal(ep.state_dict["buf"], ref_ep.state_dict["buf"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", sorted(CASES))
def test_on_cuda(case: str) -> None:
    make, inputs = CASES[case]
    torch.manual_seed(0)
    args = tuple(a.cuda() for a in inputs())
    ep = _export(make().cuda(), *args)
    _same(
        torchexec.execute(ep, *args, executor="aten"),
        torchexec.execute(ep, *args, executor="torchbind"),
    )
