"""The torchbind executor matches aten bit for bit on a range of ATen programs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.export import Dim

import torchexec

from .conftest import Agree, assert_same

pytestmark = pytest.mark.usefixtures("engine_lib")

torch.manual_seed(0)
X = torch.randn(4, 6)
Y = torch.randn(4, 6)


def _elementwise(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = torch.sin(x) * 0.5 + y
    h = torch.relu(h) - torch.neg(y) / 3
    h = torch.where(h > 0.1, h.exp(), h.sigmoid())
    return torch.clamp(h.tanh(), min=-0.5, max=0.75) ** 2


def _nan_and_inf(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.log(x), x / (y * 0), torch.sqrt(x) - torch.rsqrt(y)


def _promotion(i: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # Numbers where the schema takes a tensor are wrapped numbers: int + 0.5 stays float32.
    return i + 0.5, i * 2, i // 3, h + 1.5, (i > 2) & (i < 7), i.float() * h.double()


def _multi_output(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    values, indices = torch.max(x, dim=1)
    top, top_i = torch.topk(y, 3, dim=1)
    s, s_i = torch.sort(x, dim=0, descending=True)
    var, mean = torch.var_mean(x, dim=0, correction=0)
    lo, hi = torch.aminmax(y)
    a, b, c = torch.split(x, [1, 2, 3], dim=1)
    return values, indices, top, top_i, s, s_i, var, mean, lo, hi, a, b * c[:, :2].sum()


def _views(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    v = x.view(2, 12).t()
    p = y.permute(1, 0)[1:, ::2]
    e = x[:, :1].expand(4, 5)
    n = y.narrow(1, 2, 3).unsqueeze(0).transpose(0, 2)
    return v * 2, p.contiguous(), e + 1, n, x.select(0, 2), x.reshape(-1)[3:9]


def _lists(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    idx = torch.tensor([2, 0, 3])
    cat = torch.cat([x, y, x * y], dim=0)
    stacked = torch.stack([x, y], dim=-1)
    gathered = x[idx]  # aten.index.Tensor: a Tensor?[] argument
    put = y.index_put((idx,), torch.ones(3, 6))
    return cat, stacked, gathered, put, torch.chunk(cat, 3)[1]


def _reductions(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (
        x.sum(dim=(0, 1), keepdim=True),
        y.mean(1),
        x.amax(0),
        (x.abs() + 1).prod(1),
        y.cumsum(1),
        x.var(1, correction=1),
        torch.linalg.vector_norm(y, ord=3, dim=1),
        x.argmax(1),
        torch.logsumexp(y, 0),
        torch.softmax(x, dim=-1),
        x.sum(dtype=torch.float64),
    )


def _statics(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    z = torch.zeros_like(x, dtype=torch.float64)
    r = torch.arange(6, dtype=torch.int32).to(torch.float16)
    f = torch.full((2, 3), 1.5, dtype=torch.bfloat16, layout=torch.strided)
    c = x.reshape(1, 2, 3, 4).contiguous(memory_format=torch.channels_last)
    return z + x, r, f, c * 2, x.to(torch.int32), torch.ones(3, device="cpu") * y[0, :3]


PROGRAMS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "elementwise": (_elementwise, (X, Y)),
    "nan_and_inf": (_nan_and_inf, (X, Y)),
    "promotion": (_promotion, (torch.arange(12).reshape(3, 4), torch.randn(3, 4).half())),
    "multi_output": (_multi_output, (X, Y)),
    "views": (_views, (X, Y)),
    "lists": (_lists, (X, Y)),
    "reductions": (_reductions, (X, Y)),
    "statics": (_statics, (X, Y)),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_matches_aten(agree: Agree, name: str) -> None:
    fn, args = PROGRAMS[name]
    agree(fn, *args, executors=("torchbind", "proxy"))


def test_wrapped_numbers_keep_the_tensor_dtype(agree: Agree) -> None:
    out = agree(_promotion, *PROGRAMS["promotion"][1])[0]
    assert out[0].dtype == torch.float32 and out[3].dtype == torch.float16


def test_mlp(agree: Agree) -> None:
    mlp = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.LogSoftmax(-1)
    )
    with torch.no_grad():
        agree(mlp, X)


def test_cnn_with_batch_norm(agree: Agree) -> None:
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 4, 3, stride=2),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
    )
    bn = cnn[1]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    cnn.eval()
    with torch.no_grad():
        agree(cnn, torch.randn(2, 3, 8, 8))


def test_transformer_encoder_layer(agree: Agree) -> None:
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16).eval()
    with torch.no_grad():
        agree(layer, torch.randn(5, 2, 8))


class _Counter(torch.nn.Module):
    """Parameters, a mutated buffer, a lifted constant and a constant (int) input."""

    steps: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 6)
        self.register_buffer("steps", torch.zeros(6))
        self.const = torch.tensor([0.5, 0.25, 0.125, 1.0, 2.0, 4.0])

    def forward(self, x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.steps.add_(1)
        return self.lin(x) * self.steps + self.const * n, self.steps.clone()


def test_buffer_mutation_and_constant_input() -> None:
    """Each executor gets its own copy of the module; outputs and buffers agree after 3 calls."""
    base = _Counter()
    results = {}
    for name in ("aten", "torchbind"):
        m = copy.deepcopy(base)
        ep = torch.export.export(m, (X, 3), strict=False)
        run = torchexec.prepare(ep, X, 3, executor=name)
        with torch.no_grad():
            outs = [run(X, 3) for _ in range(3)]
        results[name] = (outs, ep.state_dict["steps"].clone())
    assert_same(results["torchbind"], results["aten"])
    assert results["torchbind"][1].tolist() == [3.0] * 6


def test_user_input_mutation(agree: Agree) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        x.mul_(2)
        return x + 1

    outs = {}
    for name in ("aten", "torchbind"):
        x = X.clone()
        run = torchexec.prepare(f, x, executor=name)
        out = run(x)
        outs[name] = (out, x)
    assert_same(outs["torchbind"], outs["aten"])
    assert torch.equal(outs["torchbind"][1], X * 2)


def test_dynamic_shapes_run_symint_arithmetic() -> None:
    """A program exported with a dynamic dimension computes sizes in SymInt nodes; the engine
    runs it at other sizes too."""

    class Reshape(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
            n = x.shape[0]
            flat = x.reshape(n * 3)
            return flat[: n + 1] * (n - 1) + x.sum(), n * 2 - 1

    m = Reshape()
    x = torch.randn(6, 3)
    ep = torch.export.export(m, (x,), dynamic_shapes=({0: Dim("n", min=2, max=64)},))
    targets = {str(n.target) for n in ep.graph.nodes}
    assert "aten.sym_size.int" in targets and "<built-in function mul>" in targets, targets
    run = torchexec.prepare(ep, x, executor="torchbind")
    for rows in (6, 11, 2):
        xi = torch.randn(rows, 3)
        assert_same(list(run.runner(xi)), list(m(xi)))


def test_program_from_pt2_file(agree: Agree, tmp_path: Any) -> None:
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.GELU())
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(mlp, (X,)), path)
    with torch.no_grad():
        expected = torch.export.load(path).module()(X)
        out = torchexec.prepare(str(path), X, executor="torchbind")(X)
    assert_same(out, expected)


def test_execute_caches_one_engine_per_signature() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x.cos() * 2

    assert_same(torchexec.execute(f, X, executor="torchbind"), f(X))
    assert_same(torchexec.execute(f, X, executor="torchbind"), f(X))
    assert_same(torchexec.execute(f, Y[:2], executor="torchbind"), f(Y[:2]))
    info = torchexec.cache_info()
    assert info.hits >= 1 and info.misses >= 2
