"""Programs with higher-order operators (cond, while_loop, map, scan, nested), shared by the
proxy's and the torchbind executor's tests: each a module and a maker of its inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import _higher_order_ops, nn

__all__ = ["CASES", "Cond", "Loop", "Mapped", "Nested", "Scanned", "ShapeCond"]

T = torch.Tensor
# torch's control-flow entry points, untyped for mypy (their stubs do not describe pytrees).
cond: Any = torch.cond
hop_map: Any = _higher_order_ops.map
scan: Any = _higher_order_ops.scan
while_loop: Any = _higher_order_ops.while_loop


class Cond(nn.Module):
    """A data-dependent branch on a bool tensor; two outputs; a parameter used in a branch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(3))

    def forward(self, x: T, y: T) -> tuple[T, T]:
        def yes(x: T, y: T, w: T) -> tuple[T, T]:
            return x + y * w, x.sin()

        def no(x: T, y: T, w: T) -> tuple[T, T]:
            return x - y, (x * w).cos()

        a, b = cond(x.sum() > 0, yes, no, (x, y, self.w))
        return a * 2, b


class ShapeCond(nn.Module):
    """A branch chosen from a SymBool (the batch size), with sym_size inside the branches."""

    def forward(self, x: T) -> Any:
        def big(x: T) -> T:
            return x.sum(0, keepdim=True).expand(x.shape[0], -1) + 1

        def small(x: T) -> T:
            return x * x.shape[0]

        return cond(x.shape[0] > 4, big, small, (x,))


class Loop(nn.Module):
    """A bounded counter, two carried tensors and an additional input."""

    def forward(self, x: T, step: T) -> tuple[T, T, T]:
        def go_on(i: T, acc: T) -> T:
            return i < 5

        def body(i: T, acc: T) -> tuple[T, T]:
            return i + 1, acc * 0.5 + step  # step: an additional input

        i, acc = while_loop(go_on, body, (torch.zeros((), dtype=torch.int64), x))
        return i, acc, acc.sum()


class Mapped(nn.Module):
    """map over two tensors with an extra argument; two stacked outputs."""

    def forward(self, xs: T, ys: T, z: T) -> tuple[T, T]:
        def body(x: T, y: T, z: T) -> tuple[T, T]:
            return x * y + z, (x - z).relu()

        out = hop_map(body, xs, ys, z)
        return out[0], out[1]


class Scanned(nn.Module):
    """scan with a carry, two xs, an additional input, reverse order."""

    def forward(self, init: T, xs: T, ws: T, bias: T) -> tuple[T, T, T]:
        def combine(c: T, xw: tuple[T, T]) -> tuple[T, tuple[T, T]]:
            nxt = c * xw[1] + xw[0] + bias
            return nxt, (nxt.clone(), c.sum())

        carry, (ys, sums) = scan(combine, init, (xs, ws), reverse=True)
        return carry, ys, sums


class Nested(nn.Module):
    """A cond inside a map body, a while_loop inside a cond branch."""

    def forward(self, xs: T, n: T) -> tuple[T, T]:
        def row(x: T) -> Any:
            return cond(x.sum() > 0, lambda x: x * 2, lambda x: -x, (x,))

        def loop(x: T, n: T) -> Any:
            def body(i: T, x: T) -> tuple[T, T]:
                return i + 1, x + 1

            return while_loop(lambda i, x: i < n, body, (torch.zeros_like(n), x))[1]

        mapped = hop_map(row, xs)
        looped = cond(n > 0, loop, lambda x, n: x.clone(), (xs, n))
        return mapped, looped


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple[T, ...]]]] = {
    "cond_true": (Cond, lambda: (torch.ones(3), torch.randn(3))),
    "cond_false": (Cond, lambda: (-torch.ones(3), torch.randn(3))),
    "while_loop": (Loop, lambda: (torch.randn(4), torch.randn(4))),
    "map": (Mapped, lambda: (torch.randn(5, 3), torch.randn(5, 3), torch.randn(3))),
    "scan": (
        Scanned,
        lambda: (torch.randn(3), torch.randn(6, 3), torch.randn(6, 3), torch.randn(3)),
    ),
    "nested": (Nested, lambda: (torch.randn(4, 3), torch.tensor(3))),
    "nested_no_loop": (Nested, lambda: (torch.randn(4, 3), torch.tensor(-1))),
}
