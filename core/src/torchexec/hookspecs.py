"""Hook specifications: the plugin author's manual.

A torchexec plugin is a module named by an entry point in the group ``torchexec``. It implements
the hooks below, marked with :data:`hookimpl`. The module must import cheaply: register a ``load``
callable and do the heavy work (importing a compiler, loading a C++ library) inside it.

Example (``pyproject.toml``)::

    [project.entry-points.torchexec]
    my_executor = "my_executor_pkg"

Example (``my_executor_pkg/__init__.py``)::

    from torchexec import ExecutorSpec, hookimpl

    def _load():
        from my_executor_pkg._executor import MyExecutor   # heavy imports happen here
        return MyExecutor()

    @hookimpl
    def torchexec_register_executors(register):
        register(ExecutorSpec(name="my_executor", description="Runs programs on ...", load=_load))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from torchexec._registry import ExecutorSpec

__all__ = ["PLUGIN_API_VERSION", "hookimpl", "hookspec", "torchexec_register_executors"]

PROJECT_NAME = "torchexec"

PLUGIN_API_VERSION = 1
"""Version of the plugin contract (these hooks, :class:`~torchexec.ExecutorSpec` and the
:class:`~torchexec.Executor` protocol). A plugin whose spec names another version is listed as broken."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification (used by torchexec itself)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementation: ``@torchexec.hookimpl``."""


@hookspec
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the executors this plugin provides.

    Call ``register`` once per executor with an :class:`~torchexec.ExecutorSpec`. The registry
    records which distribution made each call; an invalid spec, an exception raised here, or a
    name another distribution also registers marks the executor as broken without affecting the
    other plugins.

    Example::

        @hookimpl
        def torchexec_register_executors(register):
            register(ExecutorSpec(name="aten", description="Eager reference", load=_load))
    """
