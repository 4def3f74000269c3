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

A plugin may also contribute operators of its own (TorchBind classes, custom operators) to the
conformance kit through :func:`torchexec_conformance_ops`; the kit then tests every executor on
programs that call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from torchexec._registry import ExecutorSpec
    from torchexec.testing.catalog import OpSpec

__all__ = [
    "PLUGIN_API_VERSION",
    "hookimpl",
    "hookspec",
    "torchexec_conformance_ops",
    "torchexec_register_executors",
]

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


@hookspec
def torchexec_conformance_ops(register: Callable[[OpSpec], None]) -> None:
    """Contribute operators to the conformance kit (``torchexec.testing``).

    Call ``register`` once per :class:`~torchexec.testing.OpSpec`: the operator the generated
    FX node calls (a custom operator, or ``torch.ops.higher_order.call_torchbind`` for a method
    of a TorchBind object), and a rule that draws valid arguments from the kit's
    :class:`~torchexec.testing.strategies.Builder`. The kit's ``torchbind`` tier runs programs
    mixing these operators with its ATen catalog on every executor under test, so the operators
    of one plugin test every other executor too.

    The kit calls this hook only when it runs, never while executors are listed or loaded: import
    the module that defines the specs inside the hook, and load any library the operators need
    there. The data of a spec is all the kit knows about the operator:

    - ``OpSpec.setup`` and ``ObjectSpec.setup``: the Python lines a failure's reproduction script
      runs first (imports, loading the library);
    - ``ObjectSpec.stateful``: the object changes when its methods are called, so the kit makes
      it afresh for every run and never cuts a call on it out of its program.

    Raising ``torchexec.ExecutorLoadError`` here (a library that is not built) makes the kit skip
    the tier with that message; any other exception fails it.

    Example::

        @hookimpl
        def torchexec_conformance_ops(register):
            from my_executor_pkg.conformance import conformance_ops   # imports torch

            for spec in conformance_ops():
                register(spec)

    with, in ``my_executor_pkg/conformance.py``::

        import torch
        from torchexec.testing.catalog import OpSpec

        import my_executor_pkg.ops

        SETUP = ("import my_executor_pkg.ops", "my_executor_pkg.ops.load()")

        def _double(b):                  # b: torchexec.testing.strategies.Builder
            x = b.pick([torch.float32])  # a float32 value of the program, or a fresh one
            return (x,), {}

        def conformance_ops():
            my_executor_pkg.ops.load()
            return [OpSpec(torch.ops.my_ns.double.default, _double, "torchbind", setup=SETUP)]
    """
