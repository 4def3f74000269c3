"""Held-out real models on ``["onnxruntime", "aten"]``: within 1e-4 of aten, most nodes on
onnxruntime (GPT-2 and BERT from small ``transformers`` configs, and a CNN in training mode,
whose batch norm onnxruntime does not claim)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.utils._pytree as pytree

import torchexec
from tests import held_out_models

pytest.importorskip("onnxruntime")


def _cnn() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )
    return net.train(), (torch.randn(2, 3, 8, 8),)


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]] = {
    "gpt2": held_out_models.gpt2,
    "bert": held_out_models.bert,
    "cnn_training": _cnn,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_then_aten(name: str) -> None:
    torch.manual_seed(0)
    model, args = MODELS[name]()
    ep_ref = torch.export.export(copy.deepcopy(model), args, strict=False)
    ep = torch.export.export(model, args, strict=False)
    ref = torchexec.prepare(ep_ref, *args, executor="aten")
    cut = torchexec.prepare(ep, *args, executor=["onnxruntime", "aten"])
    counts = cut.placement.counts()
    assert counts["onnxruntime"] > counts["aten"], counts  # most nodes on onnxruntime
    for _ in range(2):  # buffers (batch norm statistics) must feed the second call alike
        want, got = pytree.tree_leaves(ref(*args)), pytree.tree_leaves(cut(*args))
        for w, g in zip(want, got, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    for key, value in ep_ref.state_dict.items():
        torch.testing.assert_close(ep.state_dict[key], value, rtol=1e-4, atol=1e-4)
