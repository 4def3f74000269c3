"""Plugin module of the ``proxy`` executor, and its public loader API.

Importing this module is cheap: it registers the executor through the ``torchexec`` hook and
imports the implementation (the loader, the runner, the extern-kernel proxy) only when one of the
names below is first used.

Two public modules serve executors built on the proxy's loader (the ``torchbind`` executor is
one): :mod:`torchexec_proxy.options` (the options and their validation) and
:mod:`torchexec_proxy.claims` (which nodes the loader runs, for ``supports``).

>>> import torchexec_proxy                                   # doctest: +SKIP
>>> plan = torchexec_proxy.load_plan(torchexec.Program.from_path("model.pt2"))
>>> runner = torchexec_proxy.ProxyRunner(plan)
>>> outputs = runner(x)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import lazy_loader

from torchexec import Executor, ExecutorSpec, hookimpl
from torchexec_proxy._meta import CAPABILITIES, DESCRIPTION, NAME

if TYPE_CHECKING:
    from torchexec_proxy._api import load_plan, load_plan_from_json
    from torchexec_proxy._enums import DTYPES, LAYOUTS, MEMORY_FORMATS
    from torchexec_proxy._executor import ProxyExecutor
    from torchexec_proxy._extern import ExternKernelProxy
    from torchexec_proxy._hoprun import LoopLimitError
    from torchexec_proxy._runner import ProxyRunner
    from torchexec_proxy._targets import DEFAULT_NAMESPACES, normalize_namespaces
    from torchexec_proxy.plan import Plan

__all__ = [
    "DEFAULT_NAMESPACES",
    "DTYPES",
    "LAYOUTS",
    "MEMORY_FORMATS",
    "ExternKernelProxy",
    "LoopLimitError",
    "Plan",
    "ProxyExecutor",
    "ProxyRunner",
    "load_plan",
    "load_plan_from_json",
    "normalize_namespaces",
    "torchexec_register_executors",
]

# The public names load their modules on first use (lazy_loader caches them on the module).
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submodules={"claims", "options"},
    submod_attrs={
        "_targets": ["DEFAULT_NAMESPACES", "normalize_namespaces"],
        "_enums": ["DTYPES", "LAYOUTS", "MEMORY_FORMATS"],
        "_extern": ["ExternKernelProxy"],
        "_hoprun": ["LoopLimitError"],
        "plan": ["Plan"],
        "_executor": ["ProxyExecutor"],
        "_runner": ["ProxyRunner"],
        "_api": ["load_plan", "load_plan_from_json"],
    },
)


def _load() -> Executor:
    from torchexec_proxy._executor import ProxyExecutor

    return ProxyExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``proxy`` executor."""
    register(
        ExecutorSpec(name=NAME, description=DESCRIPTION, load=_load, capabilities=CAPABILITIES)
    )
