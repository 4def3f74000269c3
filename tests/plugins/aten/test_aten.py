"""The aten reference executor: lifted state, constant inputs, mutations, options."""

from __future__ import annotations

import copy

import pytest
import torch

import torchexec


class _WithState(torch.nn.Module):
    steps: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.register_buffer("scale", torch.tensor([1.0, 2.0, 3.0]))
        self.register_buffer("steps", torch.zeros(()), persistent=False)
        self.const = torch.tensor([0.5, 0.25, 0.125])

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        self.steps.add_(1)
        out: torch.Tensor = self.lin(x) * self.scale + self.const * n + self.steps
        return out


def test_parameters_buffers_constants_and_constant_input() -> None:
    m = _WithState()
    x = torch.randn(2, 3)
    ep = torch.export.export(m, (x, 4))
    ep_ref = torch.export.export(copy.deepcopy(m), (x, 4)).module()
    run = torchexec.prepare(ep, x, 4, executor="aten")
    with torch.no_grad():
        for _ in range(2):  # the second call sees the buffer the first one updated
            assert torch.equal(run(x, 4), ep_ref(x, 4))
    with pytest.raises(torchexec.InputMismatchError, match=r"args\[1\].*int 4.*got int 5"):
        run(x, 5)


def test_executor_metadata() -> None:
    ex = torchexec.get_executor("aten")
    assert ex.name == "aten"
    assert ex.capabilities.bitwise and "cuda" in ex.capabilities.devices
    assert ex.validate_options(None) == {}
    info = {i.name: i for i in torchexec.list_executors()}["aten"]
    assert (info.description, info.capabilities) == (ex.description, ex.capabilities)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda() -> None:
    x = torch.randn(4, 4, device="cuda")
    out = torchexec.execute(lambda a: (a @ a).relu(), x, executor="aten")
    assert out.device.type == "cuda"
    assert torch.equal(out, (x @ x).relu())
