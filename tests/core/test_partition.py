"""Partitioned execution: priority lists, claims, the stitched runner and the placement report."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.utils._pytree as pytree

import torchexec
from tests.core.subset_executor import SubsetExecutor, claims_all_but


@pytest.fixture
def no_relu() -> Iterator[SubsetExecutor]:
    """``norelu``: claims everything but aten::relu."""
    ex = SubsetExecutor("norelu", claims_all_but("aten::relu"))
    with torchexec.register_executor(ex):
        yield ex


class Model(torch.nn.Module):
    """Linear layer, a buffer and a user input mutated, a pytree of outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.count: torch.Tensor
        self.register_buffer("count", torch.zeros(4))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
        a = self.lin(x).relu()
        b = a * y
        self.count.add_(b.sum(0))
        y.mul_(2)
        top = a.max(dim=0)
        return {"out": b.sin().relu() + 1, "max": (top.values, top.indices)}


def _fresh(seed: int = 0) -> tuple[torch.export.ExportedProgram, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    m = Model()
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    return torch.export.export(m, (x, y.clone())), x, y


def _equal(a: object, b: object) -> bool:
    la, lb = pytree.tree_leaves(a), pytree.tree_leaves(b)
    return len(la) == len(lb) and all(torch.equal(p, q) for p, q in zip(la, lb, strict=True))


def test_nodes_run_on_the_first_executor_that_claims_them(no_relu: SubsetExecutor) -> None:
    ep_ref, x, y = _fresh()
    ep, _, _ = _fresh()
    y_ref, y_run = y.clone(), y.clone()
    ref = ep_ref.module()(x, y_ref)
    prepared = torchexec.prepare(ep, x, y_run.clone(), executor=["norelu", "aten"])
    out = prepared(x, y_run)
    assert _equal(out, ref)
    assert torch.equal(y_run, y_ref)  # user-input mutation applied once
    assert torch.equal(ep.state_dict["count"], ep_ref.state_dict["count"])  # buffer too
    # a second call mutates again, from the updated state
    ref2 = ep_ref.module()(x, y_ref)
    assert _equal(prepared(x, y_run), ref2)
    assert torch.equal(ep.state_dict["count"], ep_ref.state_dict["count"])

    placement = prepared.placement
    assert placement.counts() == {"norelu": 8, "aten": 2}
    assert [p.executor for p in placement.partitions].count("aten") == 2
    assert all(
        p.operators == {"aten::relu": 1} for p in placement.partitions if p.executor == "aten"
    )
    # each partition the subset executor prepared is a program of its own, without relu
    for program in no_relu.programs:
        ops = {str(n.target) for n in program.graph_module().graph.nodes}
        assert "aten.relu.default" not in ops
    text = str(placement)
    assert text.splitlines()[0].split() == ["EXECUTOR", "NODES", "PARTITIONS", "TOP", "OPERATORS"]
    assert "aten::relu x2" in text


def test_a_single_executor_refuses_what_it_does_not_claim(no_relu: SubsetExecutor) -> None:
    ep, x, y = _fresh()
    with pytest.raises(torchexec.UnsupportedOperatorError) as info:
        torchexec.execute(ep, x, y, executor="norelu")
    message = str(info.value)
    assert "aten::relu x2" in message
    assert "executor=['norelu', 'aten']" in message
    assert isinstance(info.value, torchexec.ProgramError)
    assert no_relu.programs == []  # refused before anything was prepared


def test_no_executor_in_the_list_claims_an_operator() -> None:
    a = SubsetExecutor("a", claims_all_but("aten::relu", "aten::sin"))
    b = SubsetExecutor("b", claims_all_but("aten::relu"))
    with torchexec.register_executor(a), torchexec.register_executor(b):
        ep, x, y = _fresh()
        with pytest.raises(torchexec.UnsupportedOperatorError, match=r"aten::relu x2\. End"):
            torchexec.prepare(ep, x, y, executor=["a", "b"])
        prepared = torchexec.prepare(ep, x, y.clone(), executor=["a", "b", "aten"])
    assert prepared.placement.counts() == {"a": 7, "b": 1, "aten": 2}


def test_first_executor_claiming_everything_prepares_the_whole_program(
    no_relu: SubsetExecutor,
) -> None:
    gm = torch.export.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),))
    x = torch.randn(1, 3)
    prepared = torchexec.prepare(gm, x, executor=["norelu", "aten"])
    assert len(no_relu.programs) == 1 and no_relu.programs[0] is prepared.program
    assert prepared.placement.counts() == {"norelu": 1, "aten": 0}
    assert len(prepared.placement.partitions) == 1
    assert torch.equal(prepared(x), gm.module()(x))


def test_per_executor_options(no_relu: SubsetExecutor) -> None:
    ep, x, y = _fresh()
    torchexec.prepare(
        ep, x, y, executor=["norelu", "aten"], executor_parameters={"norelu": {"tag": "t"}}
    )
    assert set(no_relu.tags) == {"t"}
    with pytest.raises(torchexec.InvalidOptionsError, match="not in the priority list"):
        torchexec.prepare(ep, x, y, executor=["norelu", "aten"], executor_parameters={"proxy": {}})
    with pytest.raises(torchexec.InvalidOptionsError, match="has no option 'tga'"):
        torchexec.prepare(
            ep, x, y, executor=["norelu", "aten"], executor_parameters={"norelu": {"tga": "t"}}
        )
    with pytest.raises(torchexec.InvalidOptionsError, match=r"executor_parameters\['norelu'\]"):
        torchexec.prepare(ep, x, y, executor=["norelu", "aten"], executor_parameters={"norelu": 3})


@pytest.mark.parametrize(
    ("executor", "match"),
    [
        ([], "empty list"),
        (["aten", "aten"], "appears twice"),
        (["aten", 3], "must be executor names"),
        (7, "must be a name or a list of names"),
    ],
)
def test_bad_executor_lists(executor: object, match: str) -> None:
    with pytest.raises(torchexec.InvalidOptionsError, match=match):
        torchexec.execute(lambda x: x + 1, torch.ones(1), executor=executor)  # type: ignore[arg-type]


def test_unknown_name_in_a_list() -> None:
    with pytest.raises(torchexec.ExecutorNotFoundError, match="prxy"):
        torchexec.execute(lambda x: x + 1, torch.ones(1), executor=["prxy", "aten"])


def test_symbolic_sizes_cross_a_boundary() -> None:
    def claim(node: torch.fx.Node) -> bool:  # sizes are computed on aten, the view elsewhere
        return "sym_size" not in str(node.target)

    class Flatten(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.cos().reshape(x.shape[0], -1) * 2).sum(1)

    batch = torch.export.Dim("batch", min=2)
    x = torch.randn(3, 2, 5)
    ep = torch.export.export(Flatten(), (x,), dynamic_shapes=({0: batch},))
    with torchexec.register_executor(SubsetExecutor("nosizes", claim)):
        for n in (3, 6):
            xn = torch.randn(n, 2, 5)
            prepared = torchexec.prepare(ep, xn, executor=["nosizes", "aten"])
            assert prepared.placement.counts()["aten"] >= 1
            assert torch.equal(prepared(xn), Flatten()(xn))


def test_pt2_path_and_logging(
    no_relu: SubsetExecutor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(2, 4)
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(m, (x,)), path)
    with caplog.at_level(logging.INFO, logger="torchexec"):
        out = torchexec.execute(str(path), x, executor=["norelu", "aten"])
    assert torch.equal(out, m(x))
    lines = [r.getMessage() for r in caplog.records if r.name == "torchexec"]
    assert len(lines) == 1 and "runs 2 of 3 operator nodes on 'norelu'" in lines[0]
    assert "aten (1: aten::relu x1)" in lines[0]


def test_torchbind_objects_in_partitions() -> None:
    testing = pytest.importorskip("torchexec_torchbind.testing")
    testing.load()

    class WithScale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = testing.scale(torch.tensor([2.0, 3.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.scale.apply(x.relu()).sin()
            return out

    m = WithScale()
    x = torch.randn(2)
    ep = torch.export.export(m, (x,), strict=False)
    with torchexec.register_executor(SubsetExecutor("norelu", claims_all_but("aten::relu"))) as _:
        prepared = torchexec.prepare(ep, x, executor=["norelu", "aten"])
    assert prepared.placement.counts() == {"norelu": 2, "aten": 1}
    assert torch.equal(prepared(x), (x.relu() * torch.tensor([2.0, 3.0])).sin())


def test_traced_functions_take_a_priority_list(no_relu: SubsetExecutor) -> None:
    traced = torchexec.make_traced(lambda x: x.relu().exp())
    x = torch.randn(5)
    assert torch.equal(traced(x, executor=["norelu", "aten"]), x.relu().exp())
    assert len(no_relu.programs) == 1  # exp; relu ran on aten


def test_errors_in_a_partition_name_the_executor_and_partition(no_relu: SubsetExecutor) -> None:
    calls = 0

    def failing(*args: object) -> list[object]:
        nonlocal calls
        calls += 1
        raise RuntimeError("device lost")

    no_relu.prepare = lambda program, options: failing  # type: ignore[method-assign]
    ep, x, y = _fresh()
    prepared = torchexec.prepare(ep, x, y, executor=["norelu", "aten"])
    with pytest.raises(
        torchexec.ExecutorError, match=r"executor 'norelu', running partition .*device lost"
    ):
        prepared(x, y)


def test_explain_prepares_nothing_and_the_cli_prints_the_table(
    no_relu: SubsetExecutor, tmp_path: Path
) -> None:
    import io
    import json

    from torchexec._cli import main

    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(2, 4)
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(m, (x,)), path)
    placement = torchexec.explain(path, executor=["norelu", "aten"])
    assert placement.counts() == {"norelu": 2, "aten": 1}
    assert [p.executor for p in placement.partitions] == ["norelu", "aten", "norelu"]
    assert no_relu.programs == []

    out = io.StringIO()
    assert main(["explain", str(path), "--executor", "norelu,aten"], out=out) == 0
    text = out.getvalue()
    assert "aten::relu x1" in text and "PARTITION" in text
    out = io.StringIO()
    assert main(["explain", str(path), "--executor", "norelu,aten", "--json"], out=out) == 0
    assert json.loads(out.getvalue())["counts"] == {"norelu": 2, "aten": 1}

    out = io.StringIO()
    assert main(["run", str(path), "--executor", "norelu,aten", "--repeat", "2"], out=out) == 0
    assert "executor  norelu,aten" in out.getvalue()


@pytest.mark.gpu
def test_cuda_tensors_cross_boundaries(no_relu: SubsetExecutor) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    model = Model().cuda()
    x, y = torch.randn(3, 4, device="cuda"), torch.randn(3, 4, device="cuda")
    ep_ref = torch.export.export(copy.deepcopy(model), (x, y.clone()))
    ep = torch.export.export(model, (x, y.clone()))
    y_ref, y_run = y.clone(), y.clone()
    want = torchexec.prepare(ep_ref, x, y_ref.clone(), executor="aten")(x, y_ref)
    prepared = torchexec.prepare(ep, x, y_run.clone(), executor=["norelu", "aten"])
    got = prepared(x, y_run)
    assert len(prepared.placement.partitions) >= 3
    assert _equal(got, want) and torch.equal(y_run, y_ref)
    assert all(t.device.type == "cuda" for t in pytree.tree_leaves(got))
