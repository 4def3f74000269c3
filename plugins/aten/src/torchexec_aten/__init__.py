"""Plugin module of the ``aten`` executor: registers it without importing the implementation."""

from __future__ import annotations

from collections.abc import Callable

from torchexec import Executor, ExecutorSpec, hookimpl
from torchexec_aten._meta import CAPABILITIES, DESCRIPTION, NAME

__all__ = ["torchexec_register_executors"]


def _load() -> Executor:
    from torchexec_aten._executor import AtenExecutor

    return AtenExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``aten`` reference executor."""
    register(
        ExecutorSpec(name=NAME, description=DESCRIPTION, load=_load, capabilities=CAPABILITIES)
    )
