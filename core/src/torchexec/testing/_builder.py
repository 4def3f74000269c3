"""The graph builder the catalog's rules draw from: a pool of values, fresh inputs, shapes.

Every value in the pool has an example tensor (the real value the program computes for its
inputs), so a rule can read shapes and dtypes, and the builder checks each call by running it:
a call that the eager kernel rejects is dropped, never emitted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from hypothesis import strategies as st

from torchexec.testing._ir import Call, ObjectSpec, ProgramIR, Ref, call_dtype, map_refs
from torchexec.testing._values import ALL_DTYPES, FLOAT_DTYPES, InputSpec, Layout, make_input

__all__ = ["Args", "Builder", "GenerationConfig", "OpSpec", "Rejected", "Rule"]

Shape = tuple[int, ...]

Args = tuple[Sequence[Any], Mapping[str, Any]]
"""What a rule returns: positional and keyword arguments, with ``Ref`` for program values."""

Rule = Callable[["Builder"], Args]
"""Draws the arguments of one call from a :class:`Builder`."""


@dataclass(frozen=True)
class OpSpec:
    """An operator generated programs call, and the rule that draws valid arguments for it.

    Attributes:
        target: what the generated FX node calls (``torch.ops.aten.add.Tensor``, or
            ``torch.ops.higher_order.call_torchbind`` for a TorchBind method).
        rule: draws valid arguments (shapes, dtypes, dims, scalars) from the builder.
        group: the family (``unary``, ``binary``, ``comparison``, ``reduction``, ``matmul``,
            ``view``, ``multi-output``, ``indexing``, ``normalization``, ``convolution``, ``cast``,
            ``creation``; ``torchbind`` for operators a plugin contributes).
        name: the catalog name; defaults to the overload's name (``aten.add.Tensor``).
        setup: Python lines a reproduction script runs before calling the operator (importing
            and loading the library that defines it); empty for ATen operators.
    """

    target: Callable[..., Any]
    rule: Rule
    group: str
    name: str = ""
    setup: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", str(self.target))


# Shrinking moves towards the first entries.
_DIM_SIZES = (2, 3, 1, 4, 5, 0, 2, 3)
_DTYPE_ORDER = (
    torch.float32,
    torch.float64,
    torch.int64,
    torch.bool,
    torch.float16,
    torch.bfloat16,
)
_LAYOUTS: tuple[Layout, ...] = ("contiguous", "contiguous", "transposed", "strided", "expanded")


class Rejected(Exception):
    """A rule cannot build a valid call from what it drew; the node is skipped."""


@dataclass(frozen=True)
class GenerationConfig:
    """Limits of generated programs.

    Attributes:
        dtypes: dtypes of fresh inputs and constants.
        max_rank: highest rank of fresh tensors (ranks 0..max_rank).
        max_numel: calls whose result is larger are dropped.
        constant_ratio: chance that a fresh tensor is a constant rather than an input.
        layouts: whether fresh inputs may be non-contiguous.
        specials: whether float inputs may hold NaN, inf and signed zeros.
    """

    dtypes: tuple[torch.dtype, ...] = ALL_DTYPES
    max_rank: int = 4
    max_numel: int = 4096
    constant_ratio: float = 0.15
    layouts: bool = True
    specials: bool = True


def broadcastable(a: Shape, b: Shape) -> bool:
    """Whether two shapes broadcast together."""
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x not in (y, 1) and y != 1:
            return False
    return True


def _broadcast(a: Shape, b: Shape) -> Shape:
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(x if y == 1 else y for x, y in zip(pa, pb, strict=True))


class Builder:
    """State of one program being generated; the catalog's rules call its methods."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], config: GenerationConfig):
        self.draw = draw
        self.config = config
        self.ir = ProgramIR()
        self.pool: list[tuple[Ref, torch.Tensor]] = []
        self.examples: dict[str, Any] = {}
        self.rejected: dict[str, int] = {}

    # --- drawing helpers ---------------------------------------------------------------------

    def choice(self, options: Sequence[Any]) -> Any:
        """One of ``options`` (shrinks towards the first)."""
        return self.draw(st.sampled_from(list(options)))

    def integer(self, lo: int, hi: int) -> int:
        """An int in ``[lo, hi]``."""
        return int(self.draw(st.integers(lo, hi)))

    def flag(self) -> bool:
        """A bool (shrinks to False)."""
        return bool(self.draw(st.booleans()))

    def dim(self, rank: int) -> int:
        """A valid dim of a tensor of ``rank`` (negative dims included)."""
        r = max(rank, 1)
        return self.integer(-r, r - 1)

    def dims(self, rank: int, min_size: int = 0) -> list[int]:
        """Distinct dims of a tensor of ``rank``, some of them negative."""
        r = max(rank, 1)
        picked = self.draw(
            st.lists(st.integers(0, r - 1), min_size=min_size, max_size=r, unique=True)
        )
        return [d - r if self.flag() else d for d in picked]

    def size(self) -> int:
        """A dim size (0 and 1 included)."""
        return int(self.choice(_DIM_SIZES))

    def shape(self, min_rank: int = 0, max_rank: int | None = None) -> Shape:
        """A fresh shape."""
        top = self.config.max_rank if max_rank is None else min(max_rank, self.config.max_rank)
        rank = self.integer(min_rank, max(min_rank, top))
        return tuple(self.size() for _ in range(rank))

    # --- values ------------------------------------------------------------------------------

    def example(self, ref: Ref) -> Any:
        """The example value of ``ref`` (a tensor or a TorchBind object)."""
        value = self.examples[ref.name]
        return value if ref.index is None else value[ref.index]

    def _ok(
        self,
        t: torch.Tensor,
        dtypes: Sequence[torch.dtype] | None,
        min_rank: int,
        max_rank: int,
        pred: Callable[[torch.Tensor], bool] | None,
    ) -> bool:
        if dtypes is not None and t.dtype not in dtypes:
            return False
        if not min_rank <= t.dim() <= max_rank:
            return False
        return pred is None or bool(pred(t))

    def pick(
        self,
        dtypes: Sequence[torch.dtype] | None = None,
        *,
        min_rank: int = 0,
        max_rank: int = 4,
        shape: Shape | None = None,
        pred: Callable[[torch.Tensor], bool] | None = None,
        fresh_shape: Shape | None = None,
    ) -> Ref:
        """A value of the program (most recent first) that fits, or a fresh input or constant.

        ``shape`` asks for exactly that shape; ``pred`` filters candidates, and
        ``fresh_shape`` is the shape of a fresh tensor when ``pred`` alone cannot draw one.
        """
        cands = [
            r
            for r, t in reversed(self.pool)
            if self._ok(t, dtypes, min_rank, max_rank, pred) and (shape is None or t.shape == shape)
        ]
        k = self.integer(0, len(cands)) if cands else len(cands)
        if k < len(cands):
            return cands[k]
        if shape is None:
            shape = fresh_shape
        if shape is None:
            for _ in range(3):
                shape = self.shape(min_rank, max_rank)
                probe = torch.empty(shape, dtype=dtypes[0] if dtypes else torch.float32)
                if pred is None or pred(probe):
                    break
            else:
                raise Rejected("no fresh shape satisfies the rule")
        return self.fresh(shape, dtypes)

    def partner(self, a: Ref, dtypes: Sequence[torch.dtype] | None = None) -> Ref:
        """A value whose shape broadcasts with ``a``'s (an existing one, or a fresh one)."""
        sa = tuple(self.example(a).shape)
        cands = [
            r
            for r, t in reversed(self.pool)
            if (dtypes is None or t.dtype in dtypes)
            and broadcastable(sa, tuple(t.shape))
            and math.prod(_broadcast(sa, tuple(t.shape))) <= self.config.max_numel
        ]
        k = self.integer(0, len(cands)) if cands else 0
        if k < len(cands):
            return cands[k]
        keep = self.integer(0, len(sa))
        shape = tuple(1 if self.flag() else s for s in sa[len(sa) - keep :])
        if self.flag() and len(shape) < self.config.max_rank and keep == len(sa):
            shape = (2, *shape)
        same = self.example(a).dtype
        options = [same] + [d for d in (dtypes or self.config.dtypes) if d != same]
        if dtypes is not None and same not in dtypes:
            options = list(dtypes)
        return self.fresh(shape, [self.choice(options)])

    def fresh(
        self,
        shape: Shape,
        dtypes: Sequence[torch.dtype] | None = None,
        *,
        low: int | None = None,
        high: int | None = None,
        constant: bool | None = None,
    ) -> Ref:
        """A new input (or constant) of ``shape`` with a dtype drawn from ``dtypes``."""
        allowed = [d for d in _DTYPE_ORDER if d in (dtypes or self.config.dtypes)]
        if not allowed:
            allowed = list(dtypes or FLOAT_DTYPES)
        dtype = self.fresh_dtype(allowed)
        if constant is None:
            constant = (
                self.config.constant_ratio > 0
                and self.draw(st.floats(0, 1, allow_nan=False)) < self.config.constant_ratio
            )
        layouts: list[Layout] = ["contiguous"]
        if self.config.layouts and not constant:
            layouts = [
                lay
                for lay in _LAYOUTS
                if not (lay == "transposed" and len(shape) < 2)
                and not (lay in ("strided", "expanded") and len(shape) < 1)
            ]
        layout = self.fresh_layout(layouts)
        seed = self.integer(0, 2**16)
        specials = self.fresh_specials(dtype) and (low is None or high is None)
        spec = InputSpec(tuple(shape), dtype, layout, seed, specials=specials)
        if low is not None and high is not None:
            spec = InputSpec(tuple(shape), dtype, layout, seed, low, high, specials)
        if constant:
            value = make_input(spec)
            name = f"c{len(self.ir.constants)}"
            self.ir.constants.append(value)
        else:
            value = make_input(spec)
            name = f"x{len(self.ir.inputs)}"
            self.ir.inputs.append(spec)
        ref = Ref(name)
        self.examples[name] = value
        self.pool.append((ref, value))
        return ref

    def fresh_dtype(self, allowed: Sequence[torch.dtype]) -> torch.dtype:
        """The dtype of a fresh tensor, one of ``allowed`` (the coverage pass forces one)."""
        dtype: torch.dtype = self.choice(allowed)
        return dtype

    def fresh_layout(self, layouts: Sequence[Layout]) -> Layout:
        """The memory layout of a fresh input, one of ``layouts``."""
        layout: Layout = self.choice(layouts)
        return layout

    def fresh_specials(self, dtype: torch.dtype) -> bool:
        """Whether a fresh tensor of ``dtype`` holds special values (NaN, infinities...)."""
        return bool(self.config.specials and dtype.is_floating_point and self.choice([0, 0, 0, 1]))

    def permutation(self, n: int) -> list[int]:
        """A permutation of ``range(n)``."""
        return list(self.draw(st.permutations(list(range(n)))))

    def index(self, shape: Shape, high: int, *, constant: bool | None = None) -> Ref:
        """A fresh int64 tensor of ``shape`` with values in ``[0, high)``."""
        if high <= 0 and math.prod(shape) > 0:
            raise Rejected("cannot index an empty dim with a non-empty index")
        return self.fresh(shape, [torch.int64], low=0, high=max(high, 1), constant=constant)

    def obj(self, spec: ObjectSpec) -> Ref:
        """A TorchBind object held by the program."""
        name = f"o{len(self.ir.objects)}"
        self.ir.objects.append(spec)
        self.examples[name] = spec.make()
        return Ref(name)

    # --- calls -------------------------------------------------------------------------------

    def call(self, op: OpSpec) -> list[Ref] | None:
        """Draw arguments with ``op``'s rule, run the call on the examples, and add it."""
        try:
            args, kwargs = op.rule(self)
        except Rejected:
            self.rejected[op.name] = self.rejected.get(op.name, 0) + 1
            return None
        name = f"v{len(self.ir.calls)}"
        call = Call(name, op.name, op.target, tuple(args), dict(kwargs), setup=op.setup)
        try:
            with warnings.catch_warnings():  # the kernel's warnings are not the kit's business
                warnings.simplefilter("ignore")
                result = op.target(*map_refs(call.args, self.example),
                                   **map_refs(call.kwargs, self.example))  # fmt: skip
        except Exception:
            self.rejected[op.name] = self.rejected.get(op.name, 0) + 1
            return None
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        if not all(isinstance(t, torch.Tensor) for t in outs) or any(
            t.numel() > self.config.max_numel for t in outs
        ):
            self.rejected[op.name] = self.rejected.get(op.name, 0) + 1
            return None
        dtype = call_dtype(map_refs(call.args, self.example), call.kwargs, result)
        call = replace(call, dtype=dtype)
        if isinstance(result, (tuple, list)):
            call = replace(call, n_outputs=len(outs))
        self.ir.calls.append(call)
        self.examples[name] = result
        refs = call.results()
        for r, t in zip(refs, outs, strict=True):
            self.pool.append((r, t))
        return refs
