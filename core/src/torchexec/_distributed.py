"""Running one rank of a distributed program from the command line (under ``torchrun``)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

from torchexec._errors import ProgramError

__all__ = ["RANK_FIELD", "rank_path", "rank_process_group"]

RANK_FIELD = "{rank}"
"""Replaced by the process's rank in a program path: ``model_rank{rank}.pt2``."""

DEFAULT_TIMEOUT = datetime.timedelta(minutes=5)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ProgramError(f"environment variable {name}={value!r} is not an integer") from None


def rank_path(path: str) -> str:
    """``path`` with ``{rank}`` replaced by this process's rank (``RANK``, set by torchrun).

    Raises:
        ProgramError: the path names ``{rank}`` but the process was not started by torchrun.
    """
    if RANK_FIELD not in path:
        return path
    rank = _env_int("RANK")
    if rank is None:
        raise ProgramError(
            f"{path}: '{RANK_FIELD}' is replaced by the rank, but RANK is not set: start the "
            "command with torchrun, e.g. 'torchrun --nproc-per-node 2 -m torchexec run "
            f"{path} --executor proxy'"
        )
    return path.replace(RANK_FIELD, str(rank))


@contextmanager
def rank_process_group(device_type: str) -> Iterator[bool]:
    """Initialise the default process group when the process runs under torchrun (``RANK`` and
    ``WORLD_SIZE`` set) and none exists: NCCL for CUDA programs, gloo otherwise. Destroys it on
    exit if it made it; yields whether one is active.
    """
    import torch.distributed as dist

    world = _env_int("WORLD_SIZE")
    if world is None or not dist.is_available() or dist.is_initialized():
        yield dist.is_available() and dist.is_initialized()
        return
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        import torch

        local = _env_int("LOCAL_RANK") or 0
        torch.cuda.set_device(local)
    dist.init_process_group(backend, timeout=DEFAULT_TIMEOUT)
    try:
        yield True
    finally:
        dist.destroy_process_group()
