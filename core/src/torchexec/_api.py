"""``execute`` and ``prepare``: the public entry points, the input checks and the runner cache."""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree

from torchexec._cache import CacheInfo, LRUCache, freeze
from torchexec._errors import ExecutorError, InputMismatchError, TorchexecError
from torchexec._executor import Runner
from torchexec._program import Program, normalize
from torchexec._registry import REGISTRY

__all__ = [
    "PreparedProgram",
    "TensorSpec",
    "cache_info",
    "clear_cache",
    "execute",
    "prepare",
    "set_cache_size",
]

_CACHE: LRUCache[PreparedProgram] = LRUCache(maxsize=128)

PREPARE_LOCK = threading.RLock()
"""Held while tracing and preparing: ``torch.export`` and tracing use process-global state and
are not thread-safe. Cache hits never take it."""


@dataclass(frozen=True)
class TensorSpec:
    """What a prepared program expects of one tensor input."""

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorSpec:
        """The spec of an example tensor."""
        return cls(t.shape, t.dtype, t.device)

    def __str__(self) -> str:
        return f"{self.dtype} tensor of shape {list(self.shape)} on {self.device}"


def _describe_value(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return str(TensorSpec.of(x))
    return f"{type(x).__name__} {x!r}"


def _input_label(spec: pytree.TreeSpec, index: int) -> str:
    """A readable path for the ``index``-th leaf of an ``(args, kwargs)`` spec."""
    try:
        paths = pytree.tree_flatten_with_path(
            pytree.tree_unflatten(list(range(spec.num_leaves)), spec)
        )[0]
        path = paths[index][0]
    except Exception:
        return f"input {index}"
    if path and isinstance(path[0], pytree.SequenceKey):
        head = "args" if path[0].idx == 0 else "kwargs"
        return head + pytree.keystr(path[1:]) if len(path) > 1 else head
    return f"input {index}"


class PreparedProgram:
    """A program prepared for one executor and one input signature; call it like the program.

    Each call checks its inputs against the spec the program was prepared for and raises
    :class:`~torchexec.InputMismatchError` naming the input and how it differs.
    """

    def __init__(
        self,
        program: Program,
        executor: str,
        runner: Runner,
        in_spec: pytree.TreeSpec,
        leaf_specs: Sequence[TensorSpec | object],
    ) -> None:
        self.program = program
        self.executor = executor
        self.runner = runner
        self.in_spec = in_spec
        self.out_spec = program.out_spec
        self.leaf_specs = tuple(leaf_specs)
        self.source: object = None  # what the cache keyed by identity; kept alive with the entry
        # 1: a single tensor, 2: a flat tuple, 0: any other structure (rebuilt with pytree).
        self._n_out = n_out = self.out_spec.num_leaves
        self._out_kind = (
            1
            if self.out_spec.is_leaf()
            else 2
            if self.out_spec == pytree.tree_structure(tuple(range(n_out)))
            else 0
        )
        n = in_spec.num_leaves
        # Inputs that are n positional tensors need no pytree flattening on the hot path.
        self._tensor_specs = tuple(s for s in self.leaf_specs if isinstance(s, TensorSpec))
        self._positional = in_spec == pytree.tree_structure((tuple(range(n)), {})) and len(
            self._tensor_specs
        ) == len(self.leaf_specs)

    def __repr__(self) -> str:
        return f"PreparedProgram({self.program.name!r}, executor={self.executor!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._positional and not kwargs and len(args) == len(self._tensor_specs):
            for x, want in zip(args, self._tensor_specs, strict=True):
                if not (
                    isinstance(x, torch.Tensor)
                    and x.shape == want.shape
                    and x.dtype == want.dtype
                    and x.device == want.device
                ):
                    self.check(args, self.in_spec)  # raises, naming the input
            return self.run_flat(args)
        leaves, spec = pytree.tree_flatten((args, kwargs))
        self.check(leaves, spec)
        return self.run_flat(leaves)

    def run_flat(self, leaves: Sequence[Any]) -> Any:
        """Run on already-checked flat inputs and rebuild the output structure."""
        try:
            outs = self.runner(*leaves)
        except TorchexecError:
            raise
        except Exception as exc:
            raise ExecutorError(
                f"executor {self.executor!r} ({REGISTRY.distribution_of(self.executor)}) failed "
                f"while running {self.program.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if len(outs) != self._n_out:
            raise ExecutorError(
                f"executor {self.executor!r} ({REGISTRY.distribution_of(self.executor)}) returned "
                f"{len(outs)} outputs for {self.program.name!r}, which has {self._n_out}"
            )
        if self._out_kind == 1:
            return outs[0]
        if self._out_kind == 2:
            return tuple(outs)
        return pytree.tree_unflatten(list(outs), self.out_spec)

    def check(self, leaves: Sequence[Any], spec: pytree.TreeSpec) -> None:
        """Raise :class:`~torchexec.InputMismatchError` unless the inputs match the prepared spec."""
        if spec != self.in_spec:
            raise InputMismatchError(
                f"{self.program.name!r}: {_structure_mismatch(self.in_spec, spec)}. "
                "Prepare the program again for inputs of another structure "
                "(torchexec.execute does this automatically)."
            )
        for i, (x, want) in enumerate(zip(leaves, self.leaf_specs, strict=True)):
            if isinstance(want, TensorSpec):
                problem = _tensor_mismatch(x, want)
            elif isinstance(x, torch.Tensor) or type(x) is not type(want) or x != want:
                problem = (
                    f"expected {_describe_value(want)} (specialised when prepared), "
                    f"got {_describe_value(x)}"
                )
            else:
                problem = None
            if problem is not None:
                raise InputMismatchError(
                    f"{_input_label(spec, i)} of {self.program.name!r}: {problem}. "
                    "Prepare the program again for new input shapes or types "
                    "(torchexec.execute does this automatically)."
                )


def _structure_mismatch(want: pytree.TreeSpec, got: pytree.TreeSpec) -> str:
    """Where two ``(args, kwargs)`` specs first differ, in words."""
    want_args, want_kwargs = want.children()
    got_args, got_kwargs = got.children()
    if want_args.num_children != got_args.num_children:
        return (
            f"expected {want_args.num_children} positional arguments, got {got_args.num_children}"
        )
    for i, (w, g) in enumerate(zip(want_args.children(), got_args.children(), strict=True)):
        if w != g:
            return f"args[{i}]: expected {_spec_words(w)}, got {_spec_words(g)}"
    if want_kwargs.context != got_kwargs.context:
        return (
            f"expected keyword arguments {sorted(want_kwargs.context or [])}, "
            f"got {sorted(got_kwargs.context or [])}"
        )
    for key, w, g in zip(
        want_kwargs.context, want_kwargs.children(), got_kwargs.children(), strict=True
    ):
        if w != g:
            return f"kwargs[{key!r}]: expected {_spec_words(w)}, got {_spec_words(g)}"
    return f"expected inputs structured as {want}, got {got}"


def _spec_words(spec: pytree.TreeSpec) -> str:
    if spec.is_leaf():
        return "a single value"
    kind = getattr(spec.type, "__name__", str(spec.type))
    return f"a {kind} of {spec.num_leaves} values"


def _tensor_mismatch(x: object, want: TensorSpec) -> str | None:
    if not isinstance(x, torch.Tensor):
        return f"expected a {want}, got {_describe_value(x)}"
    if x.dtype != want.dtype:
        return f"expected dtype {want.dtype}, got {x.dtype}"
    if x.shape != want.shape:
        return f"expected shape {list(want.shape)}, got {list(x.shape)}"
    if x.device != want.device:
        return f"expected device {want.device}, got {x.device}"
    return None


def _leaf_specs(leaves: Sequence[Any]) -> list[TensorSpec | object]:
    return [TensorSpec.of(x) if isinstance(x, torch.Tensor) else x for x in leaves]


def prepare_program(
    program: Program,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    executor: str,
    executor_parameters: Mapping[str, object] | None,
) -> PreparedProgram:
    """Prepare a normalised program for ``executor`` with example inputs."""
    impl = REGISTRY.get(executor)
    options = impl.validate_options(executor_parameters)
    leaves, spec = pytree.tree_flatten((args, dict(kwargs)))
    prepared_spec = program.in_spec
    if spec != prepared_spec:
        raise InputMismatchError(
            f"{program.name!r} takes inputs structured as {prepared_spec} "
            f"({prepared_spec.num_leaves} leaves), but the example inputs are {spec} "
            f"({spec.num_leaves} leaves)"
        )
    try:
        runner = impl.prepare(program, options)
    except TorchexecError:
        raise
    except Exception as exc:
        raise ExecutorError(
            f"executor {executor!r} ({REGISTRY.distribution_of(executor)}) failed to prepare "
            f"{program.name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(runner):
        raise ExecutorError(
            f"executor {executor!r} ({REGISTRY.distribution_of(executor)}) returned "
            f"{type(runner).__name__} from prepare(), which is not callable"
        )
    return PreparedProgram(program, executor, runner, prepared_spec, _leaf_specs(leaves))


def prepare(
    program: object,
    *example_args: Any,
    executor: str = "aten",
    executor_parameters: Mapping[str, object] | None = None,
    **example_kwargs: Any,
) -> PreparedProgram:
    """Prepare ``program`` once for ``executor``; call the result many times.

    Args:
        program: a ``torch.fx.GraphModule``, ``torch.export.ExportedProgram``, module, function,
            or the path of a ``.pt2`` archive.
        example_args, example_kwargs: inputs with the shapes, dtypes and devices of later calls.
        executor: the executor's name (see ``torchexec list``).
        executor_parameters: options for the executor, validated by it.

    Returns:
        A :class:`PreparedProgram` that checks each call's inputs against the examples.
    """
    with PREPARE_LOCK:
        prog = normalize(program, example_args, example_kwargs)
        return prepare_program(prog, example_args, example_kwargs, executor, executor_parameters)


def _program_key(program: object) -> Hashable:
    if isinstance(program, (str, os.PathLike)):
        path = os.fspath(program)
        try:
            st = os.stat(path)
        except OSError:
            return ("path", path)
        return ("path", os.path.abspath(path), st.st_mtime_ns, st.st_size)
    return ("obj", id(program))


def _leaf_key(x: object) -> Hashable:
    if isinstance(x, torch.Tensor):
        return (x.shape, x.dtype, x.device)
    return (type(x), freeze(x))


def execute(
    program: object,
    *args: Any,
    executor: str = "aten",
    executor_parameters: Mapping[str, object] | None = None,
) -> Any:
    """Run ``program`` on ``args`` with the executor called ``executor``.

    The prepared runner is cached per (program, input shapes/dtypes/devices, executor, options),
    so repeated calls only pay for the run. Outputs keep the program's structure.

    Raises:
        ExecutorNotFoundError: no executor of that name (also a ``ValueError``).
        ExecutorLoadError: the executor's plugin is broken.
        InvalidOptionsError: ``executor_parameters`` does not suit the executor.
        ProgramError: the program cannot be traced, read or run by the executor.
    """
    leaves: Sequence[Any] = args
    call_key: Hashable
    if all([isinstance(a, torch.Tensor) for a in args]):
        call_key = tuple([(a.shape, a.dtype, a.device) for a in args])
    else:  # not only tensors: key on the pytree structure and the values
        leaves, spec = pytree.tree_flatten((args, {}))
        call_key = (spec, tuple(_leaf_key(x) for x in leaves))
    opts_key = None if executor_parameters is None else freeze(executor_parameters)
    key = (_program_key(program), call_key, executor, opts_key, REGISTRY.generation)
    prepared = _CACHE.get(key)
    if prepared is None:
        with PREPARE_LOCK:
            prepared = _CACHE.peek(key)  # another thread may have prepared it meanwhile
            if prepared is None:
                prog = normalize(program, args)
                prepared = prepare_program(prog, args, {}, executor, executor_parameters)
                # The entry keeps ``program`` alive, so its id is not reused while it exists.
                prepared.source = program
                prepared = _CACHE.put(key, prepared)
    return prepared.run_flat(leaves)


def cache_info() -> CacheInfo:
    """Hits, misses, bound and size of the runner cache shared by ``execute`` and traced functions."""
    return _CACHE.info()


def clear_cache() -> None:
    """Drop every cached prepared program."""
    _CACHE.clear()


def set_cache_size(maxsize: int) -> None:
    """Bound the runner cache to ``maxsize`` entries (default 128)."""
    _CACHE.resize(maxsize)


def cache() -> LRUCache[PreparedProgram]:
    """The shared runner cache (for ``make_traced``)."""
    return _CACHE
