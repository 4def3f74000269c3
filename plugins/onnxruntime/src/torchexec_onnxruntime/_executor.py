"""The ``onnxruntime`` executor: export with torch.onnx, run in an ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from torchexec import Capabilities, ExecutorError, OptionSpec, Program
from torchexec_onnxruntime import CAPABILITIES
from torchexec_onnxruntime._options import (
    EXECUTOR,
    OPTIONS,
    check_options,
    resolve_providers,
    session_options,
)

if TYPE_CHECKING:
    import torch

    from torchexec_onnxruntime._runner import OnnxRuntimeRunner

__all__ = ["OnnxRuntimeExecutor"]


class OnnxRuntimeExecutor:
    """Runs programs on ONNX Runtime (``executor="onnxruntime"``).

    ``prepare`` exports the program with ``torch.onnx.export(..., dynamo=True)`` and opens an
    ``InferenceSession`` on the model in memory; the runner binds torch tensors through DLPack.
    """

    name = EXECUTOR
    description = "ONNX Runtime: the torch.onnx exporter's model in an InferenceSession"
    capabilities: Capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = OPTIONS

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Check ``providers``, the thread counts and ``graph_optimization_level``."""
        return check_options(options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object] | None = None) -> bool:
        """Whether the torch.onnx exporter translates ``node`` (asks the exporter's registry).

        No option changes what is claimed: ``options`` is accepted as the protocol passes it.
        """
        from torchexec_onnxruntime._support import supports

        return supports(node)

    def prepare(self, program: Program, options: Mapping[str, object]) -> OnnxRuntimeRunner:
        """Export ``program`` to ONNX and open a session on it.

        Raises:
            ProgramError: an operator the exporter cannot translate (named in the message).
            ExecutorError: ONNX Runtime refuses the exported model, or the program's tensors are
                on CUDA and ONNX Runtime's CUDA provider is not available.
        """
        import onnxruntime as ort  # type: ignore[import-untyped]

        from torchexec_onnxruntime._export import export_program
        from torchexec_onnxruntime._runner import OnnxRuntimeRunner

        plan = export_program(program)
        providers = resolve_providers(options["providers"], plan.device)  # type: ignore[arg-type]
        if plan.device == "cuda" and "CUDAExecutionProvider" not in providers:
            raise ExecutorError(
                f"{EXECUTOR}: the program's tensors are on CUDA inputs but ONNX Runtime's CUDA provider is "
                f"not in use (providers: {', '.join(providers)}; available: "
                f"{', '.join(ort.get_available_providers())}). Install onnxruntime-gpu, or run "
                "the program on CPU tensors."
            )
        if plan.model is None:
            return OnnxRuntimeRunner(plan, None)
        try:
            session = ort.InferenceSession(
                plan.model, session_options(options), providers=providers
            )
        except Exception as exc:
            raise ExecutorError(
                f"{EXECUTOR}: ONNX Runtime could not load the model exported from "
                f"{program.name!r}: {type(exc).__name__}: {str(exc).strip()[:500]}"
            ) from exc
        return OnnxRuntimeRunner(plan, session)
