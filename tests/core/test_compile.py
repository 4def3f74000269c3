"""The ``torchexec`` backend of ``torch.compile``: inference, training, dynamic shapes, graph
breaks, custom executors, priority lists and errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch._dynamo

import torchexec
from tests.core.subset_executor import SubsetExecutor, claims_all_but

BITWISE = ("aten", "proxy", "torchbind")
"""Shipped executors that call the same ATen kernels as eager PyTorch."""

WITHIN_TOLERANCE = ("onnxruntime",)
"""Installed by other distributions; compared within tolerance. (inductor is left out here:
compiling an AOTInductor package takes about 45 s on a cold cache.)"""


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    """Every test compiles from scratch and leaves no compiled code behind."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def recorder() -> Iterator[SubsetExecutor]:
    """``recorder``: claims every operator, runs on aten and records the programs it prepares."""
    ex = SubsetExecutor("recorder", lambda node: True)
    with torchexec.register_executor(ex):
        yield ex


def _installed(name: str) -> None:
    if name not in {
        i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")
    }:
        pytest.skip(f"executor {name!r} is not installed")


class Net(torch.nn.Module):
    """A linear layer, batch norm (buffers updated in training), ReLU and a second layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.bn = torch.nn.BatchNorm1d(16)
        self.fc2 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(torch.relu(self.bn(self.fc1(x))))
        return out


def _net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net()


def _compiled(
    model: Callable[..., Any],
    executor: object,
    *,
    dynamic: bool | None = None,
    params: dict[str, object] | None = None,
) -> Callable[..., Any]:
    options: dict[str, Any] = {"executor": executor}
    if params is not None:
        options["executor_parameters"] = params
    return torch.compile(model, backend="torchexec", options=options, dynamic=dynamic)


def _roles(ex: SubsetExecutor) -> list[str]:
    """``forward``, ``backward`` or ``inference`` for each program ``ex`` prepared."""
    return [p.name.rsplit(" ", 1)[-1] for p in ex.programs]


@pytest.mark.parametrize("executor", [*BITWISE, *WITHIN_TOLERANCE])
def test_inference_matches_eager(executor: str) -> None:
    _installed(executor)
    model = _net().eval()
    compiled = _compiled(model, executor)
    x = torch.randn(6, 8)
    with torch.no_grad():
        got, want = compiled(x), model(x)
    if executor in BITWISE:
        assert torch.equal(got, want)
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _train(model: Net, step: Callable[[torch.Tensor], torch.Tensor], steps: int) -> list[Any]:
    """``steps`` SGD steps on a fixed batch stream; the gradients of every step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    grads: list[Any] = []
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(8, 8, generator=gen), torch.randn(8, 4, generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(step(x), y)
        torch.autograd.backward(loss)
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
        opt.step()
    return grads


@pytest.mark.parametrize("executor", BITWISE)
def test_training_matches_eager_bit_for_bit(executor: str) -> None:
    eager, model = _net(), _net()
    want = _train(eager, eager, steps=3)
    got = _train(model, _compiled(model, executor), steps=3)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w) == 6
        assert all(torch.equal(a, b) for a, b in zip(g, w, strict=True))
    for p, q in zip(model.state_dict().values(), eager.state_dict().values(), strict=True):
        assert torch.equal(p, q)  # parameters and batch-norm statistics


def test_options_may_be_left_out() -> None:
    model = _net().eval()
    x = torch.randn(6, 8)
    with torch.no_grad():
        assert torch.equal(torch.compile(model, backend="torchexec")(x), model(x))


def test_training_runs_forward_and_backward_on_the_executor(recorder: SubsetExecutor) -> None:
    model = _net()
    _train(model, _compiled(model, "recorder"), steps=2)
    assert sorted(_roles(recorder)) == ["backward", "forward"]


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_inference_prepares_the_forward_only(
    recorder: SubsetExecutor, context: Callable[[], Any]
) -> None:
    model = _net()
    compiled = _compiled(model, "recorder")
    x = torch.randn(4, 8)
    with context():
        got = compiled(x)
    assert _roles(recorder) == ["inference"]
    assert torch.equal(got, model(x).detach())


def test_dynamic_batch_uses_one_graph_and_no_runner_cache(recorder: SubsetExecutor) -> None:
    model = _net().eval()
    compiled = _compiled(model, "recorder", dynamic=True)
    with torch.no_grad():
        for batch in (3, 5, 11):
            x = torch.randn(batch, 8)
            assert torch.equal(compiled(x), model(x))
    assert _roles(recorder) == ["inference"]
    (program,) = recorder.programs
    ep = program.exported_program()
    assert len(ep.range_constraints) == 1  # the batch size, an input of the program
    assert "SymIntArgument" in {type(spec.arg).__name__ for spec in ep.graph_signature.input_specs}
    assert torchexec.cache_info().currsize == 0


def test_new_shapes_recompile_into_new_programs(recorder: SubsetExecutor) -> None:
    model = _net().eval()
    compiled = _compiled(model, "recorder")
    with torch.no_grad():
        for batch in (3, 5, 7):
            x = torch.randn(batch, 8)
            assert torch.equal(compiled(x), model(x))
    # the second shape makes dynamo recompile with a symbolic batch, which the third reuses
    assert len(recorder.programs) == 2
    assert torchexec.cache_info().currsize == 0


def test_dynamic_training_matches_eager(recorder: SubsetExecutor) -> None:
    eager, model = _net(), _net()
    compiled = _compiled(model, "recorder", dynamic=True)
    for batch in (4, 6):
        x = torch.randn(batch, 8)
        compiled(x).sum().backward()
        eager(x).sum().backward()
    for p, q in zip(model.parameters(), eager.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        assert torch.equal(p.grad, q.grad)
    assert sorted(_roles(recorder)) == ["backward", "forward"]


def test_graph_breaks_run_each_graph_on_the_executor(
    recorder: SubsetExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = torch.sin(x) * 2
        print("between the graphs")
        return torch.cos(y) + 1

    x = torch.randn(5)
    got = _compiled(fn, "recorder")(x)
    assert torch.equal(got, torch.cos(torch.sin(x) * 2) + 1)
    assert capsys.readouterr().out == "between the graphs\n"
    assert len(recorder.programs) == 2


def test_custom_executor_reached_by_name_with_its_options(recorder: SubsetExecutor) -> None:
    model = _net().eval()
    compiled = _compiled(model, "recorder", params={"tag": "mine"})
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.equal(compiled(x), model(x))
    assert recorder.tags == ["mine"]


def test_backend_function_is_the_named_backend(recorder: SubsetExecutor) -> None:
    model = _net().eval()
    backend = torchexec.backend(executor="recorder", executor_parameters={"tag": "fn"})
    compiled = torch.compile(model, backend=backend)
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.equal(compiled(x), model(x))
    assert recorder.tags == ["fn"]


def test_priority_list_cuts_forward_and_backward() -> None:
    no_relu = SubsetExecutor("norelu", claims_all_but("aten::relu", "aten::threshold_backward"))
    with torchexec.register_executor(no_relu):
        eager, model = _net(), _net()
        compiled = _compiled(model, ["norelu", "aten"], params={"norelu": {"tag": "list"}})
        want = _train(eager, eager, steps=2)
        got = _train(model, compiled, steps=2)
    for g, w in zip(got, want, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(g, w, strict=True))
    # forward and backward are each cut around the operators norelu leaves to aten
    assert len(no_relu.programs) >= 4
    assert set(no_relu.tags) == {"list"}
    for program in no_relu.programs:
        ops = {str(n.target) for n in program.graph_module().graph.nodes}
        assert not ops & {"aten.relu.default", "aten.threshold_backward.default"}


def _first_call_raises(
    compiled: Callable[..., Any], error: type[Exception], match: str
) -> pytest.ExceptionInfo[Exception]:
    x = torch.randn(4, 8)
    with pytest.raises(error, match=match) as info:
        compiled(x)
    with pytest.raises(error, match=match):  # and again: nothing fell back to eager meanwhile
        compiled(x)
    return info


def test_unknown_executor_raises_at_first_call() -> None:
    info = _first_call_raises(
        _compiled(_net(), "prxy"), torchexec.ExecutorNotFoundError, "Unknown executor 'prxy'"
    )
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"executor": "aten", "executor_parameters": {"nope": 1}}, "has no option 'nope'"),
        ({"executr": "aten"}, "torchexec backend has no option 'executr'"),
        ({"executor": []}, "executor is an empty list"),
        ({"executor": ["aten"], "executor_parameters": {"proxy": {}}}, "not in the priority"),
    ],
)
def test_bad_options_raise_at_first_call(options: dict[str, Any], match: str) -> None:
    compiled = torch.compile(_net(), backend="torchexec", options=options)
    _first_call_raises(compiled, torchexec.InvalidOptionsError, match)


def test_a_mode_is_refused() -> None:
    compiled = torch.compile(_net(), backend="torchexec", mode="max-autotune")
    _first_call_raises(compiled, torchexec.InvalidOptionsError, "has no modes")


def test_unclaimed_operators_raise_even_when_dynamo_suppresses_errors() -> None:
    with torchexec.register_executor(SubsetExecutor("norelu", claims_all_but("aten::relu"))):
        compiled = _compiled(_net(), "norelu")
        with torch._dynamo.config.patch(suppress_errors=True):
            info = _first_call_raises(
                compiled, torchexec.UnsupportedOperatorError, "does not claim 1 operator node"
            )
    assert "aten::relu x1" in str(info.value)


def test_executor_errors_while_running_name_the_graph() -> None:
    class Failing(SubsetExecutor):
        def prepare(self, program: torchexec.Program, options: Any) -> torchexec.Runner:
            def run(*args: Any) -> list[Any]:
                raise RuntimeError("device lost")

            return run

    with torchexec.register_executor(Failing("failing", lambda node: True)):
        _first_call_raises(
            _compiled(_net(), "failing"),
            torchexec.ExecutorError,
            r"'failing'.* failed while running 'compile 0/0 forward': RuntimeError: device lost",
        )


def test_constants_and_symbolic_outputs(recorder: SubsetExecutor) -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        y = x + torch.tensor([1.0, 2.0, 3.0, 4.0])
        return y.view(-1)[1:], x.t(), y.shape[0] * 2

    compiled = _compiled(fn, "recorder", dynamic=True)
    x = torch.randn(3, 4, requires_grad=True)
    got, want = compiled(x), fn(x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[2] == want[2] == 6
    torch.autograd.backward(got[0].sum() + got[1].sum())
    grad, x.grad = x.grad, None
    torch.autograd.backward(want[0].sum() + want[1].sum())
    assert grad is not None and x.grad is not None and torch.equal(grad, x.grad)
    forward = next(p for p in recorder.programs if p.name.endswith("forward"))
    constants = forward.exported_program().constants
    assert [v.tolist() for v in constants.values()] == [[1.0, 2.0, 3.0, 4.0]]


def test_higher_order_operators_keep_their_branches() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.cond(x.sum() > 0, torch.sin, torch.cos, (x,))
        return out

    x = torch.randn(4)
    assert torch.equal(_compiled(fn, "aten")(x), fn(x))
    torch._dynamo.reset()
    _installed("proxy")
    # the proxy runs cond as a nested plan of each branch (it refused it before #19)
    assert torch.equal(_compiled(fn, "proxy")(x), fn(x))
    assert torch.equal(_compiled(fn, "proxy")(-x.abs() - 1), fn(-x.abs() - 1))


def test_graph_module_given_to_the_backend_is_left_unchanged() -> None:
    from torchexec._graph_program import program_from_aten_graph

    graphs: list[torch.fx.GraphModule] = []

    def keep(gm: torch.fx.GraphModule, _: Any) -> Callable[..., Any]:
        graphs.append(gm)
        return gm.forward

    from torch._dynamo.backends.common import aot_autograd

    model = _net()
    torch.compile(model, backend=aot_autograd(fw_compiler=keep))(torch.randn(4, 8))
    forward = graphs[0]
    before = forward.code
    graph = program_from_aten_graph(forward, "fw")
    assert forward.code == before
    # the forward returns some saved tensors twice: the program returns each once
    outputs = forward.graph.output_node().args[0]
    assert isinstance(outputs, tuple)
    assert len(graph.layout) == len(outputs)
    assert graph.program.out_spec.num_leaves == len(set(outputs)) < len(outputs)
    vals = [n.meta["val"] for n in forward.graph.nodes if n.op == "placeholder"]
    inputs = [
        torch.randn(v.shape) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype)
        for v in vals
    ]
    want = forward(*inputs)
    got = graph.outputs(torchexec.get_executor("aten").prepare(graph.program, {})(*inputs))
    assert len(got) == len(want)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_entry_point_lists_the_backend_without_importing_executors() -> None:
    code = (
        "import sys, torch._dynamo\n"
        "assert 'torchexec' in torch._dynamo.list_backends()\n"
        "print(sorted(m for m in sys.modules if m.startswith('torchexec')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_name_resolves_to_the_entry_point_once() -> None:
    from torch._dynamo.backends.registry import lookup_backend

    from torchexec._compile import compile_backend

    assert lookup_backend("torchexec") is compile_backend
    assert lookup_backend("torchexec") is compile_backend  # registered once, no duplicate
