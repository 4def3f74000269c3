"""Plugin module of the ``onnxruntime`` executor: registers it without importing torch or ONNX.

The implementation (``torchexec_onnxruntime._executor``) loads on first use. The conformance kit
files this distribution ships are found with :func:`skips_file` and :func:`tolerances_file`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from torchexec import Capabilities, Executor, ExecutorSpec, hookimpl

__all__ = ["CAPABILITIES", "skips_file", "tolerances_file", "torchexec_register_executors"]

CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    torchbind=False,
    bitwise=False,
    unsupported_dtypes=frozenset({"bfloat16"}),
)
"""Not bitwise: ONNX Runtime has its own kernels; the kit compares within :func:`tolerances_file`.
bfloat16 is declared unsupported: ONNX Runtime's CPU provider has no bfloat16 kernel for most
operators (``Add``, ``Mul``, ``MatMul``, ``Exp``... with onnxruntime 1.31)."""

_DESCRIPTION = "ONNX Runtime: the torch.onnx exporter's model in an InferenceSession"


def skips_file() -> Path:
    """The conformance kit's skips file for this executor (``--conformance-skips``)."""
    return Path(str(resources.files(__name__).joinpath("skips.txt")))


def tolerances_file() -> Path:
    """The tolerances this executor meets (``--conformance-tolerances``)."""
    return Path(str(resources.files(__name__).joinpath("tolerances.json")))


def _load() -> Executor:
    from torchexec_onnxruntime._executor import OnnxRuntimeExecutor

    return OnnxRuntimeExecutor()


@hookimpl
def torchexec_register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register the ``onnxruntime`` executor."""
    register(
        ExecutorSpec(
            name="onnxruntime", description=_DESCRIPTION, load=_load, capabilities=CAPABILITIES
        )
    )
