"""What the engine checks of each user input, read from the program's graph signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchexec import ProgramError
from torchexec_torchbind._encode import InputSpec

__all__ = ["input_specs_from_document"]

_SCALAR_KINDS = {
    "as_int": "int",
    "as_sym_int": "int",
    "as_float": "float",
    "as_sym_float": "float",
    "as_bool": "bool",
    "as_sym_bool": "bool",
    "as_string": "str",
}


def _only(entry: object, where: str) -> tuple[str, Any]:
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise ProgramError(f"{where}: expected a single-field union, got {entry!r}")
    ((key, value),) = entry.items()
    return str(key), value


def _dtype(code: object) -> torch.dtype | None:
    """The dtype of a serialized ``ScalarType`` code, from the proxy's table of the file format
    (``torch._export.serde`` would import torch's compiler stack, about 2 s on a cold start)."""
    from torchexec_proxy import DTYPES

    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return DTYPES.get(code)


def _device(meta: Mapping[str, Any]) -> torch.device | None:
    dev = meta.get("device")
    if not isinstance(dev, Mapping) or not isinstance(dev.get("type"), str):
        return None
    index = dev.get("index")
    try:
        return (
            torch.device(dev["type"], index)
            if isinstance(index, int)
            else torch.device(dev["type"])
        )
    except (RuntimeError, ValueError, TypeError):  # unknown type, bad or huge index
        return None


def input_specs_from_document(doc: Mapping[str, Any]) -> list[InputSpec]:
    """One :class:`InputSpec` per flat user input of an ExportedProgram JSON document.

    User inputs are the signature's ``user_input`` and ``constant_input`` entries, in order;
    constant inputs are specialised by the program and not checked here.

    Raises:
        ProgramError: the document has no graph signature.
    """
    try:
        gm = doc["graph_module"]
        tensor_values = gm["graph"].get("tensor_values", {})
        entries = gm["signature"]["input_specs"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProgramError(f"the program JSON has no graph signature: {exc}") from exc
    specs: list[InputSpec] = []
    for i, entry in enumerate(entries):
        kind, body = _only(entry, f"input spec {i}")
        if kind == "constant_input":
            specs.append(InputSpec("any"))
            continue
        if kind != "user_input":
            continue
        tag, payload = _only(body.get("arg") if isinstance(body, Mapping) else None,
                             f"user input {i}")  # fmt: skip
        if tag == "as_tensor" and isinstance(payload, Mapping):
            name = payload.get("name")
            meta = (
                tensor_values.get(name, {})
                if isinstance(tensor_values, Mapping) and isinstance(name, str)
                else {}
            )
            if not isinstance(meta, Mapping):
                meta = {}
            specs.append(InputSpec("tensor", _dtype(meta.get("dtype")), _device(meta)))
        else:
            specs.append(InputSpec(_SCALAR_KINDS.get(tag, "any")))
    return specs
