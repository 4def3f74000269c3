"""The conformance operators this plugin contributes to ``torchexec.testing``.

The kit's ``torchbind`` tier mixes these with its ATen catalog, so every executor under test
runs programs that call methods of the :mod:`torchexec_torchbind.testing` classes and the
``torchexec_testing::scale_add`` operator. The plugin module hands them over through the
``torchexec_conformance_ops`` hook; importing this module imports torch and the kit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from torchexec.testing import InputSpec, make_input
from torchexec.testing.catalog import Args, ObjectSpec, OpSpec, Ref
from torchexec.testing.strategies import Builder, Rejected
from torchexec_torchbind import testing
from torchexec_torchbind.testing import NAMESPACE

__all__ = ["SETUP", "conformance_ops"]

SETUP = ("import torchexec_torchbind.testing", "torchexec_torchbind.testing.load()")
"""What a reproduction script runs before it makes an object or calls ``scale_add``."""

_FLOATS = (torch.float32, torch.float64)
_SCALE = f"{NAMESPACE}.Scale"
_ACCUMULATOR = f"{NAMESPACE}.Accumulator"
_STATEFUL = {_SCALE: False, _ACCUMULATOR: True}


def _weight_shape(b: Builder, like: Ref) -> tuple[int, ...]:
    shape = tuple(b.example(like).shape)
    keep = b.integer(0, len(shape))
    return tuple(1 if b.flag() else s for s in shape[len(shape) - keep :])


def _tensor(b: Builder, shape: tuple[int, ...]) -> torch.Tensor:
    return make_input(InputSpec(shape, torch.float32, seed=b.integer(0, 2**16)))


def _new(b: Builder, qualname: str, init: tuple[Any, ...]) -> Ref:
    return b.obj(ObjectSpec(qualname, init, stateful=_STATEFUL[qualname], setup=SETUP))


def _fits(held: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Whether a tensor of shape ``held`` broadcasts to ``want`` without growing it."""
    pairs = zip(reversed(held), reversed(want), strict=False)
    return len(held) <= len(want) and all(h in (1, w) for h, w in pairs)


def _object(
    b: Builder, qualname: str, like: Ref, init: Callable[[tuple[int, ...]], tuple[Any, ...]]
) -> Ref:
    """An object of ``qualname`` already in the program whose tensor broadcasts to ``like``'s
    shape, or a new one made from ``init(shape)``."""
    want = tuple(b.example(like).shape)
    reusable = [
        Ref(f"o{i}")
        for i, spec in enumerate(b.ir.objects)
        if spec.qualname == qualname and _fits(tuple(spec.init[0].shape), want)
    ]
    if reusable and b.flag():
        return reusable[b.integer(0, len(reusable) - 1)]
    return _new(b, qualname, init(_weight_shape(b, like)))


def _apply(b: Builder) -> Args:
    x = b.pick(_FLOATS)
    o = _object(b, _SCALE, x, lambda s: (_tensor(b, s),))
    return (o, "apply", x), {}


def _get_weight(b: Builder) -> Args:
    scales = [Ref(f"o{i}") for i, s in enumerate(b.ir.objects) if s.qualname == _SCALE]
    if scales and b.flag():
        return (scales[b.integer(0, len(scales) - 1)], "get_weight"), {}
    return (_new(b, _SCALE, (_tensor(b, b.shape(max_rank=2)),)), "get_weight"), {}


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


def conformance_ops() -> list[OpSpec]:
    """The operators, after loading the test library.

    Raises:
        torchexec.ExecutorLoadError: the test library was not built.
    """
    testing.load()
    hop = torch.ops.higher_order.call_torchbind
    scale_add = getattr(torch.ops, NAMESPACE).scale_add.default
    return [
        OpSpec(hop, _apply, "torchbind", name=f"{_SCALE}.apply", setup=SETUP),
        OpSpec(hop, _get_weight, "torchbind", name=f"{_SCALE}.get_weight", setup=SETUP),
        OpSpec(hop, _accumulate, "torchbind", name=f"{_ACCUMULATOR}.add", setup=SETUP),
        OpSpec(scale_add, _scale_add, "torchbind", name=f"{NAMESPACE}.scale_add.default",
               setup=SETUP),
    ]  # fmt: skip
