"""Plugin module of the ``torchbind`` executor, and the engine's Python API.

Importing this module is cheap: the compiled engine library is loaded when the executor is first
used (or :func:`load_library` is called).

>>> import torchexec
>>> run = torchexec.prepare(model, x, executor="torchbind")   # doctest: +SKIP
>>> engine = run.runner.engine          # a torch.classes.torchexec.Engine  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from torchexec import Executor, ExecutorSpec, hookimpl
from torchexec_torchbind._encode import (
    ENGINE_FORMAT,
    ENGINE_VERSION,
    InputSpec,
    encode_plan,
    encode_static,
)
from torchexec_torchbind._engine import EngineRunner, build_engine, engine_from_plan_state
from torchexec_torchbind._executor import CAPABILITIES, DESCRIPTION, TorchbindExecutor
from torchexec_torchbind._library import library_path, load_library

__all__ = [
    "ENGINE_FORMAT",
    "ENGINE_VERSION",
    "EngineRunner",
    "InputSpec",
    "TorchbindExecutor",
    "build_engine",
    "encode_plan",
    "encode_static",
    "engine_from_plan_state",
    "library_path",
    "load_library",
    "torchexec_register_executors",
]


def _load() -> Executor:
    return TorchbindExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``torchbind`` executor."""
    register(
        ExecutorSpec(
            name="torchbind",
            description=DESCRIPTION,
            load=_load,
            capabilities=CAPABILITIES,
        )
    )
