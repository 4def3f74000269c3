"""Calling an executor's ``prepare``: the one place its foreign errors are wrapped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from torchexec._errors import ExecutorError, TorchexecError
from torchexec._executor import Executor, Runner
from torchexec._registry import REGISTRY

if TYPE_CHECKING:
    from torchexec._program import Program

__all__ = ["call_prepare"]


def call_prepare(
    impl: Executor, executor: str, program: Program, options: Mapping[str, object]
) -> Runner:
    """``impl.prepare(program, options)``, with foreign errors wrapped in ``ExecutorError``."""
    try:
        runner = impl.prepare(program, options)
    except TorchexecError:
        raise
    except Exception as exc:
        raise ExecutorError(
            f"executor {executor!r} ({REGISTRY.distribution_of(executor)}) failed to prepare "
            f"{program.name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(runner):
        raise ExecutorError(
            f"executor {executor!r} ({REGISTRY.distribution_of(executor)}) returned "
            f"{type(runner).__name__} from prepare(), which is not callable"
        )
    return runner
