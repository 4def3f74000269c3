"""``make_traced``: trace a Python function once per input signature and run it on any executor."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal

import torch
import torch.utils._pytree as pytree

from torchexec._api import (
    PREPARE_LOCK,
    PreparedProgram,
    cache,
    cached_prepare,
    call_signature,
    prepare_program,
    program_key,
)
from torchexec._cache import CacheInfo
from torchexec._choice import ExecutorChoice
from torchexec._cuda_graphs import CudaGraphs, cuda_graphs_mode
from torchexec._errors import ProgramError
from torchexec._program import Program, export_callable

__all__ = ["Traced", "make_traced"]

Decompose = Literal["prims", "core_aten"] | None
_DECOMPOSE = (None, "prims", "core_aten")


class Traced:
    """A function traced per input signature; call it with ``executor=`` and the function's inputs.

    Tensors anywhere in the arguments (nested in lists, tuples and dicts too) become program
    inputs; every other value (int, float, bool, None, str) is specialised: it is baked into the
    traced program and part of the cache key, so a new value traces again.
    """

    def __init__(self, fn: Callable[..., Any], decompose: Decompose = None) -> None:
        if decompose not in _DECOMPOSE:
            raise ValueError(
                f"decompose must be one of {', '.join(map(repr, _DECOMPOSE))}, got {decompose!r}"
            )
        self.fn = fn
        self.decompose = decompose
        self._hits = self._misses = 0
        self._stats_lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return (
            f"Traced({getattr(self.fn, '__qualname__', self.fn)!r}, decompose={self.decompose!r})"
        )

    def __call__(
        self,
        *args: Any,
        executor: ExecutorChoice = "aten",
        executor_parameters: Mapping[str, object] | None = None,
        cuda_graphs: CudaGraphs = False,
        **kwargs: Any,
    ) -> Any:
        leaves, spec = pytree.tree_flatten((args, kwargs))
        tensor_pos = tuple(i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor))
        key: tuple[Hashable, ...] = (
            "traced",
            id(self),
            program_key(self.fn),
            spec,
            call_signature(leaves),
        )

        def build() -> PreparedProgram:
            return self._prepare(
                leaves, spec, tensor_pos, executor, executor_parameters, cuda_graphs
            )

        prepared, hit = cached_prepare(
            key, executor, executor_parameters, build, self, cuda_graphs_mode(cuda_graphs)
        )
        with self._stats_lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
        return prepared.run_flat([leaves[i] for i in tensor_pos])

    def _owns(self, key: Hashable) -> bool:
        return isinstance(key, tuple) and key[:2] == ("traced", id(self))

    def cache_info(self) -> CacheInfo:
        """This function's hits and misses, and its entries in the shared runner cache (as
        :func:`functools.lru_cache` reports them; ``maxsize`` is the shared cache's bound)."""
        lru = cache()
        with self._stats_lock:
            hits, misses = self._hits, self._misses
        return CacheInfo(hits, misses, lru.info().maxsize, lru.count_where(self._owns))

    def cache_clear(self) -> None:
        """Drop this function's prepared programs and reset its statistics."""
        cache().discard_where(self._owns)
        with self._stats_lock:
            self._hits = self._misses = 0

    def trace(self, *args: Any, **kwargs: Any) -> Program:
        """The :class:`~torchexec.Program` this function becomes for these inputs."""
        leaves, spec = pytree.tree_flatten((args, kwargs))
        tensor_pos = tuple(i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor))
        with PREPARE_LOCK:
            return self._trace(leaves, spec, tensor_pos)

    def _trace(
        self, leaves: list[Any], spec: pytree.TreeSpec, tensor_pos: tuple[int, ...]
    ) -> Program:
        fn = self.fn

        def flat_fn(*tensors: torch.Tensor) -> Any:
            full = list(leaves)
            for i, t in zip(tensor_pos, tensors, strict=True):
                full[i] = t
            a, k = pytree.tree_unflatten(full, spec)
            return fn(*a, **k)

        name = getattr(fn, "__name__", "traced")
        tensors = tuple(leaves[i] for i in tensor_pos)
        if self.decompose == "prims":
            from torch._prims.context import TorchRefsMode
            from torch.fx.experimental.proxy_tensor import make_fx

            try:
                with TorchRefsMode():
                    gm = make_fx(flat_fn)(*tensors)
            except Exception as exc:
                raise ProgramError(f"cannot trace {name!r} to prims: {exc}") from exc
            return export_callable(gm, tensors, name=name)
        program = export_callable(flat_fn, tensors, name=name)
        if self.decompose == "core_aten":
            from torch.export import default_decompositions

            ep = program.exported_program().run_decompositions(default_decompositions())
            program = Program.from_exported(ep, name=name)
        return program

    def _prepare(
        self,
        leaves: list[Any],
        spec: pytree.TreeSpec,
        tensor_pos: tuple[int, ...],
        executor: ExecutorChoice,
        executor_parameters: Mapping[str, object] | None,
        cuda_graphs: CudaGraphs,
    ) -> PreparedProgram:
        program = self._trace(leaves, spec, tensor_pos)
        tensors = tuple(leaves[i] for i in tensor_pos)
        return prepare_program(program, tensors, {}, executor, executor_parameters, cuda_graphs)


def make_traced(fn: Callable[..., Any], *, decompose: Decompose = None) -> Traced:
    """Wrap ``fn`` so that each call traces it (once per input signature) and runs it on an executor.

    Args:
        fn: a function of tensors (possibly nested in lists, tuples and dicts) and plain values.
        decompose: ``None`` keeps ATen operators as ``torch.export`` produces them; ``"prims"``
            traces to primitives under ``TorchRefsMode``; ``"core_aten"`` applies the core ATen
            decomposition table.

    Example::

        traced = torchexec.make_traced(lambda x, *, scale: x.relu() * scale)
        traced(torch.randn(3), scale=2.0, executor="proxy")
    """
    return Traced(fn, decompose)
