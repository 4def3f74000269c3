"""Program inputs: a spec (shape, dtype, memory layout, value recipe) and the tensor it makes.

An :class:`InputSpec` is what the strategies draw; the tensor is made from it deterministically,
so a run can make fresh copies of its inputs for every executor and a reproduction can rebuild
them exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = [
    "ALL_DTYPES",
    "FLOAT_DTYPES",
    "InputSpec",
    "Layout",
    "clone_input",
    "dtype_name",
    "make_input",
    "strided_literal",
    "tensor_literal",
]

Layout = Literal["contiguous", "transposed", "strided", "expanded"]
"""How an input tensor is laid out in memory.

- ``contiguous``: row-major.
- ``transposed``: a permutation (dims reversed) of a contiguous tensor; needs rank >= 2.
- ``strided``: every other element of a tensor twice as long in its last dim; needs rank >= 1.
- ``expanded``: a tensor of size 1 in its first dim expanded (stride 0); needs rank >= 1.
"""

FLOAT_DTYPES: tuple[torch.dtype, ...] = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
)
ALL_DTYPES: tuple[torch.dtype, ...] = (*FLOAT_DTYPES, torch.int64, torch.bool)

_SPECIALS = (math.nan, math.inf, -math.inf, 0.0, -0.0)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class InputSpec:
    """One program input.

    Attributes:
        shape: the logical shape.
        dtype: one of :data:`ALL_DTYPES`.
        layout: the memory layout (see :data:`Layout`).
        seed: seeds the values.
        low, high: for integer inputs, values are drawn from ``[low, high)`` (index inputs use
            the bounds of the dimension they index).
        specials: sprinkle NaN, +-inf and signed zeros into floating-point values, and the
            smallest and largest values into integer ones.
        literal: an exact value to use instead (minimised reproductions hold the values an
            intermediate result had); its strides are kept where the tensor is dense.
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    layout: Layout = "contiguous"
    seed: int = 0
    low: int = -4
    high: int = 5
    specials: bool = False
    literal: torch.Tensor | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, value: torch.Tensor) -> InputSpec:
        """A spec holding exactly ``value``."""
        return cls(tuple(value.shape), value.dtype, literal=value.detach().clone())

    def __post_init__(self) -> None:
        rank = len(self.shape)
        if self.layout == "transposed" and rank < 2:
            raise ValueError(f"a transposed input needs rank >= 2, got shape {self.shape}")
        if self.layout in ("strided", "expanded") and rank < 1:
            raise ValueError(f"a {self.layout} input needs rank >= 1, got shape {self.shape}")
        if self.low >= self.high:
            raise ValueError(f"empty value range [{self.low}, {self.high})")

    @property
    def base_shape(self) -> tuple[int, ...]:
        """The shape of the contiguous tensor the input is a view of."""
        s = self.shape
        if self.layout == "transposed":
            return tuple(reversed(s))
        if self.layout == "strided":
            return (*s[:-1], 2 * s[-1])
        if self.layout == "expanded":
            return (1, *s[1:])
        return s

    def view_code(self) -> str:
        """The Python suffix that turns the base tensor into the input (``""`` if contiguous)."""
        rank = len(self.shape)
        if self.layout == "transposed":
            return ".permute(" + ", ".join(str(d) for d in reversed(range(rank))) + ")"
        if self.layout == "strided":
            return "[..., ::2]"
        if self.layout == "expanded":
            return f".expand({list(self.shape)})"
        return ""

    def describe(self) -> str:
        """``float32[2, 3] transposed``."""
        text = f"{dtype_name(self.dtype)}{list(self.shape)}"
        return text if self.layout == "contiguous" else f"{text} {self.layout}"


def _base_values(spec: InputSpec) -> torch.Tensor:
    gen = torch.Generator().manual_seed(spec.seed)
    shape = spec.base_shape
    if spec.dtype == torch.bool:
        return torch.rand(shape, generator=gen) < 0.5
    if not spec.dtype.is_floating_point:
        values = torch.randint(spec.low, spec.high, shape, generator=gen, dtype=spec.dtype)
        if spec.specials and values.numel() > 0:
            info = torch.iinfo(spec.dtype)
            where = torch.rand(shape, generator=gen) < 0.3
            which = torch.randint(0, 2, shape, generator=gen).to(torch.bool)
            extreme = torch.where(which, info.max, info.min).to(spec.dtype)
            values = torch.where(where, extreme, values)
        return values
    values = torch.randn(shape, generator=gen, dtype=torch.float64) * 2.0
    if spec.specials and values.numel() > 0:
        where = torch.rand(shape, generator=gen) < 0.15
        which = torch.randint(0, len(_SPECIALS), shape, generator=gen)
        table = torch.tensor(_SPECIALS, dtype=torch.float64)
        values = torch.where(where, table[which], values)
    return values.to(spec.dtype)


def _view(base: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    rank = len(spec.shape)
    if spec.layout == "transposed":
        return base.permute(*reversed(range(rank)))
    if spec.layout == "strided":
        return base[..., ::2]
    if spec.layout == "expanded":
        return base.expand(*spec.shape)
    return base


def make_input(spec: InputSpec) -> torch.Tensor:
    """The tensor ``spec`` describes; the same spec always gives the same values and strides."""
    if spec.literal is not None:
        return clone_input(spec.literal)
    return _view(_base_values(spec), spec)


def _dense(x: torch.Tensor) -> bool:
    """Whether ``x``'s elements fill its memory exactly once in some dim order."""
    if x.numel() <= 1:
        return True
    expected = 1
    for stride, size in sorted(
        (st, sz) for sz, st in zip(x.shape, x.stride(), strict=True) if sz != 1
    ):
        if stride != expected:
            return False
        expected *= size
    return True


def clone_input(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` with the same strides where that is possible (dense, non-overlapping)."""
    if _dense(x):
        out = torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device=x.device)
        out.copy_(x)
        return out
    return x.clone()


def _scalar_literal(v: float | int | bool, dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "True" if v else "False"
    if not dtype.is_floating_point:
        return str(int(v))
    f = float(v)
    if math.isnan(f):
        return 'float("nan")'
    if math.isinf(f):
        return 'float("inf")' if f > 0 else 'float("-inf")'
    return repr(f)


def _nested(values: object, dtype: torch.dtype) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, dtype) for v in values) + "]"
    if isinstance(values, (bool, int, float)):
        return _scalar_literal(values, dtype)
    raise TypeError(f"unexpected value {values!r} in a tensor")


def tensor_literal(t: torch.Tensor) -> str:
    """Python source that rebuilds the contiguous tensor ``t`` exactly (values, shape, dtype)."""
    dtype = f"torch.{dtype_name(t.dtype)}"
    if t.numel() == 0:
        return f"torch.empty({list(t.shape)}, dtype={dtype})"
    data = t.detach().cpu()
    if data.dtype in (torch.float16, torch.bfloat16):
        data = data.to(torch.float32)  # exact: both widen to float32 without rounding
    return f"torch.tensor({_nested(data.tolist(), t.dtype)}, dtype={dtype})"


def strided_literal(t: torch.Tensor) -> str:
    """Like :func:`tensor_literal`, keeping ``t``'s strides when it is dense but not contiguous."""
    if t.is_contiguous() or not _dense(t) or t.numel() <= 1:
        return tensor_literal(t.contiguous())
    dtype = f"torch.{dtype_name(t.dtype)}"
    return (
        f"torch.empty_strided({list(t.shape)}, {list(t.stride())}, dtype={dtype})"
        f".copy_({tensor_literal(t.contiguous())})"
    )
