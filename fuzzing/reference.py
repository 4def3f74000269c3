"""What a mutated program should compute, when a loader accepts it: torch's own loaders.

- ExportedProgram JSON: ``torch._export.serde.serialize.deserialize`` then ``.module()``;
- ``.pt2``: ``torch.export.load`` then ``.module()``.

Either may reject a program (``rejected``) or fail while running it (``run_error``); both are
reported, not raised. :func:`compare` decides agreement bit for bit.
"""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.utils._pytree as pytree

from torchexec.testing.compare import same_bits

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


def _same_scalar(e: object, a: object) -> bool:
    if isinstance(e, torch.ScriptObject) and isinstance(a, torch.ScriptObject):
        # TorchBind objects (a program may return one): the same class and, for the test
        # class Scale, the same weight; two runs hold two copies of the same object.
        if e._type().qualified_name() != a._type().qualified_name():
            return False
        if hasattr(e, "get_weight"):
            mine: Any = e
            theirs: Any = a
            return compare([mine.get_weight()], [theirs.get_weight()]) is None
        return True
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
            if e.device.type == "meta":  # no values to compare
                continue
            if not same_bits(a, e):
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
    # The loaders log tracebacks of what they reject (and the deserializer mis-formats a
    # warning for constants holding TorchBind objects): rejections are reported, not logged.
    for name in ("torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _run_module(ep: Any, inputs: Sequence[Any]) -> RefResult:
    try:
        module = ep.module()
        out = module(*inputs)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    except Exception as exc:
        return RefResult("run_error", message=describe(exc))
    return RefResult("ok", pytree.tree_leaves(out), state, list(inputs))


def _deserialize(
    doc: bytes,
    weights: Mapping[str, torch.Tensor],
    constants: Mapping[str, Any],
    inputs: Sequence[Any],
) -> Any:
    from torch._export.serde.serialize import SerializedArtifact, deserialize

    canonical = plain_document(doc)
    artifact = SerializedArtifact(
        canonical, _save(dict(weights)), _save(dict(constants)), _save((tuple(inputs), {}))
    )
    return deserialize(artifact)


def plain_document(data: bytes) -> bytes:
    """The document as torch's deserializer should read it.

    torch reads UTF-8 only, and JSON may be spelled otherwise (UTF-16, a byte-order mark): the
    same document is re-encoded. torch binds an operator's arguments marked ``POSITIONAL`` by
    their order in the node, while the format names every argument and the proxy binds by
    name; a node missing a middle argument then shifts the rest onto the wrong parameters (the
    known silent misreading). Marking them ``KEYWORD`` makes torch bind by name too.
    """
    from .skeleton import keyword_bound

    return json.dumps(keyword_bound(json.loads(data))).encode()


def ep_json_reference(
    model_json: bytes,
    weights: Mapping[str, torch.Tensor],
    constants: Mapping[str, Any],
    inputs: Sequence[Any],
    base: Any = None,
) -> RefResult:
    """Deserialize ``model_json`` with torch's serde module, run ``.module()`` on ``inputs``.

    When torch refuses the document and ``base`` (the unmutated document) is given, the
    document is tried again with the parts the proxy does not read restored from ``base``
    (:func:`.skeleton.repaired`).
    """
    from .skeleton import repaired

    _quiet_serde()
    first = _deserialize_and_run(model_json, weights, constants, inputs)
    if first.status == "ok" or base is None:
        return first
    try:
        fixed = repaired(json.loads(model_json), base, keep_call_graph=False)
    except (ValueError, RecursionError):
        fixed = None
    if fixed is None:
        return first
    second = _deserialize_and_run(fixed, weights, constants, inputs)
    if second.status == "rejected":
        return first
    second.message = f"repaired: {second.message}" if second.message else ""
    return second


def _deserialize_and_run(
    doc: bytes,
    weights: Mapping[str, torch.Tensor],
    constants: Mapping[str, Any],
    inputs: Sequence[Any],
) -> RefResult:
    clones = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    try:
        ep = _deserialize(doc, weights, constants, clones)
    except Exception as exc:
        return RefResult("rejected", message=describe(exc))
    return _run_module(ep, clones)


def pt2_reference(
    path: Path, inputs: Sequence[Any], base: Any = None, base_archive: bytes | None = None
) -> RefResult:
    """``torch.export.load`` then ``.module()(*inputs)``, on the archive's content.

    torch reads archives with its own zip reader and JSON in UTF-8 only; the proxy with
    Python's ``zipfile`` and ``json``, which accept more spellings of the same content (bytes
    before the archive, UTF-16 JSON). So torch is given the members as Python reads them in a
    plain zip, the program JSON as :func:`plain_document` writes it, and the members the proxy
    does not read (sample inputs, format markers, configs of absent tensors) taken from
    ``base_archive`` where they are missing or damaged. When torch refuses that, the program
    JSON is also repaired where the proxy does not read it (see :func:`ep_json_reference`).
    """
    _quiet_serde()
    first = _load_rewritten(path, inputs, None, base_archive)
    if first is None:
        return RefResult("rejected", message="Python's zipfile cannot read the archive")
    if first.status == "ok" or base is None:
        return first
    second = _load_rewritten(path, inputs, base, base_archive)
    if second is None or second.status == "rejected":
        return first
    second.message = f"repaired: {second.message}" if second.message else ""
    return second


def _load_rewritten(
    path: Path, inputs: Sequence[Any], base: Any, base_archive: bytes | None
) -> RefResult | None:
    plain = _rewritten(path, base, base_archive)
    if plain is None:
        return None
    try:
        return _load_and_run(plain, inputs)
    finally:
        plain.unlink(missing_ok=True)


def _load_and_run(path: Path, inputs: Sequence[Any]) -> RefResult:
    clones = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    try:
        ep = torch.export.load(path)
    except Exception as exc:
        return RefResult("rejected", message=describe(exc))
    return _run_module(ep, clones)


def _members(data: bytes | Path) -> dict[str, bytes]:
    """Every member Python can read, by name without the root folder."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(data if isinstance(data, Path) else io.BytesIO(data)) as z:
        for name in z.namelist():
            try:
                out[name.partition("/")[2]] = z.read(name)
            except Exception:  # a damaged member (the proxy did not need it if it loaded)
                continue
    return out


def _unread(name: str) -> bool:
    """Members the proxy does not need when it loads a program without them (torch needs them
    all): sample inputs, format markers, and the tensor configs of a program that has none."""
    if name.startswith("data/sample_inputs/") or name.endswith("_config.json"):
        return True
    return not name.startswith(("data/", "models/"))


def _plain_member(name: str, data: bytes, base: Any) -> bytes:
    """A member as torch should read it: JSON in UTF-8, the program JSON keyword-bound (and
    repaired against ``base`` when given)."""
    from .skeleton import repaired

    if not name.endswith(".json"):
        return data
    try:
        doc = json.loads(data)
        if name != "models/model.json":
            return json.dumps(doc).encode()
        fixed = repaired(doc, base, keep_call_graph=True) if base is not None else None
        return fixed if fixed is not None else plain_document(data)
    except (ValueError, RecursionError):
        return data


def _rewritten(path: Path, base: Any, base_archive: bytes | None) -> Path | None:
    """The archive's members as ``zipfile`` reads them, JSON re-encoded in UTF-8 (the program
    repaired against ``base``), members the proxy does not read taken from ``base_archive``, in a new
    plain zip; ``None`` if Python cannot read the archive."""
    try:
        members = _members(path)
    except Exception:
        return None
    if base_archive is not None:
        for name, data in _members(base_archive).items():
            if _unread(name) and (name not in members or name.startswith("data/sample_inputs/")):
                members[name] = data
    out = path.with_name(f"{path.stem}_rewritten.pt2")
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(f"archive/{name}", _plain_member(name, data, base))
    return out
