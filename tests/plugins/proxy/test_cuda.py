"""The proxy on CUDA: state, inputs and device arguments on the GPU (skipped without one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))  # fmt: skip
    return m.eval().cuda()


def test_model_on_cuda_matches_aten(check_against_aten: Any) -> None:
    x = torch.randn(2, 3, 8, 8, device="cuda")
    with torch.no_grad():
        out = check_against_aten(_cnn(), x)
    assert out.device.type == "cuda"


def test_device_arguments(check_against_aten: Any) -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + torch.ones(3, device="cuda"), x.to("cpu", torch.float64)

    out = check_against_aten(fn, torch.randn(3, device="cuda"))
    assert out[0].device.type == "cuda" and out[1].device.type == "cpu"


def test_pt2_with_cuda_weights(save_pt2: Callable[..., Path], bitwise: Any) -> None:
    model = _cnn()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    path = save_pt2(model, x)
    plan = torchexec_proxy.load_plan(torchexec.Program.from_path(path))
    assert all(
        v.device.type == "cuda" for v in plan.state_values.values() if isinstance(v, torch.Tensor)
    )
    with torch.no_grad():
        expected = torch.export.load(path).module()(x)
        actual = torchexec.prepare(path, x, executor="proxy")(x)
    bitwise(expected, actual)
