"""``execute`` and ``prepare``: the public entry points, the input checks and the runner cache."""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree

from torchexec._cache import CacheInfo, LRUCache, freeze
from torchexec._choice import ExecutorChoice, choice_key, executor_label, executor_names
from torchexec._cuda_graphs import CudaGraphs, cuda_graphs_mode
from torchexec._errors import ExecutorError, InputMismatchError, TorchexecError
from torchexec._executor import Runner
from torchexec._invoke import call_prepare
from torchexec._placement import Placement
from torchexec._program import Program, normalize
from torchexec._registry import REGISTRY

__all__ = [
    "ExecutorChoice",
    "PreparedProgram",
    "TensorSpec",
    "cache_info",
    "clear_cache",
    "execute",
    "explain",
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


class _OutKind(enum.Enum):
    """How a runner's flat outputs become the program's output structure."""

    SINGLE = enum.auto()  # one value, returned as is
    FLAT_TUPLE = enum.auto()  # a flat tuple
    PYTREE = enum.auto()  # any other structure, rebuilt with pytree


class PreparedProgram:
    """A program prepared for one executor (or a priority list of executors) and one input
    signature; call it like the program.

    Each call checks its inputs against the spec the program was prepared for and raises
    :class:`~torchexec.InputMismatchError` naming the input and how it differs.

    ``executor`` is the executor's name, or the tuple of names of a priority list;
    :attr:`placement` says which executor runs which operator nodes.
    """

    def __init__(
        self,
        program: Program,
        executor: str | tuple[str, ...],
        runner: Runner,
        in_spec: pytree.TreeSpec,
        leaf_specs: Sequence[TensorSpec | object],
        placement: Placement | None = None,
    ) -> None:
        self.program = program
        self.executor = executor
        self.runner = runner
        self.in_spec = in_spec
        self.out_spec = program.out_spec
        self.leaf_specs = tuple(leaf_specs)
        self.source: object = None  # what the cache keyed by identity; kept alive with the entry
        self._placement = placement
        self._label = executor_label(executor)
        self._n_out = n_out = self.out_spec.num_leaves
        self._out_kind = (
            _OutKind.SINGLE
            if self.out_spec.is_leaf()
            else _OutKind.FLAT_TUPLE
            if self.out_spec == pytree.tree_structure(tuple(range(n_out)))
            else _OutKind.PYTREE
        )
        n = in_spec.num_leaves
        # Inputs that are n positional tensors need no pytree flattening on the hot path.
        self._tensor_specs = tuple(s for s in self.leaf_specs if isinstance(s, TensorSpec))
        self._positional = in_spec == pytree.tree_structure((tuple(range(n)), {})) and len(
            self._tensor_specs
        ) == len(self.leaf_specs)

    def __repr__(self) -> str:
        return f"PreparedProgram({self.program.name!r}, executor={self.executor!r})"

    @property
    def placement(self) -> Placement:
        """Which executor runs which operator nodes.

        For a single executor the whole program is one partition; reading this on a program
        that came from a file loads its graph (the executor itself may not have needed it).
        """
        if self._placement is None:
            assert isinstance(self.executor, str)
            self._placement = Placement.whole(self.program, self.executor)
        return self._placement

    def _describe_executor(self) -> str:
        if isinstance(self.executor, str):
            return f"executor {self.executor!r} ({REGISTRY.distribution_of(self.executor)})"
        return f"executors {self._label}"

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
                f"{self._describe_executor()} failed while running {self.program.name!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if len(outs) != self._n_out:
            raise ExecutorError(
                f"{self._describe_executor()} returned {len(outs)} outputs for "
                f"{self.program.name!r}, which has {self._n_out}"
            )
        if self._out_kind is _OutKind.SINGLE:
            return outs[0]
        if self._out_kind is _OutKind.FLAT_TUPLE:
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
    executor: ExecutorChoice,
    executor_parameters: Mapping[str, object] | None,
    cuda_graphs: CudaGraphs = False,
) -> PreparedProgram:
    """Prepare a normalised program for ``executor`` (a name or a priority list) with example
    inputs; ``cuda_graphs`` wraps the runner in a CUDA graph captured on the first call."""
    names = executor_names(executor)
    cuda_graphs = cuda_graphs_mode(cuda_graphs)
    leaves, spec = pytree.tree_flatten((args, dict(kwargs)))
    prepared_spec = program.in_spec
    if spec != prepared_spec:
        raise InputMismatchError(
            f"{program.name!r} takes inputs structured as {prepared_spec} "
            f"({prepared_spec.num_leaves} leaves), but the example inputs are {spec} "
            f"({spec.num_leaves} leaves)"
        )
    if cuda_graphs:
        from torchexec._cuda_graphs import check_capturable

        check_capturable(program, leaves, names)
    placement = None
    if isinstance(executor, str):
        runner = _prepare_single(program, executor, executor_parameters)
    else:
        from torchexec._partition import prepare_partitioned

        runner, placement = prepare_partitioned(program, names, executor_parameters)
    if cuda_graphs:
        from torchexec._cuda_graphs import CudaGraphRunner

        runner = CudaGraphRunner(runner, program, reuse_outputs=cuda_graphs == "reuse_outputs")
    choice = executor if isinstance(executor, str) else names
    return PreparedProgram(
        program, choice, runner, prepared_spec, _leaf_specs(leaves), placement=placement
    )


def _prepare_single(
    program: Program, executor: str, executor_parameters: Mapping[str, object] | None
) -> Runner:
    impl = REGISTRY.get(executor)
    options = impl.validate_options(executor_parameters)
    if program.path is None and hasattr(impl, "supports"):
        # A program in memory has its graph at hand: refuse what the executor does not claim
        # before it prepares. (An executor that reads files checks its operators while loading.)
        from torchexec._partition import check_claims

        check_claims(program, executor, impl, options)
    return call_prepare(impl, executor, program, options)


def prepare(
    program: object,
    *example_args: Any,
    executor: ExecutorChoice = "aten",
    executor_parameters: Mapping[str, object] | None = None,
    cuda_graphs: CudaGraphs = False,
    **example_kwargs: Any,
) -> PreparedProgram:
    """Prepare ``program`` once for ``executor``; call the result many times.

    Args:
        program: a ``torch.fx.GraphModule``, ``torch.export.ExportedProgram``, module, function,
            or the path of a ``.pt2`` archive.
        example_args, example_kwargs: inputs with the shapes, dtypes and devices of later calls.
        executor: the executor's name (see ``torchexec list``), or a priority list of names:
            each operator node then runs on the first executor in the list that claims it
            (see :doc:`/partitioned`).
        executor_parameters: options for the executor, validated by it; for a list, a mapping
            from executor name to that executor's options.
        cuda_graphs: ``True`` captures the runner into a CUDA graph on the first call and
            replays it afterwards, returning fresh output tensors; ``"reuse_outputs"`` returns
            the graph's own output tensors, which the next call overwrites (see
            :doc:`/cuda-graphs`). Needs CUDA inputs and a capture-safe executor.

    Returns:
        A :class:`PreparedProgram` that checks each call's inputs against the examples.
    """
    with PREPARE_LOCK:
        prog = normalize(program, example_args, example_kwargs)
        return prepare_program(
            prog, example_args, example_kwargs, executor, executor_parameters, cuda_graphs
        )


def explain(
    program: object,
    *example_args: Any,
    executor: ExecutorChoice = "aten",
    executor_parameters: Mapping[str, object] | None = None,
    **example_kwargs: Any,
) -> Placement:
    """Where each operator node of ``program`` would run on ``executor`` (a name or a priority
    list), without preparing or running anything.

    Example inputs are needed only to trace a module or function; ``executor_parameters`` are
    given as to :func:`prepare` (options can change what an executor claims). Raises
    :class:`~torchexec.UnsupportedOperatorError` as :func:`prepare` would.

    Example::

        print(torchexec.explain("model.pt2", executor=["onnxruntime", "aten"]))
    """
    from torchexec._partition import explain_placement

    names = executor_names(executor)
    params = executor_parameters
    if isinstance(executor, str) and params is not None:
        params = {executor: params}  # one executor's options, keyed as for a list
    with PREPARE_LOCK:
        prog = normalize(program, example_args, example_kwargs)
        return explain_placement(prog, names, params)


def program_key(program: object) -> Hashable:
    """What identifies ``program`` in the runner cache.

    A path is keyed by its modification time and size; an object by identity, and a
    ``GraphModule`` also by its generated ``forward``: ``recompile()`` installs a new one on the
    module's own class, so a graph edited in place and recompiled is prepared again.
    """
    if isinstance(program, (str, os.PathLike)):
        path = os.fspath(program)
        try:
            st = os.stat(path)
        except OSError:
            return ("path", path)
        return ("path", os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if isinstance(program, torch.fx.GraphModule):
        return ("obj", id(program), type(program).__dict__.get("forward"))
    return ("obj", id(program))


def _leaf_key(x: object) -> Hashable:
    if isinstance(x, torch.Tensor):
        return (x.shape, x.dtype, x.device)
    return (type(x), freeze(x))


def call_signature(leaves: Sequence[Any]) -> tuple[Hashable, ...]:
    """The cache-key part of flat call inputs: tensor shape, dtype and device; other values."""
    return tuple(
        [
            (x.shape, x.dtype, x.device) if isinstance(x, torch.Tensor) else _leaf_key(x)
            for x in leaves
        ]
    )


def cached_prepare(
    key: tuple[Hashable, ...],
    executor: ExecutorChoice,
    executor_parameters: Mapping[str, object] | None,
    build: Callable[[], PreparedProgram],
    source: object,
    cuda_graphs: CudaGraphs = False,
) -> tuple[PreparedProgram, bool]:
    """The cached prepared program for ``key`` (plus executor, options and registry state), or
    ``build()``'s, stored; returns it and whether it was a hit.

    ``source`` is kept alive with the entry, so that an identity in the key is not reused.
    """
    opts_key = None if executor_parameters is None else freeze(executor_parameters)
    full_key = (*key, choice_key(executor), opts_key, cuda_graphs, REGISTRY.generation)
    prepared = _CACHE.get(full_key)
    if prepared is not None:
        return prepared, True
    with PREPARE_LOCK:
        prepared = _CACHE.peek(full_key)  # another thread may have prepared it meanwhile
        if prepared is None:
            prepared = build()
            prepared.source = source
            prepared = _CACHE.put(full_key, prepared)
    return prepared, False


def execute(
    program: object,
    *args: Any,
    executor: ExecutorChoice = "aten",
    executor_parameters: Mapping[str, object] | None = None,
    cuda_graphs: CudaGraphs = False,
) -> Any:
    """Run ``program`` on ``args`` with the executor called ``executor``.

    ``executor`` may also be a priority list of names: each operator node then runs on the first
    executor in the list that claims it, and ``executor_parameters`` maps each executor's name
    to its options. The prepared runner is cached per (program, input shapes/dtypes/devices,
    executor, options), so repeated calls only pay for the run. Outputs keep the program's
    structure. ``cuda_graphs`` is as for :func:`prepare`.

    Raises:
        ExecutorNotFoundError: no executor of that name (also a ``ValueError``).
        ExecutorLoadError: the executor's plugin is broken.
        InvalidOptionsError: ``executor_parameters`` does not suit the executor.
        UnsupportedOperatorError: the executors do not claim every operator of the program.
        ProgramError: the program cannot be traced, read or run by the executor.
    """
    leaves: Sequence[Any] = args
    call_key: Hashable
    if all([isinstance(a, torch.Tensor) for a in args]):
        call_key = tuple([(a.shape, a.dtype, a.device) for a in args])
    else:  # not only tensors: key on the pytree structure and the values
        leaves, spec = pytree.tree_flatten((args, {}))
        call_key = (spec, call_signature(leaves))

    def build() -> PreparedProgram:
        prog = normalize(program, args)
        return prepare_program(prog, args, {}, executor, executor_parameters, cuda_graphs)

    prepared, _ = cached_prepare(
        (program_key(program), call_key),
        executor,
        executor_parameters,
        build,
        program,
        cuda_graphs_mode(cuda_graphs),
    )
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
    """The shared runner cache (``make_traced`` counts and clears its own entries in it)."""
    return _CACHE
