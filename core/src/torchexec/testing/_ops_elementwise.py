"""Catalog: elementwise operators, comparisons, casts and tensor creation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchexec.testing._builder import Args, Builder, OpSpec, Rule
from torchexec.testing._values import ALL_DTYPES, FLOAT_DTYPES

__all__ = ["ELEMENTWISE_OPS"]

A = torch.ops.aten
F = FLOAT_DTYPES
NUM = (*FLOAT_DTYPES, torch.int64)
ALL = ALL_DTYPES
INT_BOOL = (torch.int64, torch.bool)

Extra = Callable[[Builder], dict[str, Any]]
Scalars = Callable[[Builder], list[Any]]


def unary(
    dtypes: Sequence[torch.dtype], extra: Scalars | None = None, kw: Extra | None = None
) -> Rule:
    """``op(x, *scalars, **kwargs)`` on one tensor of ``dtypes``."""

    def rule(b: Builder) -> Args:
        x = b.pick(dtypes)
        return (x, *(extra(b) if extra else [])), (kw(b) if kw else {})

    return rule


def binary(dtypes: Sequence[torch.dtype], kw: Extra | None = None) -> Rule:
    """``op(a, b)`` on two broadcastable tensors, in either order (type promotion included)."""

    def rule(b: Builder) -> Args:
        x = b.pick(dtypes)
        y = b.partner(x, dtypes)
        first, second = (y, x) if b.flag() else (x, y)
        return (first, second), (kw(b) if kw else {})

    return rule


def with_scalar(dtypes: Sequence[torch.dtype], scalars: Sequence[object]) -> Rule:
    """``op(x, scalar)``."""

    def rule(b: Builder) -> Args:
        return (b.pick(dtypes), b.choice(scalars)), {}

    return rule


def _alpha(b: Builder) -> dict[str, Any]:
    alpha = b.choice([None, 2, -1, 0.5])
    return {} if alpha is None else {"alpha": alpha}


def _clamp(b: Builder) -> list[Any]:
    lo = b.choice([None, -1.0, 0.0, -2])
    hi = b.choice([None, 1.0, 2.5, 3])
    if lo is None and hi is None:
        lo = 0.0
    return [lo, hi]


def _nan_to_num(b: Builder) -> list[Any]:
    return [b.choice([None, 0.0, 7.0]), b.choice([None, 100.0]), b.choice([None, -100.0])]


def _where(b: Builder) -> Args:
    x = b.pick(ALL)
    y = b.partner(x, ALL)
    cond = b.partner(x, [torch.bool])
    return (cond, x, y), {}


def _masked_fill(b: Builder) -> Args:
    x = b.pick(ALL)
    shape = tuple(b.example(x).shape)
    keep = b.integer(0, len(shape))
    mask_shape = tuple(1 if b.flag() else s for s in shape[len(shape) - keep :])
    mask = b.pick([torch.bool], shape=mask_shape)
    value = b.choice([0.0, -1.5, 3, float("nan")]) if b.example(x).is_floating_point() else 1
    return (x, mask, value), {}


def _addcmul(b: Builder) -> Args:
    x = b.pick(F)
    t1 = b.partner(x, F)
    t2 = b.partner(x, F)
    value = b.choice([None, 0.5, -2.0])
    return (x, t1, t2), ({} if value is None else {"value": value})


def _lerp(b: Builder) -> Args:
    x = b.pick(F)
    end = b.pick([b.example(x).dtype], shape=tuple(b.example(x).shape))
    return (x, end, b.choice([0.5, 0.25, 1.5])), {}


def _cast(b: Builder) -> Args:
    return (b.pick(ALL), b.choice(ALL)), {}


def _to_copy(b: Builder) -> Args:
    return (b.pick(ALL),), {"dtype": b.choice(ALL)}


def _full(b: Builder) -> Args:
    dtype = b.choice(ALL)
    value: object = b.choice([1.5, -2.0, 0.0]) if dtype.is_floating_point else 1
    if dtype == torch.bool:
        value = True
    return (list(b.shape()), value), {"dtype": dtype}


def _arange(b: Builder) -> Args:
    dtype = b.choice([torch.int64, torch.float32, torch.float64])
    start = b.integer(-3, 2)
    end = start + b.integer(0, 6)
    step = b.choice([1, 2] if dtype == torch.int64 else [1, 0.5, 2])
    return (start, end, step), {"dtype": dtype}


def _like(fill: bool) -> Rule:
    def rule(b: Builder) -> Args:
        x = b.pick(ALL)
        dtype = b.choice([None, *ALL])
        kw = {} if dtype is None else {"dtype": dtype}
        if fill:
            value = True if dtype == torch.bool else b.choice([2, -1])
            return (x, value), kw
        return (x,), kw

    return rule


def _ops() -> list[OpSpec]:
    ops: list[OpSpec] = []

    def add(target: Any, rule: Rule, group: str) -> None:
        ops.append(OpSpec(target, rule, group))

    for target in (A.abs.default, A.neg.default, A.relu.default, A.sign.default):
        add(target, unary(NUM), "unary")
    for target in (A.floor.default, A.ceil.default, A.trunc.default, A.round.default):
        add(target, unary(F), "unary")
    for target in (
        A.exp.default, A.log.default, A.sqrt.default, A.rsqrt.default, A.sin.default,
        A.cos.default, A.tanh.default, A.sigmoid.default, A.silu.default, A.reciprocal.default,
        A.erf.default, A.log1p.default, A.expm1.default, A.atan.default,
    ):  # fmt: skip
        add(target, unary(F), "unary")
    add(A.logical_not.default, unary(ALL), "unary")
    add(A.bitwise_not.default, unary(INT_BOOL), "unary")
    add(A.isnan.default, unary(ALL), "unary")
    add(A.gelu.default, unary(F, kw=lambda b: {"approximate": b.choice(["none", "tanh"])}), "unary")
    add(A.clamp.default, unary(NUM, _clamp), "unary")
    add(A.leaky_relu.default, unary(F, lambda b: [b.choice([0.01, 0.2])]), "unary")
    add(A.hardtanh.default, unary(F, lambda b: [-0.5, b.choice([0.5, 2.0])]), "unary")
    add(A.nan_to_num.default, unary(F, _nan_to_num), "unary")
    add(A.pow.Tensor_Scalar, unary(F, lambda b: [b.choice([2, 0.5, -1, 3])]), "unary")
    add(A.round.decimals, unary(F, kw=lambda b: {"decimals": b.choice([1, 2, -1])}), "unary")
    add(A.softplus.default, unary(F, lambda b: [b.choice([1, 2]), b.choice([20, 1])]), "unary")

    add(A.add.Tensor, binary(NUM, _alpha), "binary")
    add(A.sub.Tensor, binary(NUM, _alpha), "binary")
    add(A.mul.Tensor, binary(ALL), "binary")
    add(A.div.Tensor, binary(NUM), "binary")
    add(
        A.div.Tensor_mode,
        binary(F, lambda b: {"rounding_mode": b.choice(["trunc", "floor", None])}),
        "binary",
    )
    for target in (A.maximum.default, A.minimum.default):
        add(target, binary(NUM), "binary")
    for target in (A.pow.Tensor_Tensor, A.remainder.Tensor, A.fmod.Tensor, A.atan2.default):
        add(target, binary(F), "binary")
    for target in (A.bitwise_and.Tensor, A.bitwise_or.Tensor, A.bitwise_xor.Tensor):
        add(target, binary(INT_BOOL), "binary")
    for target in (A.logical_and.default, A.logical_or.default):
        add(target, binary(ALL), "binary")
    add(A.add.Scalar, with_scalar(NUM, [1, 2.5, -3]), "binary")
    add(A.mul.Scalar, with_scalar(NUM, [2, 0.5, -1.5]), "binary")
    add(A.addcmul.default, _addcmul, "binary")
    add(A.lerp.Scalar, _lerp, "binary")

    for target in (A.eq.Tensor, A.ne.Tensor, A.lt.Tensor, A.le.Tensor, A.gt.Tensor, A.ge.Tensor):
        add(target, binary(ALL), "comparison")
    add(A.eq.Scalar, with_scalar(NUM, [0, 1.0, -0.5]), "comparison")
    add(A.lt.Scalar, with_scalar(NUM, [0, 1.5]), "comparison")
    add(A.where.self, _where, "comparison")
    add(A.masked_fill.Scalar, _masked_fill, "comparison")

    add(A._to_copy.default, _to_copy, "cast")
    add(A.to.dtype, _cast, "cast")

    add(A.full.default, _full, "creation")
    add(A.arange.start_step, _arange, "creation")
    add(A.zeros_like.default, _like(False), "creation")
    add(A.ones_like.default, _like(False), "creation")
    add(A.full_like.default, _like(True), "creation")
    return ops


ELEMENTWISE_OPS: list[OpSpec] = _ops()
