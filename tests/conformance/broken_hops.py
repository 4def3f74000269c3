"""Executors that get a higher-order operator wrong, or declare one unsupported, to prove the
kit's control-flow tier judges them (a pytest plugin for a child run: ``-p broken_hops``).

- ``swapped_cond``: runs ``cond``'s false branch when the predicate is true and the other way;
- ``lost_mutation``: drops every write to the program's inputs (the functionalized custom
  operator's mutation of an input is not copied back);
- ``no_scan``: correct, but declares ``higher_order::scan`` unsupported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.fx
import torch.utils._pytree as pytree

import torchexec

__all__ = ["BROKEN", "HopExecutor", "pytest_configure"]

_HOP = torch.ops.higher_order


class _SwappedCond(torch.fx.Interpreter):
    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if target is _HOP.cond:
            pred, true_fn, false_fn, operands = args
            return target(pred, false_fn, true_fn, operands)
        return super().call_function(target, args, kwargs)


class HopExecutor:
    """The program's module (as ``ep.module()`` unlifts it), broken as ``name`` says (see the
    module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"deliberately broken executor ({name})"
        unsupported = frozenset({"higher_order::scan"}) if name == "no_scan" else frozenset()
        self.capabilities = torchexec.Capabilities(unsupported_ops=unsupported)

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Accepts no options."""
        return torchexec.validate_options(self.name, (), options)

    def prepare(
        self, program: torchexec.Program, options: Mapping[str, object]
    ) -> Callable[..., Any]:
        """The unlifted module, run with the breakage."""
        module = program.exported_program().module()
        if self.name == "swapped_cond":
            interpreter = _SwappedCond(module)
            return lambda *args: pytree.tree_leaves(interpreter.run(*args))
        if self.name == "lost_mutation":  # the module writes to copies of the inputs
            return lambda *args: pytree.tree_leaves(module(*(a.clone() for a in args)))
        return lambda *args: pytree.tree_leaves(module(*args))


BROKEN = ("swapped_cond", "lost_mutation", "no_scan")


def pytest_configure(config: object) -> None:
    """Register the executors before the kit loads them."""
    for name in BROKEN:
        torchexec.register_executor(HopExecutor(name))
