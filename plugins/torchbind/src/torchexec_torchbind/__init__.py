"""Plugin module of the ``torchbind`` executor, and the engine's Python API.

Importing this module is cheap: it registers the executor through the ``torchexec`` hook; the
implementation is imported, and the compiled engine library loaded, when the executor is first
used or one of the names below is first accessed.

>>> import torchexec                                                     # doctest: +SKIP
>>> run = torchexec.prepare(model, x, executor="torchbind")
>>> engine = run.runner.engine          # a torch.classes.torchexec.Engine
>>> engine.run([x])                     # the same call, without torchexec
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from torchexec import Executor, ExecutorSpec, hookimpl
from torchexec_torchbind._meta import CAPABILITIES, DESCRIPTION

if TYPE_CHECKING:
    from torchexec_torchbind._encode import (
        ENGINE_FORMAT,
        ENGINE_VERSION,
        InputSpec,
        encode_plan,
        encode_static,
    )
    from torchexec_torchbind._engine import EngineRunner, build_engine, engine_from_plan_state
    from torchexec_torchbind._executor import TorchbindExecutor
    from torchexec_torchbind._library import library_path, load_library

__all__ = [
    "CAPABILITIES",
    "DESCRIPTION",
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

_LAZY = {
    "ENGINE_FORMAT": "torchexec_torchbind._encode",
    "ENGINE_VERSION": "torchexec_torchbind._encode",
    "EngineRunner": "torchexec_torchbind._engine",
    "InputSpec": "torchexec_torchbind._encode",
    "TorchbindExecutor": "torchexec_torchbind._executor",
    "build_engine": "torchexec_torchbind._engine",
    "encode_plan": "torchexec_torchbind._encode",
    "encode_static": "torchexec_torchbind._encode",
    "engine_from_plan_state": "torchexec_torchbind._engine",
    "library_path": "torchexec_torchbind._library",
    "load_library": "torchexec_torchbind._library",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchexec_torchbind' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _load() -> Executor:
    from torchexec_torchbind._executor import TorchbindExecutor

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
