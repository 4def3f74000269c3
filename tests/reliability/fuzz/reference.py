"""What a mutated program should compute, when a loader accepts it: torch's own loaders.

- ExportedProgram JSON: ``torch._export.serde.serialize.deserialize`` then ``.module()``;
- ``.pt2``: ``torch.export.load`` then ``.module()``.

Either may reject a program (``rejected``) or fail while running it (``run_error``); both are
reported, not raised. :func:`compare` decides agreement bit for bit.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.utils._pytree as pytree

__all__ = ["RefResult", "compare", "describe", "ep_json_reference", "pt2_reference"]


@dataclass
class RefResult:
    """The reference's verdict on a program."""

    status: Literal["ok", "rejected", "run_error"]
    outputs: list[Any] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)
    message: str = ""


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, bounded."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " | ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bits(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        return flat
    return flat.view(torch.uint8)


def _same_scalar(e: object, a: object) -> bool:
    if type(e) is not type(a):
        return False
    if isinstance(e, float) and isinstance(a, float):
        if math.isnan(e) and math.isnan(a):
            return True
        return struct.pack("<d", e) == struct.pack("<d", a)
    try:
        return bool(e == a)
    except Exception:
        return e is a


def compare(expected: Sequence[Any], actual: Sequence[Any]) -> str | None:
    """``None`` when both flat value lists agree bit for bit, else the first difference."""
    if len(expected) != len(actual):
        return f"{len(actual)} values, expected {len(expected)}"
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        if isinstance(e, torch.Tensor):
            if not isinstance(a, torch.Tensor):
                return f"value {i}: {type(a).__name__}, expected a tensor"
            if a.dtype != e.dtype or a.shape != e.shape or a.device != e.device:
                return (
                    f"value {i}: {a.dtype} {list(a.shape)} on {a.device}, expected {e.dtype} "
                    f"{list(e.shape)} on {e.device}"
                )
            if a.layout != torch.strided or e.layout != torch.strided:
                if a.layout != e.layout:
                    return f"value {i}: layout {a.layout}, expected {e.layout}"
                continue
            if not torch.equal(_bits(a), _bits(e)):
                return f"value {i}: values differ"
        elif isinstance(e, (list, tuple)) and isinstance(a, (list, tuple)):
            inner = compare(list(e), list(a))
            if inner is not None:
                return f"value {i}: {inner}"
        elif not _same_scalar(e, a):
            return f"value {i}: {a!r}, expected {e!r}"
    return None


def _save(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _quiet_serde() -> None:
    # The deserializer logs (and mis-formats) a warning for constants holding TorchBind objects.
    logging.getLogger("torch._export.serde.serialize").setLevel(logging.CRITICAL)


def _run_module(ep: Any, inputs: Sequence[Any]) -> RefResult:
    try:
        module = ep.module()
        out = module(*inputs)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    except Exception as exc:
        return RefResult("run_error", message=describe(exc))
    return RefResult("ok", pytree.tree_leaves(out), state, list(inputs))


def ep_json_reference(
    model_json: bytes,
    weights: Mapping[str, torch.Tensor],
    constants: Mapping[str, Any],
    inputs: Sequence[Any],
) -> RefResult:
    """Deserialize ``model_json`` with torch's serde module, run ``.module()`` on ``inputs``."""
    from torch._export.serde.serialize import SerializedArtifact, deserialize

    _quiet_serde()
    artifact = SerializedArtifact(
        model_json, _save(dict(weights)), _save(dict(constants)), _save((tuple(inputs), {}))
    )
    try:
        ep = deserialize(artifact)
    except Exception as exc:
        return RefResult("rejected", message=describe(exc))
    return _run_module(ep, inputs)


def pt2_reference(path: Path, inputs: Sequence[Any]) -> RefResult:
    """``torch.export.load(path).module()(*inputs)``."""
    _quiet_serde()
    try:
        ep = torch.export.load(path)
    except Exception as exc:
        return RefResult("rejected", message=describe(exc))
    return _run_module(ep, inputs)
