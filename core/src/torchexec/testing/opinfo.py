"""The OpInfo tier: PyTorch's own operator samples as one-op programs.

Every OpInfo of ``torch.testing._internal.common_methods_invocations.op_db`` (needs
``expecttest``) gives, for every dtype it supports on CPU (:func:`opinfo_dtypes`), up to
``max_samples`` samples; each sample that traces to ATen with ``make_fx`` becomes a program
whose inputs are the sample's tensors, is normalised once, and runs on the reference and on
every executor.

>>> from torchexec.testing.opinfo import sample_program
>>> gm, make_inputs = sample_program("add", 0)   # the program the tier ran for add, sample 0
>>> gm, make_inputs = sample_program("add", 0, "int64")   # the same on int64
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree

from torchexec.testing._values import clone_input, dtype_name

__all__ = [
    "OpInfoSample",
    "opinfo_dtypes",
    "opinfo_names",
    "reproduction",
    "sample_program",
    "samples",
]


@functools.cache
def _op_db() -> dict[str, Any]:
    from torch.testing._internal.common_methods_invocations import op_db

    out: dict[str, Any] = {}
    for op in op_db:
        name = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        out[name] = op
    return out


def opinfo_names() -> list[str]:
    """Names (``name`` or ``name.variant``) of the OpInfos that support a dtype on CPU."""
    return [n for n, op in _op_db().items() if op.supported_dtypes("cpu")]


def opinfo_dtypes(name: str, device: str = "cpu") -> list[torch.dtype]:
    """The dtypes OpInfo ``name`` supports on ``device``: float32 first, then by name."""
    found = _op_db()[name].supported_dtypes(device)
    rest = sorted((d for d in found if d != torch.float32), key=dtype_name)
    return ([torch.float32] if torch.float32 in found else []) + rest


@dataclass
class OpInfoSample:
    """One sample of an OpInfo, traced or not.

    Attributes:
        opinfo: the OpInfo's name.
        index: the sample's position in ``sample_inputs`` (seeded, so stable).
        dtype: the dtype the samples were asked for.
        graph_module: the ATen graph ``make_fx`` traced, or ``None``.
        tensors: the sample's tensors, the program's inputs.
        error: why the sample did not trace.
    """

    opinfo: str
    index: int
    graph_module: torch.fx.GraphModule | None
    tensors: tuple[torch.Tensor, ...]
    error: str = ""
    dtype: torch.dtype = torch.float32

    @property
    def case_id(self) -> str:
        """``NAME::INDEX`` (float32) or ``NAME::DTYPE::INDEX``, without executor and tier."""
        if self.dtype == torch.float32:
            return f"{self.opinfo}::{self.index}"
        return f"{self.opinfo}::{dtype_name(self.dtype)}::{self.index}"

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        """Fresh copies of the sample's tensors (same strides where possible)."""
        return tuple(clone_input(t) for t in self.tensors)


def _function(op: Any, sample: Any) -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    leaves, spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    where = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
    tensors = tuple(leaves[i] for i in where)

    def fn(*ts: torch.Tensor) -> Any:
        values = list(leaves)
        for i, t in zip(where, ts, strict=True):
            values[i] = t
        inp, args, kwargs = pytree.tree_unflatten(values, spec)
        return op.op(inp, *args, **kwargs)

    return fn, tensors


def samples(
    name: str, max_samples: int, dtype: torch.dtype = torch.float32
) -> Iterator[OpInfoSample]:
    """Up to ``max_samples`` CPU samples of OpInfo ``name`` on ``dtype``, traced with
    ``make_fx``."""
    from torch.fx.experimental.proxy_tensor import make_fx

    op = _op_db()[name]
    torch.manual_seed(0)  # sample_inputs draws random tensors
    try:
        gen = iter(op.sample_inputs("cpu", dtype, requires_grad=False))
    except Exception as exc:
        error = f"sample_inputs failed: {type(exc).__name__}: {exc}"
        yield OpInfoSample(name, 0, None, (), error, dtype)
        return
    for index in range(max_samples):
        try:
            sample = next(gen)
        except StopIteration:
            return
        except Exception as exc:
            yield OpInfoSample(name, index, None, (), f"sample_inputs failed: {exc}", dtype)
            return
        fn, tensors = _function(op, sample)
        if any(t.layout != torch.strided or t.device.type != "cpu" for t in tensors):
            error = "sample holds non-strided tensors"
            yield OpInfoSample(name, index, None, tensors, error, dtype)
            continue
        try:
            gm = make_fx(fn)(*(clone_input(t) for t in tensors))
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error = f"make_fx: {type(exc).__name__}: {text}"
            yield OpInfoSample(name, index, None, tensors, error, dtype)
            continue
        yield OpInfoSample(name, index, gm, tensors, dtype=dtype)


def sample_program(
    name: str, index: int, dtype: str = "float32"
) -> tuple[torch.fx.GraphModule, Callable[[], tuple[torch.Tensor, ...]]]:
    """The traced program of sample ``index`` of OpInfo ``name`` on ``dtype`` (a name:
    ``"int64"``) and a maker of its inputs.

    Raises:
        ValueError: the sample does not exist or does not trace.
    """
    for s in samples(name, index + 1, getattr(torch, dtype)):
        if s.index == index:
            if s.graph_module is None:
                raise ValueError(f"OpInfo {name!r} sample {index} does not trace: {s.error}")
            return s.graph_module, s.make_inputs
    raise ValueError(f"OpInfo {name!r} has no sample {index} on {dtype}")


def reproduction(
    name: str,
    index: int,
    executor: str,
    reference: str,
    *,
    exact: bool,
    dtype: torch.dtype = torch.float32,
) -> str:
    """A script that reruns one OpInfo sample on both executors."""
    tol = "rtol=0, atol=0" if exact else "rtol=1e-5, atol=1e-5"
    which = f"{index}" if dtype == torch.float32 else f'{index}, "{dtype_name(dtype)}"'
    return "\n".join(
        [
            "import torch",
            "",
            "import torchexec",
            "from torchexec.testing.opinfo import sample_program",
            "",
            f'gm, make_inputs = sample_program("{name}", {which})',
            "torch.manual_seed(0)",
            f'expected = torchexec.execute(gm, *make_inputs(), executor="{reference}")',
            "torch.manual_seed(0)",
            f'actual = torchexec.execute(gm, *make_inputs(), executor="{executor}")',
            f"torch.testing.assert_close(actual, expected, {tol}, equal_nan=True)",
            "",
        ]
    )
