"""Programs with functional collectives, built per rank (shared by the worker and the docs)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as fc


def world_group() -> dist.ProcessGroup:
    """The default process group (torch.distributed must be initialised)."""
    group = dist.group.WORLD
    if group is None:
        raise RuntimeError("torch.distributed is not initialised")
    return group


class TensorParallelMLP(torch.nn.Module):
    """A column-parallel then row-parallel MLP: each rank holds a shard of both weights and the
    partial results are summed with an all_reduce. Its output equals the unsharded MLP's."""

    def __init__(self, rank: int, world: int, hidden: int = 16, features: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        full1 = torch.nn.Linear(features, hidden)
        full2 = torch.nn.Linear(hidden, features, bias=False)
        self.w1 = torch.nn.Parameter(full1.weight.detach().chunk(world, 0)[rank].clone())
        self.b1 = torch.nn.Parameter(full1.bias.detach().chunk(world, 0)[rank].clone())
        self.w2 = torch.nn.Parameter(full2.weight.detach().chunk(world, 1)[rank].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(x @ self.w1.t() + self.b1)
        out: torch.Tensor = fc.all_reduce(h @ self.w2.t(), "sum", world_group())
        return out


class Collectives(torch.nn.Module):
    """One of each functional collective torch.export captures."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        group = world_group()
        world = dist.get_world_size()
        summed = fc.all_reduce(x * 2, "sum", group)
        gathered = fc.all_gather_tensor(x + 1, 0, group)
        scattered = fc.reduce_scatter_tensor(gathered * 3, "sum", 0, group)
        shuffled = fc.all_to_all_single(
            x.sin(), [x.shape[0] // world] * world, [x.shape[0] // world] * world, group
        )
        broadcast = fc.broadcast(x.cos(), 0, group)
        return summed, gathered, scattered, shuffled, broadcast
