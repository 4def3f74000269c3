"""The ``torchexec`` backend of ``torch.compile``: dynamo's graphs, as ATen graphs from
``aot_autograd``, run on any executor.

The backend is registered once, through the ``torch_dynamo_backends`` entry point in core's
``pyproject.toml`` (never on import: dynamo refuses a name registered twice)::

    torch.compile(model, backend="torchexec", options={"executor": "proxy"})
    torch.compile(model, backend=torchexec.backend(executor=["onnxruntime", "aten"]))

Each graph ``aot_autograd`` hands over (forward, backward, or the inference forward under
``no_grad``) becomes a :class:`~torchexec.Program` without tracing again
(:func:`torchexec._graph_program.program_from_aten_graph`), and is prepared when it first runs:
then the inputs are real tensors, no fake mode is active, and every error is the torchexec error
``prepare`` raises, from the call that ran it. The prepared runner belongs to the compiled graph,
so dynamo owns its lifetime (a recompile makes a new one; ``torch._dynamo.reset()`` drops them):
the runner cache of ``execute`` never holds a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torchexec._api import PREPARE_LOCK, PreparedProgram, prepare_program
from torchexec._choice import ExecutorChoice
from torchexec._cuda_graphs import CudaGraphs, cuda_graphs_mode
from torchexec._errors import InvalidOptionsError
from torchexec._graph_program import GraphProgram, program_from_aten_graph

if TYPE_CHECKING:
    import torch

__all__ = ["CompiledGraph", "TorchexecBackend", "backend", "compile_backend"]

BACKEND_NAME = "torchexec"
_OPTION_KEYS = ("executor", "executor_parameters", "cuda_graphs")


class CompiledGraph:
    """One ATen graph of a compiled function, prepared on its first call.

    It takes its inputs boxed (one list, which it empties, so that ``aot_autograd`` can free
    the tensors saved for the backward as soon as they are read) and returns the graph's
    outputs as a list.
    """

    def __init__(self, gm: torch.fx.GraphModule, name: str, backend: TorchexecBackend) -> None:
        # aot_autograd's calling convention, one list of inputs; an attribute of the instance,
        # which the wrappers dynamo puts around a backward graph copy with functools.wraps.
        self._boxed_call = True
        self.name = name
        self._gm = gm
        self._backend = backend
        # the prepared program, and the program's outputs' layout where it is not the graph's
        self._ready: tuple[PreparedProgram, GraphProgram | None] | None = None

    def __repr__(self) -> str:
        return f"CompiledGraph({self.name!r}, {self._backend!r})"

    def _prepare(self) -> tuple[PreparedProgram, GraphProgram | None]:
        from torch.utils._python_dispatch import _disable_current_modes

        # aot_autograd runs a graph's first call under a dispatch mode of its own (it checks
        # custom operators for aliasing): preparing, which may trace, runs outside it.
        with PREPARE_LOCK, _disable_current_modes():
            if self._ready is None:
                executor, params, graphs = _read_options(self._backend.options, self._backend.mode)
                graph = program_from_aten_graph(self._gm, self.name)
                examples = tuple(
                    n.meta.get("val") for n in self._gm.graph.nodes if n.op == "placeholder"
                )
                prepared = prepare_program(
                    graph.program, examples, {}, executor, params, cuda_graphs=graphs
                )
                self._ready = (prepared, None if graph.direct else graph)
            return self._ready

    def __call__(self, args: list[Any]) -> Sequence[Any]:
        prepared, layout = self._ready or self._prepare()
        flat = tuple(args)
        args.clear()
        outs = prepared.run_flat(flat)
        return outs if layout is None else layout.outputs(outs)


def _read_options(
    options: object, mode: str | None
) -> tuple[ExecutorChoice, Mapping[str, Any] | None, CudaGraphs]:
    """The executor choice, its parameters and the CUDA-graph mode from the backend's options.

    Raises:
        InvalidOptionsError: ``options`` is not a mapping or holds an option the backend does
            not take, or ``torch.compile`` was given a ``mode``.
    """
    example = "torch.compile(model, backend='torchexec', options={'executor': 'proxy'})"
    if mode is not None:
        raise InvalidOptionsError(
            f"the torchexec backend has no modes (torch.compile got mode={mode!r}); choose what "
            f"runs the graphs with options instead, e.g. {example}"
        )
    if options is None:
        return "aten", None, False
    if not isinstance(options, Mapping):
        raise InvalidOptionsError(
            f"torch.compile options for the torchexec backend must be a mapping, got "
            f"{type(options).__name__} ({options!r}), e.g. {example}"
        )
    unknown = [key for key in options if key not in _OPTION_KEYS]
    if unknown:
        raise InvalidOptionsError(
            f"the torchexec backend has no option {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(map(repr, _OPTION_KEYS))}, e.g. {example}"
        )
    executor: ExecutorChoice = options.get("executor", "aten")
    graphs = cuda_graphs_mode(options.get("cuda_graphs", False))
    return executor, options.get("executor_parameters"), graphs


def _compile_id() -> str:
    """Dynamo's id of the frame being compiled (``0/0``: frame 0, first compile)."""
    import torch._guards

    cid = torch._guards.CompileContext.current_compile_id()
    return str(cid) if cid is not None else "?"


class TorchexecBackend:
    """A ``torch.compile`` backend that runs every graph on a torchexec executor.

    Dynamo calls it with each captured graph; it hands the graph to ``aot_autograd``, which
    gives the forward and backward ATen graphs (or the inference forward) to
    :class:`CompiledGraph`. The options (``executor``, ``executor_parameters``) are checked
    when a graph first runs.
    """

    __name__ = BACKEND_NAME  # the name dynamo shows in its logs and errors

    def __init__(self, options: object, mode: str | None = None) -> None:
        self.options = options
        self.mode = mode

    def __repr__(self) -> str:
        return f"TorchexecBackend(options={self.options!r})"

    def __call__(
        self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any]
    ) -> Callable[..., Any]:
        from torch._dynamo.backends.common import aot_autograd

        cid = _compile_id()

        def compiler(role: str) -> Callable[[torch.fx.GraphModule, Sequence[Any]], CompiledGraph]:
            def compile_graph(graph: torch.fx.GraphModule, _: Sequence[Any]) -> CompiledGraph:
                return CompiledGraph(graph, f"compile {cid} {role}", self)

            return compile_graph

        compile_fn: Callable[..., Any] = aot_autograd(
            fw_compiler=compiler("forward"),
            bw_compiler=compiler("backward"),
            inference_compiler=compiler("inference"),
        )(gm, example_inputs)
        return compile_fn


def backend(
    executor: ExecutorChoice = "aten",
    executor_parameters: Mapping[str, object] | None = None,
    *,
    cuda_graphs: CudaGraphs = False,
) -> TorchexecBackend:
    """A ``torch.compile`` backend that runs the compiled graphs on ``executor``.

    ``torch.compile(model, backend=torchexec.backend(executor="proxy"))`` is
    ``torch.compile(model, backend="torchexec", options={"executor": "proxy"})``.

    Args:
        executor: an executor's name, or a priority list of names (see :doc:`/partitioned`).
        executor_parameters: the executor's options; for a list, a mapping from executor name
            to that executor's options.
        cuda_graphs: capture each compiled graph's runner into a CUDA graph (see
            :doc:`/cuda-graphs`).

    Errors (an unknown executor, bad options, operators the executors do not claim) are raised
    as torchexec errors by the first call of the compiled function. See :doc:`/torch-compile`.
    """
    options: dict[str, object] = {"executor": executor}
    if executor_parameters is not None:
        options["executor_parameters"] = executor_parameters
    if cuda_graphs:
        options["cuda_graphs"] = cuda_graphs
    return TorchexecBackend(options)


def compile_backend(
    gm: torch.fx.GraphModule,
    example_inputs: Sequence[Any],
    *,
    options: object = None,
    mode: str | None = None,
) -> Callable[..., Any]:
    """The ``torchexec`` backend as dynamo finds it by name (the ``torch_dynamo_backends`` entry
    point): ``torch.compile(model, backend="torchexec", options={"executor": ...})``."""
    return TorchexecBackend(options, mode)(gm, example_inputs)
