"""Mutants: executors that are aten with ONE subtly wrong kernel, to measure the conformance kit.

Used as a pytest plugin in a child run (``-p mutants`` with this folder on ``PYTHONPATH``):
``pytest_configure`` registers every executor of :data:`MUTANTS`. Each runs the program's ATen
graph node by node with ``torch.fx.Interpreter`` (applying buffer and input mutations as the
``aten`` executor does) and declares ``bitwise=True``: it claims to call aten's kernels, so any
difference is a bug. :data:`MUTANTS` maps each name to the operator and dtype the kit must name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

import torchexec

__all__ = ["MUTANTS", "Mutant", "MutantExecutor", "pytest_configure", "register_all"]

A = torch.ops.aten
Kernel = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]


def _int_true_div(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Integer true division computed as floor division."""
    out = target(*args, **kwargs)
    a, b = args[0], args[1]
    ints = all(isinstance(t, torch.Tensor) and not t.is_floating_point() for t in (a, b))
    return torch.floor(out) if ints else out


def _ignore_alpha(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``alpha`` dropped."""
    return target(*args[:2], **{k: v for k, v in kwargs.items() if k != "alpha"})


def _ignore_keepdim(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``keepdim=True`` ignored."""
    return target(*args[:2], **{k: v for k, v in kwargs.items() if k != "keepdim"})


def _half_via_bfloat16(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """float16 computed through bfloat16 (a wrong half path)."""
    x = args[0]
    if x.dtype != torch.float16:
        return target(*args, **kwargs)
    return target(x.to(torch.bfloat16), *args[1:], **kwargs).to(torch.float16)


def _ulp_sum(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One element of a float32 sum one ULP off (a different summation order)."""
    out = target(*args, **kwargs)
    if out.dtype != torch.float32 or out.numel() == 0:
        return out
    flat = out.clone().reshape(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    return flat.reshape(out.shape)


def _dropped_mutation(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An in-place operator applied to a copy: the buffer it mutates keeps its old value."""
    return target(args[0].clone(), *args[1:], **kwargs)


def _copy_view(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A view operator's output returned as a contiguous copy (wrong strides, no alias)."""
    return target(*args, **kwargs).contiguous().clone()


def _empty_sum(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A sum over an empty tensor gives ones instead of zeros."""
    out = target(*args, **kwargs)
    return torch.ones_like(out) if args[0].numel() == 0 else out


def _broadcast_first(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A size-1 dim of the first operand broadcast as if it were padded with zeros."""
    out = target(*args, **kwargs)
    a = args[0]
    if not isinstance(a, torch.Tensor) or a.dim() == 0 or out.dim() == 0:
        return out
    shape = (1,) * (out.dim() - a.dim()) + tuple(a.shape)
    for d, (s, n) in enumerate(zip(shape, out.shape, strict=True)):
        if s == 1 and n > 1:
            wrong = torch.zeros(out.shape, dtype=a.dtype)
            wrong.narrow(d, 0, 1).copy_(a.reshape(shape).expand(out.shape).narrow(d, 0, 1))
            return target(wrong, *args[1:], **kwargs)
    return out


@dataclass(frozen=True)
class Mutant:
    """One wrong kernel and what the kit must report.

    Attributes:
        target: the ATen overload whose kernel is wrong.
        kernel: computes the wrong result from ``(target, args, kwargs)``.
        operator, dtype: what a failure must name (``operator`` is a contract check's name for
            mutants only a contract check can see; ``dtype`` ``None``: any dtype, the bug is in
            every one).
        tier: the tier expected to catch it.
    """

    target: Any
    kernel: Kernel
    operator: str
    dtype: str | None
    tier: str = "coverage"


MUTANTS: dict[str, Mutant] = {
    "int_true_div": Mutant(A.div.Tensor, _int_true_div, "aten.div.Tensor", "int64"),
    "ignore_alpha": Mutant(A.sub.Tensor, _ignore_alpha, "aten.sub.Tensor", "float32"),
    "ignore_keepdim": Mutant(A.amax.default, _ignore_keepdim, "aten.amax.default", "float32"),
    "half_via_bf16": Mutant(A.tanh.default, _half_via_bfloat16, "aten.tanh.default", "float16"),
    "ulp_sum": Mutant(A.sum.dim_IntList, _ulp_sum, "aten.sum.dim_IntList", "float32"),
    "drop_buffer_mutation": Mutant(
        A.add_.Tensor, _dropped_mutation, "state", "float32", tier="contract"
    ),
    "copy_view": Mutant(A.permute.default, _copy_view, "aten.permute.default", "float32"),
    "empty_sum": Mutant(A.sum.dim_IntList, _empty_sum, "aten.sum.dim_IntList", None),
    "broadcast_first": Mutant(A.mul.Tensor, _broadcast_first, "aten.mul.Tensor", None),
}
"""Every mutant by executor name."""


class _Interpreter(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule, mutant: Mutant) -> None:
        super().__init__(gm)
        self.mutant = mutant

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if target is self.mutant.target:
            return self.mutant.kernel(target, tuple(args), dict(kwargs))
        return super().call_function(target, args, kwargs)


class MutantExecutor:
    """aten with the one wrong kernel of ``MUTANTS[name]``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mutant = MUTANTS[name]
        self.description = f"mutant executor: aten with one wrong kernel ({name})"
        self.capabilities = torchexec.Capabilities(bitwise=True)

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Accepts no options."""
        return torchexec.validate_options(self.name, (), options)

    def prepare(
        self, program: torchexec.Program, options: Mapping[str, object]
    ) -> Callable[..., Sequence[Any]]:
        """Interpret the graph; apply the buffer and input mutations it returns."""
        interpreter = _Interpreter(program.graph_module(), self.mutant)
        lifted = tuple(program.lifted_state())
        state = program.state()
        kinds = list(enumerate(program.graph_outputs()))

        def run(*args: Any) -> Sequence[Any]:
            outs = interpreter.run(*lifted, *args)
            user: list[Any] = []
            with torch.no_grad():
                for i, out in kinds:
                    if out.kind == "buffer_mutation" and out.target is not None:
                        state[out.target].copy_(outs[i])
                    elif out.kind == "user_input_mutation" and out.user_input is not None:
                        args[out.user_input].copy_(outs[i])
                    else:
                        user.append(outs[i])
            return user

        return run


def register_all() -> list[torchexec.Registration]:
    """Register every mutant in this process."""
    return [torchexec.register_executor(MutantExecutor(name)) for name in MUTANTS]


def pytest_configure(config: object) -> None:
    """Register the mutants before the kit loads them."""
    register_all()
