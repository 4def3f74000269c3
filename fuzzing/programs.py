"""The valid programs the fuzzer starts from, as modules with their inputs.

Each covers a different part of the serialized format: scalar and keyword arguments,
several outputs and ``Tensor[]`` returns, views with size and stride lists, tensor lists,
parameters / buffers / lifted constants, buffer and user-input mutations, dtype / layout /
memory-format / device enums, SymInt nodes of a dynamic-shape program, a TorchBind object, and
higher-order operators with subgraphs (``cond``, ``while_loop``, ``map_impl``, ``scan``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PROGRAMS", "TESTING_NS", "ProgramSpec"]

TESTING_NS = "torchexec_testing"
"""The operator namespace of the TorchBind test library (``torchexec_torchbind.testing``)."""


class Elementwise(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.add(a, b, alpha=2).mul(0.5).relu()
        w = torch.where(a > b, a, b).clamp(min=-0.5, max=1.0)
        return h - w * 3, (a.pow(2) + 1).to(torch.float64)


class MultiOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values, indices = x.topk(2, dim=1)
        top, where = x.max(dim=0)
        parts = torch.split(x, 2, dim=1)
        var, mean = torch.var_mean(x, dim=1, correction=1)
        return values, indices, top, where, parts[0], parts[-1] * 2, var, mean


class Views(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = x.view(6, 4) + 1
        b = x.permute(2, 0, 1) * 2
        c = x.transpose(0, 1).reshape(3, 8)
        d = x[:, 1:3, ::2] - 1
        e = x.select(2, 1).unsqueeze(0).expand(2, 2, 3) + 0
        f = x.narrow(1, 0, 2).flatten().sum(0, keepdim=True)
        return a, b, c, d, e, f


class Cat(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c = torch.cat([a, b, a], dim=0)
        s = torch.stack([a, b], dim=1)
        d = torch.cat([a.sin(), b], dim=-1)
        return c * 1, s + 0, d.cumsum(1)


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = torch.nn.Linear(8, 16)
        self.norm = torch.nn.LayerNorm(16)
        self.l2 = torch.nn.Linear(16, 4)
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 4))
        self.offset = torch.tensor([0.25, -0.25, 0.5, 0.0])  # a lifted tensor constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(torch.nn.functional.gelu(self.l1(x)))
        out: torch.Tensor = self.l2(h) * self.get_buffer("scale") + self.offset
        return out.softmax(-1)


class Stateful(torch.nn.Module):
    """Buffer mutations and a user-input mutation (outputs of kind buffer/user_input_mutation)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("running", torch.zeros(5))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        running = self.get_buffer("running")
        self.get_buffer("count").add_(1)
        running.mul_(0.9).add_(x.mean(0) * 0.1)
        y.mul_(2)
        return x + y + running


class Enums(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        full = torch.full((2, 3), 1.5, dtype=torch.float16, device="cpu")
        ar = torch.arange(6, dtype=torch.int64).view(2, 3)
        cl = x.contiguous(memory_format=torch.channels_last) * 2
        z = torch.zeros_like(x, memory_format=torch.contiguous_format) + x
        return full * 2, ar + 1, cl, z.to(torch.bfloat16), torch.ones(3, layout=torch.strided) + 1


class Dynamic(torch.nn.Module):
    """Exported with a dynamic first dimension: SymInt nodes and ``_operator`` arithmetic."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        y = x.reshape(n * 2, -1) + 1
        z = torch.ones(n // 2 + 1, x.shape[1])
        return y, z * n


class TorchBindModel(torch.nn.Module):
    """A ``Scale`` object: a method call and an operator taking the object."""

    def __init__(self) -> None:
        super().__init__()
        from torchexec_torchbind import testing

        self.scale: Any = testing.scale(torch.tensor([1.0, -2.0, 0.5]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.scale.apply(x).relu()
        z = torch.ops.torchexec_testing.scale_add(self.scale, y, 3)
        return z * 2, torch.ops.torchexec_testing.scale_add(self.scale, x)


class ControlFlow(torch.nn.Module):
    """A data-dependent ``cond`` with two outputs around a ``while_loop`` with a counter."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        def yes(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x + y, x.sin()

        def no(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x - y, y.cos()

        def body(i: torch.Tensor, acc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return i + 1, acc * 0.5 + y

        cond: Any = torch.cond
        a, b = cond(x.sum() > 0, yes, no, (x, y))
        loop: Any = torch._higher_order_ops.while_loop
        i, acc = loop(lambda i, acc: i < 3, body, (torch.zeros((), dtype=torch.int64), a))
        return acc, b, i


class MapScan(torch.nn.Module):
    """``map`` with an extra argument and ``scan`` with a carry and an additional input."""

    def forward(self, xs: torch.Tensor, w: torch.Tensor) -> Any:
        hop_map: Any = torch._higher_order_ops.map
        scan: Any = torch._higher_order_ops.scan
        mapped = hop_map(lambda x, w: (x * w).relu(), xs, w)

        def combine(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            nxt = c * w + x
            return nxt, nxt.clone()

        carry, ys = scan(combine, torch.zeros_like(w), mapped)
        return carry, ys


def _dynamic_shapes() -> Any:
    return {"x": {0: torch.export.Dim("n", min=2, max=64)}}


@dataclass(frozen=True)
class ProgramSpec:
    """One corpus program.

    Attributes:
        name: the program's name in the corpus.
        make: builds the module (with fixed weights: the seed is set first).
        inputs: builds the example inputs.
        dynamic_shapes: what ``torch.export.export`` gets as ``dynamic_shapes``.
        namespaces: operator namespaces the loaders must allow besides aten and prims.
        needs_testing_lib: the program holds objects of ``torchexec_torchbind.testing``.
        mutates: the program updates buffers or user inputs (each case needs fresh copies).
        engine: the torchbind loader's cases use it (its plan mutator and plan interpreter do
            not model the subgraphs of higher-order operators, so those programs are left out).
    """

    name: str
    make: Callable[[], torch.nn.Module]
    inputs: Callable[[], tuple[torch.Tensor, ...]]
    dynamic_shapes: Callable[[], Any] | None = None
    namespaces: tuple[str, ...] = ()
    needs_testing_lib: bool = False
    mutates: bool = False
    engine: bool = True


PROGRAMS: tuple[ProgramSpec, ...] = (
    ProgramSpec("elementwise", Elementwise, lambda: (torch.randn(4, 5), torch.randn(4, 5))),
    ProgramSpec("multi_output", MultiOutput, lambda: (torch.randn(3, 6),)),
    ProgramSpec("views", Views, lambda: (torch.randn(2, 3, 4),)),
    ProgramSpec("cat", Cat, lambda: (torch.randn(2, 3), torch.randn(2, 3))),
    ProgramSpec("mlp", MLP, lambda: (torch.randn(3, 8),)),
    ProgramSpec("stateful", Stateful, lambda: (torch.randn(4, 5), torch.randn(4, 5)), mutates=True),
    ProgramSpec("enums", Enums, lambda: (torch.randn(2, 3, 4, 5),)),
    ProgramSpec("dynamic", Dynamic, lambda: (torch.randn(6, 4),), dynamic_shapes=_dynamic_shapes),
    ProgramSpec(
        "torchbind",
        TorchBindModel,
        lambda: (torch.randn(4, 3),),
        namespaces=(TESTING_NS,),
        needs_testing_lib=True,
    ),
    ProgramSpec(
        "control_flow", ControlFlow, lambda: (torch.randn(3), torch.randn(3)), engine=False
    ),
    ProgramSpec("map_scan", MapScan, lambda: (torch.randn(4, 3), torch.randn(3)), engine=False),
)
"""The corpus, in a fixed order (case ``i`` of a batch starts from program ``i % len``)."""
