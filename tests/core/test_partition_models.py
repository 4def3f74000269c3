"""Held-out real models cut by a partial executor plus aten agree bit for bit with aten alone.

The partial executor claims a fixed pseudo-random half of the operators (by a hash of the
operator's name), so each model is cut in many places, through attention, normalisation,
embeddings and convolutions alike.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.utils._pytree as pytree

import torchexec
from tests import held_out_models
from tests.core.subset_executor import SubsetExecutor


def _half(node: torch.fx.Node) -> bool:
    target = node.target
    if not isinstance(target, torch._ops.OpOverload):
        return True
    return zlib.crc32(target._schema.name.encode()) % 2 == 0


@pytest.fixture
def partial() -> Iterator[SubsetExecutor]:
    ex = SubsetExecutor("partial", _half)
    with torchexec.register_executor(ex):
        yield ex


def _encoder() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    layer = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True)
    return torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval(), (
        torch.randn(2, 7, 32),
    )


def _cnn() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    # Training mode: batch norm updates its running statistics, buffers mutated across cuts.
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 2 * 2, 5),
    )
    return net.train(), (torch.randn(2, 3, 8, 8),)


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]] = {
    "transformer_encoder": _encoder,
    "cnn_batchnorm": _cnn,
    "gpt2": held_out_models.gpt2,
    "bert": held_out_models.bert,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_partial_executor_plus_aten_is_bitwise_aten(name: str, partial: SubsetExecutor) -> None:
    torch.manual_seed(0)
    model, args = MODELS[name]()
    ep_ref = torch.export.export(copy.deepcopy(model), args, strict=False)
    ep_cut = torch.export.export(model, args, strict=False)
    ref = torchexec.prepare(ep_ref, *args, executor="aten")
    cut = torchexec.prepare(ep_cut, *args, executor=["partial", "aten"])

    counts = cut.placement.counts()
    assert counts["partial"] > 0 and counts["aten"] > 0, counts
    assert len(cut.placement.partitions) >= 3
    for _ in range(2):  # twice: mutated buffers must feed the second call identically
        want, got = pytree.tree_leaves(ref(*args)), pytree.tree_leaves(cut(*args))
        assert len(want) == len(got)
        for w, g in zip(want, got, strict=True):
            assert torch.equal(w, g)
    for key, value in ep_ref.state_dict.items():
        assert torch.equal(ep_cut.state_dict[key], value), key
