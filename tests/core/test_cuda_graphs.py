"""``cuda_graphs=True``: capture on the first call, replay after; refusals; mutations.

The checks that need no GPU run everywhere; the rest are marked ``gpu`` and skip without CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from tests.conformance.support import installed_executors
from tests.core.subset_executor import SubsetExecutor

EXECUTORS = [e for e in installed_executors() if e in ("aten", "proxy", "torchbind")]


@pytest.fixture
def cuda() -> Iterator[torch.device]:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    yield torch.device("cuda")


def _chain(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for _ in range(10):
        x = torch.sin(x) * 0.5 + y
    return x.relu()


def test_bad_mode() -> None:
    with pytest.raises(torchexec.InvalidOptionsError, match="cuda_graphs must be"):
        torchexec.execute(lambda x: x + 1, torch.ones(2), cuda_graphs="yes")  # type: ignore[arg-type]


def test_executor_that_is_not_capture_safe_is_refused() -> None:
    ex = SubsetExecutor("unsafe", lambda node: True)
    assert not ex.capabilities.capture_safe
    with torchexec.register_executor(ex):
        with pytest.raises(torchexec.InvalidOptionsError, match=r"'unsafe'.*capture_safe=True"):
            torchexec.execute(lambda x: x + 1, torch.ones(2), executor="unsafe", cuda_graphs=True)
        with pytest.raises(torchexec.InvalidOptionsError, match="'unsafe'"):
            torchexec.execute(
                lambda x: x + 1, torch.ones(2), executor=["aten", "unsafe"], cuda_graphs=True
            )


def test_cpu_inputs_are_refused() -> None:
    with pytest.raises(torchexec.ProgramError, match="must be on a CUDA device, got cpu"):
        torchexec.execute(lambda x: x + 1, torch.ones(2), cuda_graphs=True)


def test_shipped_executors_are_capture_safe() -> None:
    for name in EXECUTORS:
        assert torchexec.get_executor(name).capabilities.capture_safe, name


@pytest.mark.gpu
@pytest.mark.parametrize("executor", EXECUTORS)
def test_replay_agrees_bit_for_bit_with_eager(cuda: torch.device, executor: str) -> None:
    x, y = torch.randn(16, device=cuda), torch.randn(16, device=cuda)
    gm = make_fx(_chain)(x, y)
    prepared = torchexec.prepare(gm, x, y, executor=executor, cuda_graphs=True)
    outs = []
    for _ in range(3):  # the first call captures, the others replay with new values
        a, b = torch.randn(16, device=cuda), torch.randn(16, device=cuda)
        out = prepared(a, b)
        assert torch.equal(out, gm(a, b))
        outs.append((out, gm(a, b)))
    for out, want in outs:  # fresh tensors: no later call overwrote an earlier result
        assert torch.equal(out, want)


@pytest.mark.gpu
def test_reuse_outputs_returns_the_graph_s_own_tensors(cuda: torch.device) -> None:
    x, y = torch.randn(16, device=cuda), torch.randn(16, device=cuda)
    gm = make_fx(_chain)(x, y)
    prepared = torchexec.prepare(gm, x, y, cuda_graphs="reuse_outputs")
    first = prepared(x, y)
    want_first = gm(x, y).clone()
    a = torch.randn(16, device=cuda)
    second = prepared(a, y)
    assert second.data_ptr() == first.data_ptr()  # documented: the next call overwrites it
    assert torch.equal(second, gm(a, y))
    assert not torch.equal(first, want_first)


@pytest.mark.gpu
@pytest.mark.parametrize("executor", EXECUTORS)
def test_mutations_apply_once_per_call(cuda: torch.device, executor: str) -> None:
    class Counter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.total: torch.Tensor
            self.register_buffer("total", torch.zeros(4, device=cuda))

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            self.total.add_(x)
            y.mul_(2)
            return self.total * y

    ref_model, model = Counter(), Counter()
    x, y = torch.randn(4, device=cuda), torch.randn(4, device=cuda)
    ep = torch.export.export(model, (x, y.clone()))
    prepared = torchexec.prepare(ep, x, y.clone(), executor=executor, cuda_graphs=True)
    y_ref, y_run = y.clone(), y.clone()
    for _ in range(3):
        want = ref_model(x, y_ref)
        got = prepared(x, y_run)
        assert torch.equal(got, want)
        assert torch.equal(y_run, y_ref)
    assert torch.equal(ep.state_dict["total"], ref_model.total)


@pytest.mark.gpu
def test_priority_lists_are_captured_too(cuda: torch.device) -> None:
    x, y = torch.randn(16, device=cuda), torch.randn(16, device=cuda)
    gm = make_fx(_chain)(x, y)

    class SafeSubset(SubsetExecutor):
        capabilities = torchexec.Capabilities(devices=("cpu", "cuda"), capture_safe=True)

    with torchexec.register_executor(SafeSubset("nosin", lambda n: "sin" not in str(n.target))):
        prepared = torchexec.prepare(gm, x, y, executor=["nosin", "proxy"], cuda_graphs=True)
    assert len(prepared.placement.partitions) > 2
    for _ in range(2):
        a = torch.randn(16, device=cuda)
        assert torch.equal(prepared(a, y), gm(a, y))


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: x * x.sum().item(), r"reads a value back to the host"),
        (lambda x: x[x > 0].sum(), r"has a data-dependent shape"),
        (lambda x: x + torch.ones(4).sum(), r"makes a CPU tensor"),
    ],
)
def test_what_cannot_be_captured_is_refused_naming_the_node(
    cuda: torch.device, fn: object, match: str
) -> None:
    x = torch.randn(4, device=cuda)
    with pytest.raises(torchexec.ProgramError, match=r"node '\w+' \(.*\) " + match):
        torchexec.execute(fn, x, cuda_graphs=True)


@pytest.mark.gpu
def test_torch_compile_backend_with_cuda_graphs(cuda: torch.device) -> None:
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Linear(8, 4))
    model = model.to(cuda).eval()
    compiled = torch.compile(
        model, backend="torchexec", options={"executor": "proxy", "cuda_graphs": True}
    )
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(5, 8, device=cuda)
            assert torch.equal(compiled(x), model(x))
    torch._dynamo.reset()


def test_torch_compile_backend_checks_the_cuda_graphs_option() -> None:
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda x: x.sin(), backend="torchexec", options={"cuda_graphs": "always"}
    )
    with pytest.raises(torchexec.InvalidOptionsError, match="cuda_graphs must be"):
        compiled(torch.randn(3))
    torch._dynamo.reset()


@pytest.mark.gpu
def test_the_shared_pool_outlives_its_graphs(cuda: torch.device) -> None:
    import gc

    x, y = torch.randn(16, device=cuda), torch.randn(16, device=cuda)
    gm = make_fx(_chain)(x, y)
    for _ in range(3):  # each graph is dropped before the next one is captured into the pool
        prepared = torchexec.prepare(gm, x, y, executor="proxy", cuda_graphs=True)
        assert torch.equal(prepared(x, y), gm(x, y))
        del prepared
        gc.collect()
