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
from typing import TYPE_CHECKING

import lazy_loader

from torchexec import Executor, ExecutorSpec, hookimpl
from torchexec_torchbind._meta import CAPABILITIES, DESCRIPTION, NAME

if TYPE_CHECKING:
    from torchexec.testing.catalog import OpSpec
    from torchexec_torchbind._encode import (
        ENGINE_FORMAT,
        ENGINE_HOPS,
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
    "ENGINE_HOPS",
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
    "torchexec_conformance_ops",
    "torchexec_register_executors",
]

# The public names load their modules on first use (lazy_loader caches them on the module).
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_encode": [
            "ENGINE_FORMAT",
            "ENGINE_HOPS",
            "ENGINE_VERSION",
            "InputSpec",
            "encode_plan",
            "encode_static",
        ],
        "_engine": ["EngineRunner", "build_engine", "engine_from_plan_state"],
        "_executor": ["TorchbindExecutor"],
        "_library": ["library_path", "load_library"],
    },
)


def _load() -> Executor:
    from torchexec_torchbind._executor import TorchbindExecutor

    return TorchbindExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``torchbind`` executor."""
    register(
        ExecutorSpec(
            name=NAME,
            description=DESCRIPTION,
            load=_load,
            capabilities=CAPABILITIES,
        )
    )


@hookimpl
def torchexec_conformance_ops(register: Callable[[OpSpec], None]) -> None:
    """Contribute the test classes' methods and ``scale_add`` to the conformance kit."""
    from torchexec_torchbind.conformance import conformance_ops

    for spec in conformance_ops():
        register(spec)
