"""Catalog entries that call the ``torchexec-torchbind`` test classes (``torchexec_testing``)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from torchexec.testing._builder import Builder, Rejected, broadcastable
from torchexec.testing._ir import ObjectSpec, Ref
from torchexec.testing._opspec import Args, OpSpec
from torchexec.testing._values import InputSpec, make_input

__all__ = ["NAMESPACE", "torchbind_ops"]

NAMESPACE = "torchexec_testing"
_FLOATS = (torch.float32, torch.float64)
_SCALE = f"{NAMESPACE}.Scale"
_ACCUMULATOR = f"{NAMESPACE}.Accumulator"


def _weight_shape(b: Builder, like: Ref) -> tuple[int, ...]:
    shape = tuple(b.example(like).shape)
    keep = b.integer(0, len(shape))
    return tuple(1 if b.flag() else s for s in shape[len(shape) - keep :])


def _tensor(b: Builder, shape: tuple[int, ...]) -> torch.Tensor:
    return make_input(InputSpec(shape, torch.float32, seed=b.integer(0, 2**16)))


def _object(b: Builder, qualname: str, like: Ref, init: Any) -> Ref:
    """An object of ``qualname`` already in the program whose tensor broadcasts with ``like``,
    or a new one made by ``init(shape)``."""
    want = tuple(b.example(like).shape)
    reusable = []
    for i, spec in enumerate(b.ir.objects):
        if spec.qualname != qualname:
            continue
        held = tuple(spec.init[0].shape)
        if broadcastable(held, want) and all(h in (1, w) for h, w in zip(
            reversed(held), reversed(want), strict=False)) and len(held) <= len(want):  # fmt: skip
            reusable.append(Ref(f"o{i}"))
    if reusable and b.flag():
        return reusable[b.integer(0, len(reusable) - 1)]
    return b.obj(ObjectSpec(qualname, init(_weight_shape(b, like))))


def _apply(b: Builder) -> Args:
    x = b.pick(_FLOATS)
    o = _object(b, _SCALE, x, lambda s: (_tensor(b, s),))
    return (o, "apply", x), {}


def _get_weight(b: Builder) -> Args:
    scales = [Ref(f"o{i}") for i, s in enumerate(b.ir.objects) if s.qualname == _SCALE]
    if scales and b.flag():
        return (scales[b.integer(0, len(scales) - 1)], "get_weight"), {}
    return (b.obj(ObjectSpec(_SCALE, (_tensor(b, b.shape(max_rank=2)),))), "get_weight"), {}


def _scale_add(b: Builder) -> Args:
    x = b.pick(_FLOATS)
    o = _object(b, _SCALE, x, lambda s: (_tensor(b, s),))
    return (o, x, b.choice([1, 2, 0.5])), {}


def _accumulate(b: Builder) -> Args:
    x = b.pick([torch.float32])
    o = _object(b, _ACCUMULATOR, x, lambda s: (_tensor(b, s), 0))
    if b.example(x).numel() == 0 and tuple(b.example(x).shape) != ():
        raise Rejected("an empty running total says little")
    return (o, "add", x), {}


@functools.cache
def torchbind_ops() -> list[OpSpec]:
    """The entries (loads the test library; ``ImportError`` if the plugin is missing)."""
    from torchexec_torchbind import testing

    testing.load()
    hop = torch.ops.higher_order.call_torchbind
    return [
        OpSpec(hop, _apply, "torchbind", name=f"{_SCALE}.apply"),
        OpSpec(hop, _get_weight, "torchbind", name=f"{_SCALE}.get_weight"),
        OpSpec(hop, _accumulate, "torchbind", name=f"{_ACCUMULATOR}.add"),
        OpSpec(getattr(torch.ops, NAMESPACE).scale_add.default, _scale_add, "torchbind",
               name=f"{NAMESPACE}.scale_add.default"),
    ]  # fmt: skip
