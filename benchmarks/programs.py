"""The workloads and the memory probe the benchmark scripts share.

Import it from a script as ``from benchmarks.programs import ...`` after putting the repository
root on ``sys.path`` (the scripts run as ``python benchmarks/NAME.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.fx.experimental.proxy_tensor import make_fx

__all__ = ["chain_program", "large_program", "peak_bytes"]


def chain_program(
    n: int = 2000, size: int = 16, device: torch.device | None = None
) -> tuple[torch.fx.GraphModule, tuple[torch.Tensor]]:
    """An ATen graph of ``n`` small elementwise nodes (``sin``, a scalar ``mul`` or ``add``,
    ``relu``, ``neg``): per-node overhead dominates."""

    def chain(x: torch.Tensor) -> torch.Tensor:
        for i in range(n // 4):
            x = torch.sin(x)
            x = x * 0.5 if i % 2 else x + 0.25
            x = torch.relu(x)
            x = torch.neg(x)
        return x

    x = torch.randn(size, device=device)
    return make_fx(chain)(x), (x,)


def large_program(
    device: torch.device | None = None,
) -> tuple[torch.fx.GraphModule, tuple[torch.Tensor, torch.Tensor]]:
    """A compute-bound graph: matmuls and elementwise ops on 1024x1024 tensors."""

    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = torch.relu(a @ b)
        h = torch.tanh(h @ b + a)
        return (h * 0.5).softmax(-1)

    args = (torch.randn(1024, 1024, device=device), torch.randn(1024, 1024, device=device))
    return make_fx(f)(*args), args


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated while ``fn`` runs, above what was live before (CUDA: the caching
    allocator's statistics; CPU: allocations minus frees from the profiler's memory events)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - start)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak
