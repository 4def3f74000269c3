"""Catalog: reductions, matrix products, normalisation, convolution and pooling."""

from __future__ import annotations

import math

import torch

from torchexec.testing._builder import Args, Builder, OpSpec, Rejected, Rule
from torchexec.testing._ir import Ref
from torchexec.testing._values import ALL_DTYPES, FLOAT_DTYPES

__all__ = ["COMPUTE_OPS"]

A = torch.ops.aten
F = FLOAT_DTYPES
NUM = (*FLOAT_DTYPES, torch.int64)
MM = (torch.float32, torch.float64, torch.int64, torch.bfloat16, torch.float16)


def _optional_dtype(b: Builder, options: tuple[torch.dtype, ...]) -> dict[str, object]:
    dtype = b.choice([None, *options])
    return {} if dtype is None else {"dtype": dtype}


def _reduce_dims(dtypes: tuple[torch.dtype, ...], *, out_dtype: bool = False) -> Rule:
    """``op(x, dims, keepdim)`` (sum, mean, amax, amin, logsumexp)."""

    def rule(b: Builder) -> Args:
        x = b.pick(dtypes)
        kw = _optional_dtype(b, (torch.float64, torch.float32)) if out_dtype else {}
        return (x, b.dims(b.example(x).dim()), b.flag()), kw

    return rule


def _reduce_dim(dtypes: tuple[torch.dtype, ...], *, out_dtype: bool = False) -> Rule:
    """``op(x, dim, keepdim)`` (prod, max.dim, min.dim, any, all)."""

    def rule(b: Builder) -> Args:
        x = b.pick(dtypes)
        kw = _optional_dtype(b, (torch.float64, torch.int64)) if out_dtype else {}
        return (x, b.dim(b.example(x).dim()), b.flag()), kw

    return rule


def _arg_reduce(b: Builder) -> Args:
    x = b.pick(NUM)
    dim = b.choice([None, b.dim(b.example(x).dim())])
    return (x, dim, b.flag()), {}


def _sum_default(b: Builder) -> Args:
    return (b.pick(ALL_DTYPES),), _optional_dtype(b, (torch.float64, torch.int64))


def _var(b: Builder) -> Args:
    x = b.pick(F, pred=lambda t: t.numel() > 1)
    t = b.example(x)
    dims = b.choice([None, b.dims(t.dim(), min_size=1)])
    reduced = t.numel() if not dims else math.prod(t.shape[d] for d in dims) if t.dim() else 1
    kw: dict[str, object] = {"keepdim": b.flag()}
    correction = b.choice([None, 0, 1, 2])
    if reduced <= (1 if correction is None else correction):
        correction = 0  # fewer degrees of freedom than the correction: torch warns, NaN results
    if reduced == 0:
        raise Rejected("variance over no elements")
    if correction is not None:
        kw["correction"] = correction
    return (x, dims), kw


def _cumsum(b: Builder) -> Args:
    x = b.pick(NUM)
    return (x, b.dim(b.example(x).dim())), _optional_dtype(b, (torch.float64,))


def _norm(b: Builder) -> Args:
    x = b.pick(F)
    dims = b.choice([None, b.dims(b.example(x).dim(), min_size=1)])
    return (x, b.choice([2, 1, float("inf")]), dims, b.flag()), {}


def _mm(b: Builder) -> Args:
    a = b.pick(MM, min_rank=2, max_rank=2)
    k = b.example(a).shape[1]
    other = b.pick(
        [b.example(a).dtype], min_rank=2, max_rank=2,
        pred=lambda t: t.shape[0] == k, fresh_shape=(k, b.size()),
    )  # fmt: skip
    return (a, other), {}


def _bmm(b: Builder) -> Args:
    a = b.pick(MM, min_rank=3, max_rank=3)
    n, _, k = b.example(a).shape
    other = b.pick(
        [b.example(a).dtype], min_rank=3, max_rank=3,
        pred=lambda t: t.shape[0] == n and t.shape[1] == k, fresh_shape=(n, k, b.size()),
    )  # fmt: skip
    return (a, other), {}


def _addmm(b: Builder) -> Args:
    (a, other), _ = _mm(b)
    n = b.example(a).shape[0]
    m = b.example(other).shape[1]
    shape = b.choice([(n, m), (m,), (1, m), ()])
    bias = b.pick([b.example(a).dtype], shape=shape)
    kw: dict[str, object] = {}
    if b.flag():
        kw = {"beta": b.choice([0.5, 2]), "alpha": b.choice([1.5, -1])}
    return (bias, a, other), kw


def _matmul(b: Builder) -> Args:
    a = b.pick(F, min_rank=1)
    sa = tuple(b.example(a).shape)
    k = sa[-1]
    if b.flag():
        fresh: tuple[int, ...] = (k,)
    else:
        batch = tuple(1 if b.flag() else s for s in sa[-3:-2])
        fresh = (*batch, k, b.size())
    other = b.pick(
        [b.example(a).dtype], min_rank=1, max_rank=3,
        pred=lambda t: t.shape[-1 if t.dim() == 1 else -2] == k, fresh_shape=fresh,
    )  # fmt: skip
    return (a, other), {}


def _linear(b: Builder) -> Args:
    x = b.pick(F, min_rank=1)
    dtype = b.example(x).dtype
    k = b.example(x).shape[-1]
    out = b.size()
    w = b.pick([dtype], shape=(out, k))
    bias = b.pick([dtype], shape=(out,)) if b.flag() else None
    return (x, w, bias), {}


def _softmax(b: Builder) -> Args:
    x = b.pick(F)
    return (x, b.dim(b.example(x).dim())), _optional_dtype(b, (torch.float64,))


def _affine(b: Builder, dtype: torch.dtype, shape: tuple[int, ...]) -> Ref | None:
    return b.pick([dtype], shape=shape) if b.flag() else None


def _layer_norm_args(b: Builder) -> tuple[Ref, list[int], Ref | None, Ref | None]:
    x = b.pick(F, min_rank=1)
    shape = tuple(b.example(x).shape)
    k = b.integer(1, len(shape))
    norm = list(shape[len(shape) - k :])
    dtype = b.example(x).dtype
    return x, norm, _affine(b, dtype, tuple(norm)), _affine(b, dtype, tuple(norm))


def _layer_norm(b: Builder) -> Args:
    x, norm, w, bias = _layer_norm_args(b)
    return (x, norm, w, bias, b.choice([1e-5, 1e-3])), {}


def _native_layer_norm(b: Builder) -> Args:
    x, norm, w, bias = _layer_norm_args(b)
    return (x, norm, w, bias, 1e-5), {}


def _channels(b: Builder, min_rank: int, max_rank: int) -> Ref:
    return b.pick(F, min_rank=min_rank, max_rank=max_rank, pred=lambda t: t.shape[1] > 0)


def _batch_norm(b: Builder) -> Args:
    x = _channels(b, 2, 4)
    c = b.example(x).shape[1]
    dtype = b.example(x).dtype
    mean = b.fresh((c,), [dtype], constant=True)
    var = b.fresh((c,), [dtype], constant=True)
    w, bias = _affine(b, dtype, (c,)), _affine(b, dtype, (c,))
    return (x, w, bias, mean, var, False, 0.1, 1e-5, False), {}


def _group_norm(b: Builder) -> Args:
    x = _channels(b, 2, 4)
    c = b.example(x).shape[1]
    groups = b.choice([g for g in (1, 2, 3) if c % g == 0])
    dtype = b.example(x).dtype
    w, bias = _affine(b, dtype, (c,)), _affine(b, dtype, (c,))
    return (x, groups, w, bias, 1e-5, False), {}


def _spatial_input(b: Builder, rank: int) -> Ref:
    return b.pick(
        F, min_rank=rank, max_rank=rank,
        pred=lambda t: t.numel() > 0, fresh_shape=(b.integer(1, 2), b.integer(1, 4),
                                                   *(b.integer(1, 5) for _ in range(rank - 2))),
    )  # fmt: skip


def _conv(rank: int) -> Rule:
    def rule(b: Builder) -> Args:
        x = _spatial_input(b, rank)
        shape = tuple(b.example(x).shape)
        cin = shape[1]
        groups = b.choice([g for g in (1, 2) if cin % g == 0])
        cout = groups * b.integer(1, 2)
        spatial = shape[2:]
        stride = [b.integer(1, 2) for _ in spatial]
        padding = [b.integer(0, 1) for _ in spatial]
        dilation = [b.integer(1, 2) for _ in spatial]
        kernel = []
        for s, p, d in zip(spatial, padding, dilation, strict=True):
            most = (s + 2 * p - 1) // d + 1
            if most < 1:
                raise Rejected("input too small for any kernel")
            kernel.append(b.integer(1, min(3, most)))
        dtype = b.example(x).dtype
        w = b.pick([dtype], shape=(cout, cin // groups, *kernel))
        bias = b.pick([dtype], shape=(cout,)) if b.flag() else None
        return (x, w, bias, stride, padding, dilation, groups), {}

    return rule


def _pool_params(b: Builder, x: Ref) -> tuple[list[int], list[int], list[int]]:
    h, w = b.example(x).shape[-2:]
    kernel = [b.integer(1, min(3, h)), b.integer(1, min(3, w))]
    stride = b.choice([[], [1, 1], [2, 2], [1, 2]])
    padding = [b.integer(0, k // 2) for k in kernel]
    return kernel, stride, padding


def _pool_input(b: Builder) -> Ref:
    return b.pick(
        F, min_rank=3, max_rank=4,
        pred=lambda t: t.numel() > 0, fresh_shape=(b.integer(1, 2), b.integer(1, 3),
                                                   b.integer(1, 5), b.integer(1, 5)),
    )  # fmt: skip


def _max_pool(b: Builder) -> Args:
    x = _pool_input(b)
    kernel, stride, padding = _pool_params(b, x)
    return (x, kernel, stride, padding, [1, 1], b.flag()), {}


def _avg_pool(b: Builder) -> Args:
    x = _pool_input(b)
    kernel, stride, padding = _pool_params(b, x)
    return (x, kernel, stride, padding, b.flag(), b.flag() is False, b.choice([None, 2])), {}


def _adaptive(b: Builder) -> Args:
    x = _pool_input(b)
    return (x, [b.integer(1, 3), b.integer(1, 3)]), {}


def _ops() -> list[OpSpec]:
    table: list[tuple[object, Rule, str]] = [
        (A.sum.dim_IntList, _reduce_dims(NUM, out_dtype=True), "reduction"),
        (A.sum.default, _sum_default, "reduction"),
        (A.mean.dim, _reduce_dims(F, out_dtype=True), "reduction"),
        (A.amax.default, _reduce_dims(NUM), "reduction"),
        (A.amin.default, _reduce_dims(NUM), "reduction"),
        (A.logsumexp.default, _reduce_dims(F), "reduction"),
        (A.prod.dim_int, _reduce_dim(NUM, out_dtype=True), "reduction"),
        (A.max.dim, _reduce_dim(NUM), "reduction"),
        (A.min.dim, _reduce_dim(NUM), "reduction"),
        (A.any.dim, _reduce_dim(ALL_DTYPES), "reduction"),
        (A.all.dim, _reduce_dim(ALL_DTYPES), "reduction"),
        (A.argmax.default, _arg_reduce, "reduction"),
        (A.argmin.default, _arg_reduce, "reduction"),
        (A.var.correction, _var, "reduction"),
        (A.std.correction, _var, "reduction"),
        (A.var_mean.correction, _var, "reduction"),
        (A.cumsum.default, _cumsum, "reduction"),
        (A.linalg_vector_norm.default, _norm, "reduction"),
        (A.mm.default, _mm, "matmul"),
        (A.bmm.default, _bmm, "matmul"),
        (A.addmm.default, _addmm, "matmul"),
        (A.matmul.default, _matmul, "matmul"),
        (A.linear.default, _linear, "matmul"),
        (A.softmax.int, _softmax, "normalization"),
        (A.log_softmax.int, _softmax, "normalization"),
        (A.layer_norm.default, _layer_norm, "normalization"),
        (A.native_layer_norm.default, _native_layer_norm, "normalization"),
        (A.batch_norm.default, _batch_norm, "normalization"),
        (A.group_norm.default, _group_norm, "normalization"),
        (A.conv2d.default, _conv(4), "convolution"),
        (A.conv1d.default, _conv(3), "convolution"),
        (A.max_pool2d.default, _max_pool, "convolution"),
        (A.avg_pool2d.default, _avg_pool, "convolution"),
        (A.adaptive_avg_pool2d.default, _adaptive, "convolution"),
    ]
    return [OpSpec(target, rule, group) for target, rule, group in table]  # type: ignore[arg-type]


COMPUTE_OPS: list[OpSpec] = _ops()
