"""Catalog: views and layout, multi-output and list operators, indexing."""

from __future__ import annotations

import math

import torch

from torchexec.testing._builder import Args, Builder, OpSpec, Rejected, Rule, Shape
from torchexec.testing._values import ALL_DTYPES, FLOAT_DTYPES

__all__ = ["STRUCTURE_OPS"]

A = torch.ops.aten
ALL = ALL_DTYPES
NUM = (*FLOAT_DTYPES, torch.int64)


def _shape(b: Builder, ref: object) -> Shape:
    return tuple(b.example(ref).shape)  # type: ignore[arg-type]


def _nonempty_rank1(t: torch.Tensor) -> bool:
    return t.dim() >= 1


def _reshape_target(b: Builder, shape: Shape) -> list[int]:
    dims = list(shape)
    k = b.integer(0, len(dims))
    out = dims[:k] + ([math.prod(dims[k:])] if k < len(dims) else [])
    splittable = [i for i, s in enumerate(out) if s % 2 == 0 and s > 2]
    if splittable and b.flag():
        i = b.choice(splittable)
        out[i : i + 1] = [2, out[i] // 2]
    if b.flag():
        out.insert(b.integer(0, len(out)), 1)
    if out and math.prod(dims) > 0 and b.flag():
        out[b.integer(0, len(out) - 1)] = -1
    return out


def _reshape(b: Builder) -> Args:
    x = b.pick(ALL)
    return (x, _reshape_target(b, _shape(b, x))), {}


def _permute(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    return (x, b.permutation(b.example(x).dim())), {}


def _transpose(b: Builder) -> Args:
    x = b.pick(ALL)
    r = b.example(x).dim()
    return (x, b.dim(r), b.dim(r)), {}


def _t(b: Builder) -> Args:
    return (b.pick(ALL, max_rank=2),), {}


def _expand(b: Builder) -> Args:
    x = b.pick(ALL, max_rank=3)
    sizes: list[int] = []
    for s in _shape(b, x):
        if s == 1:
            sizes.append(b.choice([1, 3, 2]))
        else:
            sizes.append(b.choice([s, -1]))
    if b.flag():
        sizes.insert(0, b.choice([2, 1]))
    return (x, sizes), {}


def _slice(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    r = b.example(x).dim()
    d = b.dim(r)
    n = b.example(x).shape[d]
    start = b.choice([None, 0, 1, -1, n, -n - 1])
    end = b.choice([None, n, 1, -1, n + 3])
    step = b.choice([1, 2, 3])
    return (x, d, start, end, step), {}


def _select(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1, pred=lambda t: t.numel() > 0)
    d = b.dim(b.example(x).dim())
    n = b.example(x).shape[d]
    return (x, d, b.integer(-n, n - 1)), {}


def _squeeze_dim(b: Builder) -> Args:
    x = b.pick(ALL)
    return (x, b.dim(b.example(x).dim())), {}


def _squeeze_dims(b: Builder) -> Args:
    x = b.pick(ALL)
    return (x, b.dims(b.example(x).dim())), {}


def _unsqueeze(b: Builder) -> Args:
    x = b.pick(ALL, max_rank=3)
    r = b.example(x).dim()
    return (x, b.integer(-r - 1, r)), {}


def _clone(b: Builder) -> Args:
    fmt = b.choice([None, torch.contiguous_format, torch.preserve_format])
    return (b.pick(ALL),), ({} if fmt is None else {"memory_format": fmt})


def _flatten(b: Builder) -> Args:
    x = b.pick(ALL)
    r = b.example(x).dim()
    start = b.dim(r)
    rs = max(r, 1)
    end = b.integer(start % rs, rs - 1)
    return (x, start, end), {}


def _narrow(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    d = b.dim(b.example(x).dim())
    n = b.example(x).shape[d]
    start = b.integer(0, n)
    return (x, d, start, b.integer(0, n - start)), {}


def _flip(b: Builder) -> Args:
    x = b.pick(ALL)
    return (x, b.dims(b.example(x).dim())), {}


def _roll(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    dims = b.dims(b.example(x).dim(), min_size=1)
    return (x, [b.integer(-3, 3) for _ in dims], dims), {}


def _repeat(b: Builder) -> Args:
    x = b.pick(ALL, max_rank=3)
    r = b.example(x).dim()
    return (x, [b.choice([1, 2]) for _ in range(r + b.integer(0, 1))]), {}


def _tri(b: Builder) -> Args:
    return (b.pick(ALL, min_rank=2), b.choice([0, 1, -1])), {}


def _split(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    return (x, b.integer(1, 3), b.dim(b.example(x).dim())), {}


def _split_with_sizes(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    d = b.dim(b.example(x).dim())
    n = b.example(x).shape[d]
    cut = b.integer(0, n)
    return (x, [cut, n - cut], d), {}


def _chunk(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    return (x, b.integer(1, 3), b.dim(b.example(x).dim())), {}


def _unbind(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1, pred=lambda t: 0 < max(t.shape, default=0) <= 5)
    return (x, b.dim(b.example(x).dim())), {}


def _cat(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    shape = _shape(b, x)
    d = b.dim(len(shape))
    parts = [x]
    for _ in range(b.integer(1, 2)):
        other = list(shape)
        other[d] = b.size()
        parts.append(b.pick(ALL, shape=tuple(other)))
    return (parts, d), {}


def _stack(b: Builder) -> Args:
    x = b.pick(ALL, max_rank=3)
    shape = _shape(b, x)
    parts = [x] + [b.pick(ALL, shape=shape) for _ in range(b.integer(1, 2))]
    return (parts, b.integer(-len(shape) - 1, len(shape))), {}


def _topk(b: Builder) -> Args:
    x = b.pick(NUM)
    r = b.example(x).dim()
    d = b.dim(r)
    n = b.example(x).shape[d] if r else 1
    return (x, b.integer(0, n), d, b.flag() is False, True), {}


def _sort(b: Builder) -> Args:
    x = b.pick(NUM)
    return (x, b.dim(b.example(x).dim()), b.flag()), {}


def _index_select(b: Builder) -> Args:
    x = b.pick(ALL)
    r = b.example(x).dim()
    d = b.dim(r)
    n = b.example(x).shape[d] if r else 1
    return (x, d, b.index((b.size(),), n)), {}


def _gather_index(b: Builder, shape: Shape, d: int, *, same_dim: bool) -> Shape:
    out: list[int] = []
    for i, s in enumerate(shape):
        if i == d % max(len(shape), 1) and not same_dim:
            out.append(b.integer(0, 3))
        else:
            out.append(b.integer(0, s) if s else 0)
    return tuple(out)


def _gather(b: Builder) -> Args:
    x = b.pick(ALL)
    shape = _shape(b, x)
    d = b.dim(len(shape))
    n = shape[d] if shape else 1
    idx_shape = _gather_index(b, shape, d, same_dim=False)
    if n == 0 and math.prod(idx_shape) > 0:
        raise Rejected("gather from an empty dim")
    return (x, d, b.index(idx_shape, n)), {}


def _scatter(b: Builder) -> Args:
    x = b.pick(ALL)
    shape = _shape(b, x)
    d = b.dim(len(shape))
    n = shape[d] if shape else 1
    idx_shape = _gather_index(b, shape, d, same_dim=True)
    if n == 0 and math.prod(idx_shape) > 0:
        raise Rejected("scatter into an empty dim")
    value = 1 if b.example(x).dtype in (torch.int64, torch.bool) else b.choice([-1.5, 2.0])
    return (x, d, b.index(idx_shape, n), value), {}


def _index_tensor(b: Builder) -> Args:
    x = b.pick(ALL, min_rank=1)
    shape = _shape(b, x)
    k = b.integer(0, len(shape) - 1)
    idx = b.index(b.shape(max_rank=2), shape[k])
    return (x, [None] * k + [idx]), {}


def _embedding(b: Builder) -> Args:
    w = b.pick(FLOAT_DTYPES, min_rank=2, max_rank=2, pred=lambda t: t.shape[0] > 0)
    n = b.example(w).shape[0]
    return (w, b.index(b.shape(max_rank=2), n)), {}


def _ops() -> list[OpSpec]:
    table: list[tuple[object, Rule, str]] = [
        (A.view.default, _reshape, "view"),
        (A.reshape.default, _reshape, "view"),
        (A.permute.default, _permute, "view"),
        (A.transpose.int, _transpose, "view"),
        (A.t.default, _t, "view"),
        (A.expand.default, _expand, "view"),
        (A.slice.Tensor, _slice, "view"),
        (A.select.int, _select, "view"),
        (A.squeeze.dim, _squeeze_dim, "view"),
        (A.squeeze.dims, _squeeze_dims, "view"),
        (A.unsqueeze.default, _unsqueeze, "view"),
        (A.contiguous.default, lambda b: ((b.pick(ALL),), {}), "view"),
        (A.clone.default, _clone, "view"),
        (A.flatten.using_ints, _flatten, "view"),
        (A.narrow.default, _narrow, "view"),
        (A.alias.default, lambda b: ((b.pick(ALL),), {}), "view"),
        (A.flip.default, _flip, "view"),
        (A.roll.default, _roll, "view"),
        (A.repeat.default, _repeat, "view"),
        (A.tril.default, _tri, "view"),
        (A.triu.default, _tri, "view"),
        (A.split.Tensor, _split, "multi-output"),
        (A.split_with_sizes.default, _split_with_sizes, "multi-output"),
        (A.chunk.default, _chunk, "multi-output"),
        (A.unbind.int, _unbind, "multi-output"),
        (A.cat.default, _cat, "multi-output"),
        (A.stack.default, _stack, "multi-output"),
        (A.topk.default, _topk, "multi-output"),
        (A.sort.default, _sort, "multi-output"),
        (A.index_select.default, _index_select, "indexing"),
        (A.gather.default, _gather, "indexing"),
        (A.scatter.value, _scatter, "indexing"),
        (A.index.Tensor, _index_tensor, "indexing"),
        (A.embedding.default, _embedding, "indexing"),
    ]
    return [OpSpec(target, rule, group) for target, rule, group in table]  # type: ignore[arg-type]


STRUCTURE_OPS: list[OpSpec] = _ops()
