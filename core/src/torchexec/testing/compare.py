"""Comparing an executor's results with the reference's: bit for bit, or within tolerances.

Bitwise executors (``Capabilities.bitwise``) must give the same dtype, shape and values, with
NaNs in the same places. Others are compared with per-dtype tolerances from
``tolerances.json`` (shipped next to this module); an operator can widen them, and a user file
(``--conformance-tolerances``) overrides both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from torchexec.testing._values import dtype_name

__all__ = ["Comparison", "Tolerance", "Tolerances", "compare_outputs", "same_bits"]


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + rtol * |expected|`` elementwise."""

    rtol: float
    atol: float

    def widen(self, other: Tolerance) -> Tolerance:
        """The looser of two tolerances."""
        return Tolerance(max(self.rtol, other.rtol), max(self.atol, other.atol))


_EXACT = Tolerance(0.0, 0.0)


@dataclass
class Tolerances:
    """Per-dtype tolerances with per-operator overrides.

    The data file is JSON::

        {"default": {"float32": {"rtol": 1e-5, "atol": 1e-5}, ...},
         "operators": {"aten.exp.default": {"float16": {"rtol": 1e-2, "atol": 1e-2}}}}

    Operator keys match by prefix on a name boundary: ``aten.exp`` covers every ``exp`` overload.
    """

    default: dict[str, Tolerance] = field(default_factory=dict)
    operators: dict[str, dict[str, Tolerance]] = field(default_factory=dict)

    @classmethod
    def shipped(cls) -> Tolerances:
        """The tolerances shipped with torchexec (``torchexec/testing/tolerances.json``)."""
        text = resources.files("torchexec.testing").joinpath("tolerances.json").read_text()
        return cls.from_json(json.loads(text), source="tolerances.json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "<json>") -> Tolerances:
        """Parse the data file format; raises ``ValueError`` naming the bad entry."""

        def parse(block: Any, where: str) -> dict[str, Tolerance]:
            if not isinstance(block, Mapping):
                raise ValueError(f"{source}: {where} must be an object of dtype names")
            out: dict[str, Tolerance] = {}
            for dtype, tol in block.items():
                if not (isinstance(tol, Mapping) and set(tol) <= {"rtol", "atol"}):
                    raise ValueError(
                        f"{source}: {where}.{dtype} must be {{'rtol': float, 'atol': float}}"
                    )
                out[str(dtype)] = Tolerance(
                    float(tol.get("rtol", 0.0)), float(tol.get("atol", 0.0))
                )
            return out

        unknown = set(data) - {"default", "operators", "comment"}
        if unknown:
            raise ValueError(f"{source}: unknown keys {sorted(unknown)}")
        ops = data.get("operators", {})
        if not isinstance(ops, Mapping):
            raise ValueError(f"{source}: 'operators' must be an object")
        return cls(
            default=parse(data.get("default", {}), "default"),
            operators={str(k): parse(v, f"operators.{k}") for k, v in ops.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> Tolerances:
        """Read a tolerance file."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read tolerances from {p}: {exc}") from exc
        return cls.from_json(data, source=str(p))

    def merged(self, other: Tolerances) -> Tolerances:
        """These tolerances with ``other``'s entries replacing ours."""
        ops = {k: dict(v) for k, v in self.operators.items()}
        for k, v in other.operators.items():
            ops.setdefault(k, {}).update(v)
        return Tolerances({**self.default, **other.default}, ops)

    def for_dtype(self, dtype: torch.dtype, operators: Iterable[str] = ()) -> Tolerance:
        """The tolerance for an output of ``dtype`` computed by ``operators``."""
        name = dtype_name(dtype)
        if not (dtype.is_floating_point or dtype.is_complex):
            return _EXACT
        tol = self.default.get(name, _EXACT)
        for op in operators:
            for key, table in self.operators.items():
                if _prefix_match(key, op) and name in table:
                    tol = tol.widen(table[name])
        return tol


def _prefix_match(prefix: str, name: str) -> bool:
    return name == prefix or (name.startswith(prefix) and name[len(prefix)] in ".:[")


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two output lists.

    Attributes:
        ok: whether they agree.
        output: the index of the first output that differs (``None`` when the counts differ or
            all agree).
        reason: what differs, in words.
        max_abs, max_rel: the largest absolute and relative error over the outputs of matching
            dtype and shape (``0.0`` when none could be measured).
    """

    ok: bool
    output: int | None = None
    reason: str = ""
    max_abs: float = 0.0
    max_rel: float = 0.0


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two strided tensors of one dtype and shape hold the same bytes, element by
    element (``-0.0`` differs from ``0.0``; NaNs agree only with the same payload).

    >>> same_bits(torch.tensor([0.0]), torch.tensor([-0.0]))
    False
    """
    return torch.equal(_bytes(a), _bytes(b))


def _bytes(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().contiguous().reshape(-1)
    return flat if flat.dtype == torch.bool else flat.view(torch.uint8)


def _errors(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, float]:
    if actual.numel() == 0 or actual.dtype == torch.bool:
        return 0.0, 0.0
    wide = torch.complex128 if actual.is_complex() else torch.float64
    a = actual.detach().to(wide)
    e = expected.detach().to(wide)
    finite = torch.isfinite(a) & torch.isfinite(e)
    if not bool(finite.any()):
        return 0.0, 0.0
    diff = (a - e).abs()[finite]
    denom = e.abs()[finite]
    max_abs = float(diff.max())
    nz = denom > 0
    rel = (diff[nz] / denom[nz]) if bool(nz.any()) else diff[:0]
    max_rel = float(rel.max()) if rel.numel() else (math.inf if max_abs > 0 else 0.0)
    return max_abs, max_rel


def _tensor_agrees(actual: torch.Tensor, expected: torch.Tensor, tol: Tolerance) -> str | None:
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype}, expected {expected.dtype}"
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if actual.device != expected.device:
        return f"device {actual.device}, expected {expected.device}"
    if actual.layout != expected.layout:
        return f"layout {actual.layout}, expected {expected.layout}"
    a, e = actual.detach(), expected.detach()
    if a.layout != torch.strided:
        a, e = a.to_dense(), e.to_dense()
    if a.dtype == torch.complex32:  # few kernels exist for it; complex64 holds it exactly
        a, e = a.to(torch.complex64), e.to(torch.complex64)
    if a.is_floating_point() or a.is_complex():
        nan_a, nan_e = torch.isnan(a), torch.isnan(e)
        if not torch.equal(nan_a, nan_e):
            n = int((nan_a != nan_e).sum())
            return f"NaN in different places ({n} of {a.numel()} elements)"
        if tol == _EXACT:
            same = torch.equal(torch.where(nan_a, 0, a), torch.where(nan_e, 0, e))
        else:
            same = bool(torch.isclose(a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=True).all())
    else:
        same = torch.equal(a, e)
    if not same:
        return "values differ" + (
            "" if tol == _EXACT else f" beyond rtol={tol.rtol}, atol={tol.atol}"
        )
    return None


def compare_outputs(
    actual: Sequence[Any],
    expected: Sequence[Any],
    *,
    bitwise: bool = True,
    tolerances: Tolerances | None = None,
    operators: Sequence[str] = (),
) -> Comparison:
    """Compare flat output lists.

    Args:
        actual: the executor's outputs.
        expected: the reference's outputs.
        bitwise: require equal values (NaN positions too); otherwise use ``tolerances``.
        tolerances: per-dtype tolerances (default: the shipped ones).
        operators: the operators that computed the outputs, for per-operator tolerances.
    """
    if len(actual) != len(expected):
        return Comparison(False, None, f"{len(actual)} outputs, expected {len(expected)}")
    tols = None if bitwise else (tolerances or Tolerances.shipped())
    worst_abs = worst_rel = 0.0
    first: tuple[int, str] | None = None
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if isinstance(e, torch.Tensor):
            if not isinstance(a, torch.Tensor):
                problem: str | None = f"a {type(a).__name__}, expected a tensor"
            else:
                tol = _EXACT if tols is None else tols.for_dtype(e.dtype, operators)
                try:
                    problem = _tensor_agrees(a, e, tol)
                    if a.dtype == e.dtype and a.shape == e.shape and a.layout == torch.strided:
                        ab, rel = _errors(a, e)
                        worst_abs, worst_rel = max(worst_abs, ab), max(worst_rel, rel)
                except (RuntimeError, NotImplementedError) as exc:
                    problem = f"cannot compare {e.dtype} tensors: {str(exc).splitlines()[0]}"
        elif isinstance(a, torch.Tensor) or type(a) is not type(e) or a != e:
            problem = f"{a!r}, expected {e!r}"
        else:
            problem = None
        if problem is not None and first is None:
            first = (i, problem)
    if first is None:
        return Comparison(True, None, "", worst_abs, worst_rel)
    return Comparison(False, first[0], f"output {first[0]}: {first[1]}", worst_abs, worst_rel)
