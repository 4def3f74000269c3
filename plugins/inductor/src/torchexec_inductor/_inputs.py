"""What the compiled package expects of its user inputs, and the per-call check against it.

An AOTInductor package trusts its inputs: given a batch of 5 where it was compiled for 4, it
returns a result of the compiled shape; given a transposed tensor where it expects a contiguous
one, it reads the wrong elements. :class:`InputChecker` is built from the program's placeholders
(shapes with their dynamic dimensions, strides, dtypes, devices, specialised constants) and
checks every call before the package runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeAlias

import sympy  # type: ignore[import-untyped]
import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import ConstantArgument, InputKind, TensorArgument

from torchexec import InputMismatchError, ProgramError

__all__ = ["ConstantInput", "InputChecker", "TensorInput", "user_inputs"]

Size: TypeAlias = "int | sympy.Expr"
"""One dimension or stride: a number, or an expression of the program's dynamic sizes."""

_NEXT_STEP = "Prepare the program again for other inputs (torchexec.execute does this itself)."


@dataclass(frozen=True)
class TensorInput:
    """A tensor input as the program was compiled for it."""

    index: int
    label: str
    dtype: torch.dtype
    device: torch.device
    shape: tuple[Size, ...]
    stride: tuple[Size, ...]
    written: bool
    """The program mutates this input in place."""

    @property
    def static(self) -> bool:
        """Whether every size and stride is a number."""
        return all(isinstance(s, int) for s in (*self.shape, *self.stride))

    def contiguous_stride(self) -> bool:
        """Whether the expected strides are the row-major strides of the shape."""
        expected: Any = sympy.Integer(1)
        for size, stride in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if sympy.simplify(sympy.sympify(stride) - expected) != 0:
                return False
            expected = expected * size
        return True


@dataclass(frozen=True)
class ConstantInput:
    """A non-tensor input that export specialised to one value."""

    index: int
    label: str
    value: object


def _size(value: object, what: str) -> Size:
    if isinstance(value, int):
        return value
    if isinstance(value, torch.SymInt):
        expr = value.node.expr
        return int(expr) if isinstance(expr, sympy.Integer) else expr
    raise ProgramError(f"{what} is {value!r}, which is neither a number nor a symbolic size")


def user_inputs(ep: ExportedProgram, written: frozenset[str]) -> list[TensorInput | ConstantInput]:
    """The program's user inputs, in call order, from its placeholders' metadata.

    Raises:
        ProgramError: an input of a kind the compiled package cannot take (a symbolic integer,
            a TorchBind object) or a placeholder without its tensor metadata.
    """
    by_name = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    out: list[TensorInput | ConstantInput] = []
    specs = [s for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    for i, spec in enumerate(specs):
        arg = spec.arg
        label = f"input {i} ({arg.name})"
        if isinstance(arg, ConstantArgument):
            out.append(ConstantInput(i, label, arg.value))
            continue
        if not isinstance(arg, TensorArgument):
            raise ProgramError(
                f"{label} is a {type(arg).__name__}; the inductor executor takes tensors and "
                "constants only (a dynamic number or an object input cannot be passed to an "
                "AOTInductor package). Run this program on 'aten' instead."
            )
        val = by_name[arg.name].meta.get("val")
        if not isinstance(val, torch.Tensor):
            raise ProgramError(f"{label} has no tensor metadata (meta['val']) in the graph")
        out.append(
            TensorInput(
                index=i,
                label=label,
                dtype=val.dtype,
                device=val.device,
                shape=tuple(_size(s, f"a size of {label}") for s in val.shape),
                stride=tuple(_size(s, f"a stride of {label}") for s in val.stride()),
                written=arg.name in written,
            )
        )
    return out


def _bounds(ep: ExportedProgram) -> dict[sympy.Symbol, tuple[int, int | None]]:
    out: dict[sympy.Symbol, tuple[int, int | None]] = {}
    for sym, vr in ep.range_constraints.items():
        lower = int(vr.lower) if isinstance(vr.lower, (int, sympy.Integer)) else 0
        upper = int(vr.upper) if isinstance(vr.upper, (int, sympy.Integer)) else None
        out[sym] = (lower, upper)
    return out


def _layout_matches(shape: Sequence[int], stride: Sequence[int], want: Sequence[int]) -> bool:
    """Strides agree wherever they matter: dims of size 1 are never stepped over."""
    if any(n == 0 for n in shape):
        return True
    return all(s == w or n == 1 for n, s, w in zip(shape, stride, want, strict=True))


class InputChecker:
    """Checks a call's flat user inputs and returns the tensors the package takes.

    Inputs whose strides differ from the compiled ones are copied into the compiled layout; the
    copies of inputs the program mutates are written back by :meth:`write_back`.
    """

    def __init__(self, ep: ExportedProgram, inputs: Sequence[TensorInput | ConstantInput]) -> None:
        self.inputs = tuple(inputs)
        self._n = len(self.inputs)
        self._tensors = tuple(s for s in self.inputs if isinstance(s, TensorInput))
        self._constants = tuple(s for s in self.inputs if isinstance(s, ConstantInput))
        self._bounds = _bounds(ep)
        self.static = all(s.static for s in self._tensors)
        # The hot path of static programs: plain tuples compared with torch.Size and stride().
        self._fast = tuple(
            (s, torch.Size([int(d) for d in s.shape]), tuple(int(d) for d in s.stride))
            for s in self._tensors
        ) if self.static else ()  # fmt: skip
        self._contiguous = {s.index: s.contiguous_stride() for s in self._tensors if not s.static}

    def __call__(self, args: Sequence[Any]) -> tuple[list[torch.Tensor], list[tuple[Any, Any]]]:
        """The tensors to pass, and (user tensor, copy) pairs to write back after the run."""
        if len(args) != self._n:
            raise InputMismatchError(
                f"the compiled program takes {self._n} inputs, got {len(args)}. {_NEXT_STEP}"
            )
        for c in self._constants:
            got = args[c.index]
            if isinstance(got, torch.Tensor) or type(got) is not type(c.value) or got != c.value:
                raise InputMismatchError(
                    f"{c.label}: the program was compiled for the constant {c.value!r}, "
                    f"got {_describe(got)}. {_NEXT_STEP}"
                )
        if self.static:
            return self._check_static(args)
        return self._check_dynamic(args)

    def _check_static(
        self, args: Sequence[Any]
    ) -> tuple[list[torch.Tensor], list[tuple[Any, Any]]]:
        out: list[torch.Tensor] = []
        back: list[tuple[Any, Any]] = []
        for spec, shape, stride in self._fast:
            x = args[spec.index]
            if not (
                isinstance(x, torch.Tensor)
                and x.shape == shape
                and x.dtype == spec.dtype
                and x.device == spec.device
            ):
                self._reject(spec, x, shape)
            if x.stride() != stride and not _layout_matches(shape, x.stride(), stride):
                x = self._relayout(spec, x, stride, back)
            out.append(x)
        return out, back

    def _check_dynamic(
        self, args: Sequence[Any]
    ) -> tuple[list[torch.Tensor], list[tuple[Any, Any]]]:
        env: dict[sympy.Symbol, int] = {}
        derived: list[tuple[TensorInput, int, sympy.Expr]] = []
        for spec in self._tensors:
            x = args[spec.index]
            if not (
                isinstance(x, torch.Tensor)
                and x.dtype == spec.dtype
                and x.device == spec.device
                and x.dim() == len(spec.shape)
            ):
                self._reject(spec, x, None)
            for d, want in enumerate(spec.shape):
                got = int(x.shape[d])
                if isinstance(want, int):
                    if got != want:
                        self._reject(spec, x, None)
                elif isinstance(want, sympy.Symbol):
                    bound = env.setdefault(want, got)
                    if bound != got:
                        raise InputMismatchError(
                            f"{spec.label}: dimension {d} is the dynamic size {want}, which "
                            f"another input sets to {bound}; got {got}. {_NEXT_STEP}"
                        )
                else:
                    derived.append((spec, d, want))
        self._check_bounds(env)
        subs = {k: sympy.Integer(v) for k, v in env.items()}
        for spec, d, expr in derived:
            want_value = _evaluate(expr, subs, spec.label)
            if int(args[spec.index].shape[d]) != want_value:
                raise InputMismatchError(
                    f"{spec.label}: dimension {d} must be {expr} = {want_value} for these inputs, "
                    f"got {int(args[spec.index].shape[d])}. {_NEXT_STEP}"
                )
        out: list[torch.Tensor] = []
        back: list[tuple[Any, Any]] = []
        for spec in self._tensors:
            x = args[spec.index]
            if not spec.static and self._contiguous[spec.index]:
                if not x.is_contiguous():
                    x = self._relayout(spec, x, None, back)
            else:
                stride = [_evaluate(s, subs, spec.label) for s in spec.stride]
                if not _layout_matches(x.shape, x.stride(), stride):
                    x = self._relayout(spec, x, stride, back)
            out.append(x)
        return out, back

    def _check_bounds(self, env: Mapping[sympy.Symbol, int]) -> None:
        for sym, value in env.items():
            lower, upper = self._bounds.get(sym, (0, None))
            if value < lower or (upper is not None and value > upper):
                where = next(
                    f"{s.label} dimension {d}"
                    for s in self._tensors
                    for d, w in enumerate(s.shape)
                    if w == sym
                )
                top = "inf" if upper is None else str(upper)
                raise InputMismatchError(
                    f"{where}: the dynamic size {sym} must lie in [{lower}, {top}] (the range the "
                    f"program was exported with), got {value}. Export the program with a wider "
                    "torch.export.Dim range for such inputs."
                )

    def _relayout(
        self,
        spec: TensorInput,
        x: torch.Tensor,
        stride: Sequence[int] | None,
        back: list[tuple[Any, Any]],
    ) -> torch.Tensor:
        """``x`` copied into the compiled layout (row-major when ``stride`` is ``None``)."""
        if stride is None:
            copy = x.contiguous()
        else:
            copy = torch.empty_strided(x.shape, tuple(stride), dtype=x.dtype, device=x.device)
            copy.copy_(x)
        if spec.written:
            back.append((x, copy))
        return copy

    def _reject(self, spec: TensorInput, x: object, shape: torch.Size | None) -> NoReturn:
        want = shape if shape is not None else spec.shape
        wanted = f"a {spec.dtype} tensor of shape {list(want)} on {spec.device}"
        raise InputMismatchError(
            f"{spec.label}: the program was compiled for {wanted}, got {_describe(x)}. {_NEXT_STEP}"
        )

    @staticmethod
    def write_back(pairs: Sequence[tuple[Any, Any]]) -> None:
        """Copy mutated re-laid-out inputs back into the caller's tensors."""
        with torch.no_grad():
            for user, copy in pairs:
                user.copy_(copy)

    def example(self) -> list[torch.Tensor | object]:
        """Zero-filled inputs that satisfy the spec (for programs saved without examples)."""
        env: dict[sympy.Symbol, sympy.Integer] = {}
        for sym, (lower, upper) in self._bounds.items():
            pick = max(lower, 2)
            env[sym] = sympy.Integer(pick if upper is None else min(pick, upper))
        out: list[torch.Tensor | object] = []
        for spec in self.inputs:
            if isinstance(spec, ConstantInput):
                out.append(spec.value)
                continue
            shape = [_evaluate(s, env, spec.label) for s in spec.shape]
            stride = [_evaluate(s, env, spec.label) for s in spec.stride]
            t = torch.empty_strided(shape, stride, dtype=spec.dtype, device=spec.device)
            out.append(t.zero_())
        return out


def _evaluate(expr: Size, env: Mapping[sympy.Symbol, sympy.Integer], label: str) -> int:
    if isinstance(expr, int):
        return expr
    value = expr.xreplace(env)
    if not isinstance(value, sympy.Integer):
        raise InputMismatchError(f"{label}: cannot evaluate the symbolic size {expr} ({value})")
    return int(value)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {list(x.shape)} on {x.device}"
    return f"{type(x).__name__} {x!r}"
