"""Eight threads calling execute and shared prepared programs on every executor at once."""

from __future__ import annotations

import threading

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec

from .conftest import installed_shipped

THREADS = 8
CALLS = 30


def _f(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.tanh(a @ b.t()) + a.sum()
    return h.softmax(-1), (a * b).cumsum(0)


@pytest.mark.parametrize("executor", installed_shipped())
def test_threads_agree_with_serial_runs(executor: str) -> None:
    gm = make_fx(_f)(torch.randn(2, 3), torch.randn(2, 3))
    shapes = [(1, 3), (2, 3), (4, 3), (3, 5), (5, 2)]
    inputs = {
        s: (torch.randn(s, generator=torch.Generator().manual_seed(i)), torch.randn(s))
        for i, s in enumerate(shapes)
    }
    serial = {s: torchexec.execute(gm, *inputs[s], executor=executor) for s in shapes}
    shared = torchexec.prepare(gm, *inputs[(2, 3)], executor=executor)
    torchexec.clear_cache()
    torchexec.set_cache_size(3)  # fewer entries than shapes: evictions while threads run
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(CALLS):
                s = shapes[(t + i) % len(shapes)]
                out = torchexec.execute(gm, *inputs[s], executor=executor)
                assert all(torch.equal(x, y) for x, y in zip(out, serial[s], strict=True)), s
                out = shared(*inputs[(2, 3)])
                assert all(torch.equal(x, y) for x, y in zip(out, serial[(2, 3)], strict=True))
                assert torchexec.cache_info().currsize <= 3
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        assert not any(th.is_alive() for th in threads), "deadlock: threads still running"
        assert not errors, errors[0]
        info = torchexec.cache_info()
        assert info.currsize <= 3
        assert info.hits + info.misses == THREADS * CALLS
    finally:
        torchexec.set_cache_size(128)
