"""Exported real models: the proxy matches ``aten`` bit for bit, state updates included."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 16), nn.ReLU(),
                                 nn.Linear(16, 4))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits.softmax(-1)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, groups=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        out: torch.Tensor = self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return out


class Counter(nn.Module):
    """Mutates buffers in place and uses a multi-output op."""

    calls: torch.Tensor
    running: torch.Tensor
    scratch: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("running", torch.zeros(4))
        self.register_buffer("scratch", torch.ones(4), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.add_(1)
        values, indices = torch.max(x, dim=0)
        self.running.mul_(0.9).add_(values * 0.1)
        self.scratch.copy_(self.running * 2)
        return values + self.running, indices


def _seeded(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls()


def _cnn_eval() -> nn.Module:
    torch.manual_seed(0)
    m = SmallCNN()
    for bn in (m.bn1, m.bn2):
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _transformer() -> nn.Module:
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0,
                                      batch_first=True).eval()  # fmt: skip


MODELS: dict[str, tuple[Any, tuple[int, ...]]] = {
    "mlp": (lambda: _seeded(MLP), (5, 8)),
    "cnn_batchnorm_eval": (_cnn_eval, (2, 3, 8, 8)),
    "transformer_encoder_layer": (_transformer, (2, 6, 16)),
    "buffer_mutation": (lambda: _seeded(Counter), (6, 4)),
    "cnn_batchnorm_train": (lambda: _seeded(SmallCNN).train(), (2, 3, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_aten(name: str, check_against_aten: Any) -> None:
    make, shape = MODELS[name]
    model = make()
    torch.manual_seed(1)
    x = torch.randn(*shape)
    with torch.no_grad():
        check_against_aten(model, x)


@pytest.mark.parametrize("name", ["buffer_mutation", "cnn_batchnorm_train"])
def test_functional_program_writes_buffers_back(name: str, bitwise: Any) -> None:
    """After ``run_decompositions`` buffer updates are graph outputs; the runner copies them."""
    make, shape = MODELS[name]
    model = make()
    x = torch.randn(*shape)
    ep = torch.export.export(model, (x,), strict=False).run_decompositions()
    kinds = {s.kind.name for s in ep.graph_signature.output_specs}
    assert "BUFFER_MUTATION" in kinds
    ep_ref, ep_proxy = copy.deepcopy(ep), copy.deepcopy(ep)
    for _ in range(2):  # state carries over between calls
        with torch.no_grad():
            expected = torchexec.execute(ep_ref, x, executor="aten")
            actual = torchexec.execute(ep_proxy, x, executor="proxy")
        bitwise(expected, actual)
    bitwise(dict(ep_ref.state_dict), dict(ep_proxy.state_dict))
    bitwise(dict(ep_ref.constants), dict(ep_proxy.constants))


def test_functional_user_input_mutation(bitwise: Any) -> None:
    class AddInPlace(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            x.mul_(2)
            return x + y

    x, y = torch.randn(3), torch.randn(3)
    ep = torch.export.export(AddInPlace(), (x.clone(), y), strict=False).run_decompositions()
    assert any(s.kind.name == "USER_INPUT_MUTATION" for s in ep.graph_signature.output_specs)
    x_ref, x_proxy = x.clone(), x.clone()
    expected = torchexec.execute(ep, x_ref, y, executor="aten")
    actual = torchexec.execute(ep, x_proxy, y, executor="proxy")
    bitwise(expected, actual)
    bitwise(x_ref, x_proxy)
    assert torch.equal(x_proxy, x * 2)


def test_dynamic_shapes_run_at_other_sizes(bitwise: Any) -> None:
    """SymInt nodes (sym_size, _operator arithmetic) are computed at run time."""

    class Reshaper(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n = x.shape[0]
            return x.reshape(n * 2, -1).sum(1), torch.full((n + 1,), 2.0) * x.shape[1]

    batch = torch.export.Dim("batch", min=2, max=64)
    ep = torch.export.export(Reshaper(), (torch.randn(4, 6),), dynamic_shapes=({0: batch},),
                             strict=False)  # fmt: skip
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    targets = {n.target for n in plan.nodes}
    assert any(t.startswith("_operator.") for t in targets), targets
    assert "torch.ops.aten.sym_size.int" in targets
    runner = torchexec_proxy.ProxyRunner(plan)
    module = ep.module()
    for n in (2, 5, 17):
        x = torch.randn(n, 6)
        bitwise(list(module(x)), runner(x))
