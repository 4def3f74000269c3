"""The ``onnxruntime`` executor's options and the ONNX Runtime session settings made from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from torchexec import InvalidOptionsError, OptionSpec, validate_options

if TYPE_CHECKING:
    import onnxruntime  # type: ignore[import-untyped]

__all__ = [
    "EXECUTOR",
    "OPTIMIZATION_LEVELS",
    "OPTIONS",
    "check_options",
    "resolve_providers",
    "session_options",
]

EXECUTOR = "onnxruntime"

OPTIMIZATION_LEVELS: Mapping[str, str] = {
    "disable_all": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
"""``graph_optimization_level`` values and the ``onnxruntime.GraphOptimizationLevel`` members."""

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "providers",
        (list, tuple, type(None)),
        None,
        "execution provider names in priority order; default: CPU, or CUDA then CPU for CUDA "
        "inputs when the CUDA provider is available",
    ),
    OptionSpec(
        "intra_op_num_threads", (int,), 0, "threads inside one operator (0: ONNX Runtime decides)"
    ),
    OptionSpec(
        "inter_op_num_threads", (int,), 0, "threads across operators (0: ONNX Runtime decides)"
    ),
    OptionSpec(
        "graph_optimization_level",
        (str,),
        "all",
        f"ONNX Runtime graph optimisations: {', '.join(OPTIMIZATION_LEVELS)}",
    ),
)


def check_options(given: Mapping[str, object] | None) -> dict[str, object]:
    """Validate ``given`` (types by :func:`torchexec.validate_options`, then the values).

    Raises:
        InvalidOptionsError: naming the executor, the option and what it accepts.
    """
    options = validate_options(EXECUTOR, OPTIONS, given)
    for name in ("intra_op_num_threads", "inter_op_num_threads"):
        value = options[name]
        if isinstance(value, int) and value < 0:
            raise InvalidOptionsError(
                f"Option {name!r} of executor {EXECUTOR!r} must be >= 0 (0 lets ONNX Runtime "
                f"decide), got {value}."
            )
    level = options["graph_optimization_level"]
    if level not in OPTIMIZATION_LEVELS:
        raise InvalidOptionsError(
            f"Option 'graph_optimization_level' of executor {EXECUTOR!r} must be one of "
            f"{', '.join(OPTIMIZATION_LEVELS)}, got {level!r}."
        )
    providers = options["providers"]
    if providers is not None:
        if not isinstance(providers, Sequence) or not providers:
            raise InvalidOptionsError(
                f"Option 'providers' of executor {EXECUTOR!r} must be a non-empty list of "
                f"execution provider names, got {providers!r}."
            )
        bad = [p for p in providers if not isinstance(p, str)]
        if bad:
            raise InvalidOptionsError(
                f"Option 'providers' of executor {EXECUTOR!r} must hold provider names "
                f"(str), got {bad[0]!r}."
            )
        options["providers"] = tuple(providers)
    return options


def resolve_providers(requested: Sequence[str] | None, device_type: str) -> list[str]:
    """The providers a session for inputs on ``device_type`` uses.

    Raises:
        InvalidOptionsError: a requested provider is not available in this ONNX Runtime build.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested is None:
        if device_type == "cuda" and _CUDA in available:
            return [_CUDA, _CPU]
        return [_CPU]
    missing = [p for p in requested if p not in available]
    if missing:
        raise InvalidOptionsError(
            f"Option 'providers' of executor {EXECUTOR!r}: {', '.join(missing)} is not available "
            f"in this ONNX Runtime build. Available: {', '.join(available)}."
        )
    return list(requested)


def session_options(options: Mapping[str, object]) -> onnxruntime.SessionOptions:
    """``SessionOptions`` for validated ``options``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(options["intra_op_num_threads"])  # type: ignore[call-overload]
    so.inter_op_num_threads = int(options["inter_op_num_threads"])  # type: ignore[call-overload]
    member = OPTIMIZATION_LEVELS[str(options["graph_optimization_level"])]
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, member)
    so.log_severity_level = 3  # errors only: ONNX Runtime's warnings are about its own choices
    return so
