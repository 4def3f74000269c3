"""One rank of a distributed test: ``python -m tests.distributed.worker CASE RANK WORLD PORT DIR``.

Prints one JSON line with what the rank saw; the tests read it. The process group has a short
timeout, so that a rank whose peer died fails instead of waiting forever.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

import torchexec
from tests.distributed.models import Collectives, TensorParallelMLP

EXECUTORS = ("aten", "proxy", "torchbind")


def _agree(path: Path, x: torch.Tensor, options: dict[str, Any]) -> dict[str, Any]:
    """Run ``path`` on every executor; bitwise agreement with aten per executor."""
    want = torchexec.execute(str(path), x, executor="aten")
    want_leaves = want if isinstance(want, tuple) else (want,)
    result: dict[str, Any] = {}
    for name in EXECUTORS[1:]:
        got = torchexec.execute(str(path), x, executor=name, executor_parameters=options.get(name))
        got_leaves = got if isinstance(got, tuple) else (got,)
        result[name] = all(torch.equal(a, b) for a, b in zip(got_leaves, want_leaves, strict=True))
    result["aten_sum"] = float(sum(t.double().sum() for t in want_leaves))
    return result


def case_programs(rank: int, world: int, folder: Path) -> dict[str, Any]:
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    out: dict[str, Any] = {}
    for name, model in (("tp", TensorParallelMLP(rank, world)), ("collectives", Collectives())):
        ep = torch.export.export(model, (x,), strict=False)
        path = folder / f"{name}_rank{rank}.pt2"
        torch.export.save(ep, path)
        out[name] = _agree(path, x, {})
    return out


def case_raise(rank: int, world: int, folder: Path) -> dict[str, Any]:
    """Rank 1 fails before the collective; rank 0 must fail too, not hang."""
    index = torch.tensor([0 if rank == 0 else 99])
    model = TensorParallelMLP(rank, world)
    ep = torch.export.export(_IndexThenReduce(model), (torch.randn(4, 8), index), strict=False)
    torchexec.execute(ep, torch.randn(4, 8), index, executor="proxy")
    return {"finished": True}


class _IndexThenReduce(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x[index])
        return out


CASES = {"programs": case_programs, "raise": case_raise}


def main() -> int:
    case, rank, world, port, folder = sys.argv[1], *map(int, sys.argv[2:5]), Path(sys.argv[5])
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=20)
    )
    try:
        result: dict[str, Any] = {"rank": rank, **CASES[case](rank, world, folder)}
    except Exception as exc:
        result = {"rank": rank, "error": f"{type(exc).__name__}: {exc}"}
    print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
