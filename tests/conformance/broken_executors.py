"""Deliberately broken executors, registered in-process, to prove the conformance kit fails them.

Used as a pytest plugin in a child run (``-p broken_executors`` with this folder on
``PYTHONPATH``): ``pytest_configure`` registers every executor of :data:`BROKEN`. Each runs the
ATen graph node by node with ``torch.fx.Interpreter`` and breaks one thing:

- ``perturb_mul``: adds 1 to every ``aten.mul.Tensor`` result;
- ``drop_neg``: skips ``aten.neg.default`` nodes (their input flows on unchanged);
- ``perturb_mul_declared``: like ``perturb_mul`` but declares ``aten::mul`` unsupported;
- ``loose_options``: correct results, but accepts any option;
- ``abort_neg``: kills the process (``os.abort``) on ``aten.neg.default``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.fx

import torchexec
from torchexec._program import lifted_state

__all__ = ["BROKEN", "BrokenExecutor", "pytest_configure", "register_all"]

A = torch.ops.aten


class _Interpreter(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule, mode: str) -> None:
        super().__init__(gm)
        self.mode = mode

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if self.mode.startswith("perturb_mul") and target is A.mul.Tensor:
            out = super().call_function(target, args, kwargs)
            return ~out if out.dtype == torch.bool else out + 1
        if self.mode == "drop_neg" and target is A.neg.default:
            return args[0]
        if self.mode == "abort_neg" and target is A.neg.default:
            os.abort()
        return super().call_function(target, args, kwargs)


class BrokenExecutor:
    """An executor broken in the way its ``name`` says (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"deliberately broken executor ({name})"
        unsupported = frozenset({"aten::mul"}) if name == "perturb_mul_declared" else frozenset()
        self.capabilities = torchexec.Capabilities(unsupported_ops=unsupported)

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Accepts no options, except ``loose_options``, which accepts anything."""
        if self.name == "loose_options":
            return dict(options or {})
        return torchexec.validate_options(self.name, (), options)

    def prepare(
        self, program: torchexec.Program, options: Mapping[str, object]
    ) -> Callable[..., Sequence[Any]]:
        """Interpret the program's graph with the breakage."""
        ep = program.exported_program()
        state = lifted_state(ep)
        interpreter = _Interpreter(ep.graph_module, self.name)

        def run(*args: Any) -> Sequence[Any]:
            out: Sequence[Any] = interpreter.run(*state, *args)
            return out

        return run


BROKEN = ("perturb_mul", "drop_neg", "perturb_mul_declared", "loose_options", "abort_neg")


def register_all() -> list[torchexec.Registration]:
    """Register every broken executor in this process."""
    return [torchexec.register_executor(BrokenExecutor(name)) for name in BROKEN]


def pytest_configure(config: object) -> None:
    """Register the broken executors before the kit loads them."""
    register_all()
