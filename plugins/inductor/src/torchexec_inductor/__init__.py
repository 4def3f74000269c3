"""Plugin module of the ``inductor`` executor: registers it without importing torch."""

from __future__ import annotations

from collections.abc import Callable

from torchexec import Capabilities, Executor, ExecutorSpec, hookimpl

__all__ = ["CAPABILITIES", "torchexec_register_executors"]

CAPABILITIES = Capabilities(devices=("cpu", "cuda"), torchbind=False, bitwise=False)
"""Compiled kernels fuse and reorder arithmetic, so results agree with aten within tolerances."""

DESCRIPTION = "Compiles the program ahead of time with AOTInductor (cached on disk)"


def _load() -> Executor:
    from torchexec_inductor._executor import InductorExecutor

    return InductorExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``inductor`` executor."""
    register(
        ExecutorSpec(
            name="inductor", description=DESCRIPTION, load=_load, capabilities=CAPABILITIES
        )
    )
