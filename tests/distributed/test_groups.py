"""Process groups are resolved by name while preparing (one-rank gloo world, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as fc

import torchexec
from tests.distributed.models import world_group

LOADERS = ("proxy", "torchbind")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[None]:
    store = dist.FileStore(  # type: ignore[attr-defined]
        str(tmp_path / "store"), 1
    )
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


class _Reduce(torch.nn.Module):
    def __init__(self, group: dist.ProcessGroup) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = fc.all_reduce(x * 2, "sum", self.group).sin()
        return out


def _saved(group: dist.ProcessGroup, path: Path) -> Path:
    x = torch.randn(3)
    torch.export.save(torch.export.export(_Reduce(group), (x,), strict=False), path)
    return path


@pytest.mark.parametrize("executor", LOADERS)
def test_world_group_by_name(world: None, tmp_path: Path, executor: str) -> None:
    path = _saved(world_group(), tmp_path / "p.pt2")
    x = torch.randn(3)
    assert torch.equal(torchexec.execute(str(path), x, executor=executor), (x * 2).sin())


@pytest.mark.parametrize("executor", LOADERS)
def test_missing_group_fails_at_prepare_naming_it(
    world: None, tmp_path: Path, executor: str
) -> None:
    sub = dist.new_group([0])
    name = sub.group_name
    path = _saved(sub, tmp_path / "p.pt2")
    dist.destroy_process_group(sub)
    x = torch.randn(3)
    with pytest.raises(
        torchexec.ProgramError, match=rf"process group '{name}', which does not exist"
    ):
        torchexec.prepare(str(path), x, executor=executor)
    # Mapped to a group of this process, it runs.
    other = dist.new_group([0])
    out = torchexec.execute(
        str(path), x, executor=executor, executor_parameters={"process_groups": {name: other}}
    )
    assert torch.equal(out, (x * 2).sin())


@pytest.mark.parametrize("executor", LOADERS)
def test_process_groups_option_is_checked(world: None, tmp_path: Path, executor: str) -> None:
    path = _saved(world_group(), tmp_path / "p.pt2")
    x = torch.randn(3)
    with pytest.raises(
        torchexec.ProgramError, match=r"names \['9'\], which the program does not use"
    ):
        torchexec.prepare(
            str(path),
            x,
            executor=executor,
            executor_parameters={"process_groups": {"9": world_group()}},
        )
    with pytest.raises(torchexec.ProgramError, match=r"must be a torch\.distributed\.ProcessGroup"):
        torchexec.prepare(
            str(path), x, executor=executor, executor_parameters={"process_groups": {"0": "world"}}
        )
    with pytest.raises(torchexec.InvalidOptionsError, match="must map names"):
        torchexec.prepare(
            str(path),
            x,
            executor=executor,
            executor_parameters={"process_groups": {0: world_group()}},
        )


def test_collectives_without_an_initialised_group(tmp_path: Path) -> None:
    store = dist.FileStore(  # type: ignore[attr-defined]
        str(tmp_path / "store"), 1
    )
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        path = _saved(world_group(), tmp_path / "p.pt2")
    finally:
        dist.destroy_process_group()
    with pytest.raises(torchexec.ProgramError, match=r"torch\.distributed is not initialised"):
        torchexec.prepare(str(path), torch.randn(3), executor="proxy")
