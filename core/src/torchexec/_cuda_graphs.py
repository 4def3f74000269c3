"""``cuda_graphs=True``: capture a capture-safe executor's runner into a ``torch.cuda.CUDAGraph``
on the first call and replay it on later calls."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from torchexec._errors import InvalidOptionsError, ProgramError
from torchexec._executor import Runner
from torchexec._placement import operator_name

if TYPE_CHECKING:
    from torchexec._program import Program

__all__ = ["CudaGraphRunner", "CudaGraphs", "check_capturable", "cuda_graphs_mode"]

CudaGraphs = bool | Literal["reuse_outputs"]
"""``False``, ``True`` (each call returns fresh output tensors) or ``"reuse_outputs"`` (each
call returns the graph's own output tensors, which the next call overwrites)."""

_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()

# Operators that synchronise with the host or whose output shape depends on data: a capture
# would fail with a CUDA error, or replay a shape frozen at capture time.
_HOST_SYNC = {"aten::_local_scalar_dense", "aten::item", "aten::_assert_async.msg"}


def cuda_graphs_mode(value: object) -> CudaGraphs:
    """Check the ``cuda_graphs=`` argument.

    Raises:
        InvalidOptionsError: it is none of ``False``, ``True`` and ``"reuse_outputs"``.
    """
    if value is False or value is True:
        return value
    if value == "reuse_outputs":
        return "reuse_outputs"
    raise InvalidOptionsError(f"cuda_graphs must be False, True or 'reuse_outputs', got {value!r}")


def _pool(device: torch.device) -> Any:
    """One memory pool per device, shared by every graph torchexec captures in this process.

    The caching allocator frees a pool once no graph uses it, and refuses its handle after
    that; a small graph captured into the pool when it is made, and kept here, keeps it alive.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    with _POOLS_LOCK:
        if index not in _POOLS:
            handle = torch.cuda.graph_pool_handle()
            keeper = torch.cuda.CUDAGraph()
            with torch.cuda.device(index), torch.cuda.graph(keeper, pool=handle):
                torch.zeros(1, device=f"cuda:{index}").add_(1)
            _POOLS[index] = (handle, keeper)
        return _POOLS[index][0]


def check_capturable(program: Program, leaves: Sequence[Any], executors: Sequence[str]) -> None:
    """Refuse, before anything runs, what a CUDA graph cannot hold.

    Raises:
        InvalidOptionsError: an executor's runner is not capture-safe.
        ProgramError: the inputs are not CUDA tensors, or a node syncs with the host, has a
            data-dependent shape or makes a CPU tensor (the message names the node).
    """
    from torchexec._registry import REGISTRY

    for name in executors:
        if not REGISTRY.get(name).capabilities.capture_safe:
            raise InvalidOptionsError(
                f"cuda_graphs=True needs an executor whose runner is capture-safe; executor "
                f"{name!r} ({REGISTRY.distribution_of(name)}) does not declare "
                "Capabilities(capture_safe=True)"
            )
    tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
    if not tensors or any(t.device.type != "cuda" for t in tensors):
        where = sorted({str(t.device) for t in tensors}) or ["no tensor inputs"]
        raise ProgramError(
            f"cuda_graphs=True captures CUDA work: every tensor input of {program.name!r} must "
            f"be on a CUDA device, got {', '.join(where)}"
        )
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    for node in program.graph_module().graph.nodes:
        if node.op != "call_function":
            continue
        op = operator_name(node.target)
        if op in _HOST_SYNC:
            raise ProgramError(
                f"cuda_graphs=True: node {node.name!r} ({op}) reads a value back to the host, "
                "which a CUDA graph cannot capture"
            )
        val = node.meta.get("val")
        for v in val if isinstance(val, (tuple, list)) else (val,):
            if isinstance(v, (torch.Tensor, torch.SymInt)) and free_unbacked_symbols(v):
                raise ProgramError(
                    f"cuda_graphs=True: node {node.name!r} ({op}) has a data-dependent shape, "
                    "which a CUDA graph would freeze at capture time"
                )
            if isinstance(v, torch.Tensor) and v.device.type == "cpu":
                raise ProgramError(
                    f"cuda_graphs=True: node {node.name!r} ({op}) makes a CPU tensor, which a "
                    "CUDA graph cannot capture; move the program to the GPU"
                )


def _written_placeholder(node: Any) -> Any:
    """The placeholder a written argument aliases (through view operators), if any."""
    while node.op == "call_function" and node.args and isinstance(node.args[0], torch.fx.Node):
        target = node.target
        schema = getattr(target, "_schema", None)
        returns = schema.returns if schema is not None else ()
        if not (returns and returns[0].alias_info is not None):
            return None
        node = node.args[0]
    return node if node.op == "placeholder" else None


def _mutations(program: Program) -> tuple[set[str], list[int]]:
    """The state (by name) and user inputs (by flat index) a program writes: as mutation outputs
    of a functional program, and as in-place operators on them in a training-IR graph."""
    from torch.export.graph_signature import InputKind

    targets: set[str] = set()
    inputs: set[int] = set()
    for out in program.graph_outputs():
        if out.kind == "buffer_mutation" and out.target is not None:
            targets.add(out.target)
        elif out.kind == "user_input_mutation" and out.user_input is not None:
            inputs.add(out.user_input)
    specs = program.exported_program().graph_signature.input_specs
    by_name = {spec.arg.name: spec for spec in specs}
    user = [spec.arg.name for spec in specs if spec.kind == InputKind.USER_INPUT]
    for node in program.graph_module().graph.nodes:
        schema = getattr(node.target, "_schema", None) if node.op == "call_function" else None
        if schema is None or not schema.is_mutable:
            continue
        values = dict(zip((a.name for a in schema.arguments), node.args, strict=False))
        values.update(node.kwargs)
        for arg in schema.arguments:
            value = values.get(arg.name)
            if arg.alias_info is None or not arg.alias_info.is_write:
                continue
            if not isinstance(value, torch.fx.Node):
                continue
            ph = _written_placeholder(value)
            spec = by_name.get(ph.name) if ph is not None else None
            if spec is None:
                continue
            if spec.kind == InputKind.USER_INPUT:
                inputs.add(user.index(spec.arg.name))
            elif spec.target is not None:
                targets.add(spec.target)
    return targets, sorted(inputs)


class CudaGraphRunner:
    """Wraps a capture-safe runner: the first call warms it up on a side stream and captures it
    with static input buffers; each later call copies the inputs in and replays.

    Buffers the program mutates are restored after the warm-up, so that every call, the first
    included, applies the program's mutations exactly once; user inputs the program mutates get
    the new values copied back after each replay.
    """

    def __init__(
        self,
        runner: Runner,
        program: Program,
        reuse_outputs: bool,
    ) -> None:
        self._runner = runner
        self._name = program.name
        self._reuse = reuse_outputs
        state = program.state()
        targets, self._mutated_inputs = _mutations(program)
        self._buffers = [state[t] for t in sorted(targets)]
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_in: list[Any] = []
        self._static_out: Sequence[Any] = ()
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Sequence[Any]:
        with self._lock:
            if self._graph is None:
                self._capture(args)
            assert self._graph is not None
            for static, x in zip(self._static_in, args, strict=True):
                if isinstance(static, torch.Tensor):
                    static.copy_(x)
            self._graph.replay()
            for j in self._mutated_inputs:
                args[j].copy_(self._static_in[j])
            if self._reuse:
                return list(self._static_out)
            return [o.clone() if isinstance(o, torch.Tensor) else o for o in self._static_out]

    def _capture(self, args: Sequence[Any]) -> None:
        static = [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in args]
        device = next(x.device for x in static if isinstance(x, torch.Tensor))
        saved = [b.detach().clone() for b in self._buffers]
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(device))
        try:
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._runner(*static)
            torch.cuda.current_stream(device).wait_stream(side)
            with torch.no_grad():
                for buf, value in zip(self._buffers, saved, strict=True):
                    buf.copy_(value)
            for x, s in zip(args, static, strict=True):  # warm-up may have mutated the inputs
                if isinstance(s, torch.Tensor):
                    s.copy_(x)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=_pool(device)):
                outs = self._runner(*static)
        except Exception as exc:
            raise ProgramError(
                f"cuda_graphs=True: cannot capture {self._name!r} into a CUDA graph "
                f"({type(exc).__name__}: {exc}); run it without cuda_graphs"
            ) from exc
        self._static_in = static
        self._static_out = list(outs)
        self._graph = graph
