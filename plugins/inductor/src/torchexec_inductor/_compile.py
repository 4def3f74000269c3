"""Compiling a program to an AOTInductor package and loading one."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.export import ExportedProgram

from torchexec import ProgramError

__all__ = ["compile_package", "inductor_configs", "load_package"]

log = logging.getLogger("torchexec_inductor")


def inductor_configs(options: Mapping[str, object]) -> dict[str, Any]:
    """The ``torch._inductor.config`` settings the executor options select."""
    return {"max_autotune": bool(options["max_autotune"])}


def compile_package(ep: ExportedProgram, path: Path, options: Mapping[str, object]) -> None:
    """Compile ``ep`` with ``aoti_compile_and_package`` into ``path`` (a ``.pt2`` file).

    Raises:
        ProgramError: AOTInductor cannot compile the program.
    """
    import torch._inductor

    start = time.perf_counter()
    try:
        torch._inductor.aoti_compile_and_package(
            ep, package_path=str(path), inductor_configs=inductor_configs(options)
        )
    except Exception as exc:
        raise ProgramError(
            f"AOTInductor could not compile the program: {type(exc).__name__}: {exc}"
        ) from exc
    log.info("torchexec-inductor: compiled %s in %.1f s", path.name, time.perf_counter() - start)


def load_package(path: Path) -> Any:
    """Open a package with ``aoti_load_package``; returns its ``AOTICompiledModel``."""
    import torch._inductor

    return torch._inductor.aoti_load_package(str(path))
