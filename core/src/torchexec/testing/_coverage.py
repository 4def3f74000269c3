"""The coverage pass's cases: every catalog operator on every dtype it declares, deterministically.

A case is one call of one catalog operator on one dtype in one *variant* (a memory layout, value
recipe and argument choice), built by the operator's own rule from a builder that draws from a
seeded ``random.Random`` instead of hypothesis. Variant ``i`` takes option ``i`` (cyclically) of
every choice the rule makes, so four variants give each behaviour-changing argument (``alpha``,
``rounding_mode``, ``keepdim``, ``dim=None``, scalar operands, an ``out`` dtype) each of its
values; odd variants use negative dims and broadcast size-1 dims. The dtypes an operator
*declares* are those its rule can build a call on.

Cases are merged into batches (:func:`merge`): one program of many independent calls, so that an
executor prepares (compiles) one program for hundreds of cases.
"""

from __future__ import annotations

import functools
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchexec.testing._builder import Builder, GenerationConfig, OpSpec, Shape
from torchexec.testing._ir import Call, ProgramIR, Ref
from torchexec.testing._values import ALL_DTYPES, Layout, dtype_name

__all__ = [
    "VARIANTS",
    "CoverageCase",
    "Variant",
    "coverage_cases",
    "declared_dtypes",
    "input_values",
    "merge",
]


@dataclass(frozen=True)
class Variant:
    """How the inputs of a coverage case are made.

    Attributes:
        name: ``contiguous``, ``transposed``, ``expanded+specials`` or ``small+empty``.
        layouts: the layouts fresh inputs take, in order of preference.
        specials: NaN, infinities and -0.0 in float inputs; the smallest and largest values in
            integer ones.
        sizes: dim sizes fresh shapes draw from.
    """

    name: str
    layouts: tuple[Layout, ...]
    specials: bool
    sizes: tuple[int, ...]


VARIANTS: tuple[Variant, ...] = (
    Variant("contiguous", ("contiguous",), False, (2, 3, 4, 1)),
    Variant("transposed", ("transposed", "strided", "contiguous"), False, (2, 3, 1, 5)),
    Variant("expanded+specials", ("expanded", "contiguous"), True, (2, 3, 4, 5)),
    Variant("small+empty", ("strided", "contiguous"), False, (0, 1, 2, 3)),  # first dim 0
)
"""The variants, in order; a run with ``n`` coverage variants uses the first ``n``."""

_ATTEMPTS = 4


class _CoverageBuilder(Builder):
    """A builder whose draws come from a seeded ``random.Random`` and the variant."""

    def __init__(
        self, focus: torch.dtype, index: int, rng: random.Random, *, empty: bool = False
    ) -> None:
        super().__init__(self._no_draw, GenerationConfig(constant_ratio=0.0))
        self.empty = empty
        self.focus = focus
        self.which = index
        self.variant = VARIANTS[index]
        self.rng = rng

    @staticmethod
    def _no_draw(strategy: Any) -> Any:
        raise TypeError(f"the coverage pass draws no hypothesis strategy ({strategy!r})")

    def choice(self, options: Sequence[Any]) -> Any:
        if not self.pool and self.focus in options:  # the dtype of a creation operator
            return self.focus
        return list(options)[self.which % len(options)]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def flag(self) -> bool:
        return self.which % 2 == 1

    def dim(self, rank: int) -> int:
        r = max(rank, 1)
        d = self.rng.randrange(r)
        return d - r if self.which % 2 else d

    def dims(self, rank: int, min_size: int = 0) -> list[int]:
        r = max(rank, 1)
        options = [[] if min_size == 0 else [0], [-1], [0], list(range(-r, 0))]
        return options[self.which % len(options)]

    def size(self) -> int:
        if self.empty:  # the first dim drawn is 0: the first fresh tensor is empty
            self.empty = False
            return 0
        return self.rng.choice(self.variant.sizes)

    def permutation(self, n: int) -> list[int]:
        out = list(range(n))
        self.rng.shuffle(out)
        return out

    def fresh_dtype(self, allowed: Sequence[torch.dtype]) -> torch.dtype:
        return self.focus if self.focus in allowed else allowed[0]

    def fresh_layout(self, layouts: Sequence[Layout]) -> Layout:
        for layout in self.variant.layouts:
            if layout in layouts:
                return layout
        return layouts[0]

    def fresh_specials(self, dtype: torch.dtype) -> bool:
        return self.variant.specials and dtype != torch.bool


@dataclass(frozen=True)
class CoverageCase:
    """One call of ``op`` on ``dtype`` (variant ``variant``) as a program of its own."""

    op: str
    dtype: str
    variant: str
    ir: ProgramIR

    @property
    def label(self) -> str:
        """``aten.div.Tensor on int64 (contiguous)``."""
        return f"{self.op} on {self.dtype} ({self.variant})"


def _exercises(b: Builder, call: Call, focus: torch.dtype) -> bool:
    seen: list[torch.dtype] = []

    def note(ref: Ref) -> Ref:
        value = b.example(ref)
        if isinstance(value, torch.Tensor):
            seen.append(value.dtype)
        return ref

    call.with_refs(note)
    given = call.kwargs.get("dtype")
    return focus in seen or (not seen and given == focus)


def _stable_seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def build_case(op: OpSpec, dtype: torch.dtype, index: int) -> CoverageCase | None:
    """The case of ``op`` on ``dtype`` in variant ``index``, or ``None`` if the rule cannot
    build one on that dtype (a few seeds are tried)."""
    for attempt in range(_ATTEMPTS):
        rng = random.Random(_stable_seed(op.name, dtype, index, attempt))
        empty = 0 in VARIANTS[index].sizes and attempt % 2 == 0
        b = _CoverageBuilder(dtype, index, rng, empty=empty)
        if b.call(op) is None:
            continue
        call = b.ir.calls[-1]
        if not _exercises(b, call, dtype):
            continue
        b.ir.outputs = call.results()
        return CoverageCase(op.name, dtype_name(dtype), VARIANTS[index].name, b.ir)
    return None


@functools.cache
def _cases(ops: tuple[OpSpec, ...], variants: int) -> tuple[CoverageCase, ...]:
    out: list[CoverageCase] = []
    for op in ops:
        for dtype in ALL_DTYPES:
            for index in range(variants):
                case = build_case(op, dtype, index)
                if case is not None:
                    out.append(case)
    return tuple(out)


def coverage_cases(ops: Sequence[OpSpec], variants: int) -> list[CoverageCase]:
    """Every case of ``ops`` on every dtype each declares, in the first ``variants`` variants
    (the same cases every run)."""
    return list(_cases(tuple(ops), min(variants, len(VARIANTS))))


def declared_dtypes(cases: Sequence[CoverageCase]) -> dict[str, list[str]]:
    """Operator -> the dtypes its rule builds calls on (in :data:`ALL_DTYPES` order)."""
    out: dict[str, list[str]] = {}
    for case in cases:
        dtypes = out.setdefault(case.op, [])
        if case.dtype not in dtypes:
            dtypes.append(case.dtype)
    return out


def merge(cases: Sequence[CoverageCase]) -> ProgramIR:
    """One program running every case on its own inputs, returning all their outputs in order."""
    out = ProgramIR()
    for case in cases:
        rename: dict[str, str] = {}
        ir = case.ir
        for i, spec in enumerate(ir.inputs):
            rename[f"x{i}"] = f"x{len(out.inputs)}"
            out.inputs.append(spec)
        for i, const in enumerate(ir.constants):
            rename[f"c{i}"] = f"c{len(out.constants)}"
            out.constants.append(const)
        for i, obj in enumerate(ir.objects):
            rename[f"o{i}"] = f"o{len(out.objects)}"
            out.objects.append(obj)

        def fix(ref: Ref, names: dict[str, str] = rename) -> Ref:
            return Ref(names[ref.name], ref.index)

        for c in ir.calls:
            rename[c.name] = f"v{len(out.calls)}"
            out.calls.append(c.with_refs(fix, name=rename[c.name]))
        out.outputs += [fix(r) for r in ir.outputs]
    return out


def input_values(ir: ProgramIR, limit: int = 12) -> list[str]:
    """The inputs of a (small) program with their values, for a failure message:
    ``x0: int64[3] = [7, -3, 0]``."""
    lines: list[str] = []
    for i, x in enumerate(ir.make_inputs()):
        shape: Shape = tuple(x.shape)
        text = f"x{i}: {dtype_name(x.dtype)}{list(shape)}"
        flat = x.detach().reshape(-1)
        if x.dtype in (torch.float16, torch.bfloat16):
            flat = flat.to(torch.float32)
        values = ", ".join(str(v) for v in flat[:limit].tolist())
        more = ", ..." if flat.numel() > limit else ""
        lines.append(f"{text} = [{values}{more}]")
    return lines
