"""Checked access to the parsed JSON document: every malformed piece becomes a ``ProgramError``.

The loader never indexes the document directly; it goes through these helpers so that a missing
field, a field of the wrong type or an ill-formed union names where in the program it happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from torchexec import ProgramError

__all__ = [
    "SCHEMA_MAJOR",
    "check_schema_version",
    "field",
    "opt_field",
    "parse_document",
    "short",
    "union",
]

SCHEMA_MAJOR = 8
"""The major version of the torch/_export/serde schema this loader reads."""

T = TypeVar("T")


def short(value: object, limit: int = 80) -> str:
    """A bounded ``repr`` for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_names(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


_DECODER = msgspec.json.Decoder()


def parse_document(data: bytes | str | Mapping[str, Any], source: str) -> dict[str, Any]:
    """Parse JSON bytes (or accept an already-parsed mapping) into a dict.

    msgspec decodes the text, about twice as fast as the standard library. It refuses a few
    documents that ``json.loads`` reads (non-standard ``NaN``/``Infinity`` literals, lone
    surrogates in strings, very long integers); those, and malformed text, go to ``json.loads``,
    so that the documents accepted are the same as before and a malformed one gets the standard
    library's message.
    """
    if isinstance(data, Mapping):
        return dict(data)
    try:
        doc = _DECODER.decode(data)
    # UnicodeError: a str holding a lone surrogate; RecursionError: nesting too deep.
    except (msgspec.MsgspecError, UnicodeError, RecursionError):
        doc = _stdlib_loads(data, source)
    if not isinstance(doc, dict):
        raise ProgramError(f"{source}: the program JSON is a {type(doc).__name__}, not an object")
    return doc


def _stdlib_loads(data: bytes | str, source: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        # ValueError covers malformed JSON, bytes that are not UTF-8/16/32, and integers
        # longer than Python's int-conversion limit; RecursionError, nesting too deep.
        raise ProgramError(f"{source}: invalid program JSON: {exc}") from exc


def field(obj: object, key: str, types: type[T] | tuple[type, ...], where: str) -> T:
    """``obj[key]``, checked to be an instance of ``types`` (``bool`` is never an ``int``)."""
    if not isinstance(obj, dict):
        raise ProgramError(f"{where}: expected a JSON object, got {short(obj)}")
    if key not in obj:
        raise ProgramError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not _is(value, types):
        raise ProgramError(
            f"{where}: field {key!r} must be {_type_names(types)}, got {short(value)}"
        )
    return value  # type: ignore[no-any-return]


def opt_field(
    obj: object, key: str, types: type[T] | tuple[type, ...], where: str, default: T
) -> T:
    """Like :func:`field`, but a missing or null field gives ``default``."""
    if isinstance(obj, dict) and obj.get(key) is None:
        return default
    return field(obj, key, types, where)


def _is(value: object, types: type | tuple[type, ...]) -> bool:
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted:
        return False
    return isinstance(value, wanted)


def union(value: object, where: str) -> tuple[str, Any]:
    """Split a serialized union (``{"as_tensor": {...}}``) into its tag and payload."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ProgramError(
            f"{where}: expected a union object with exactly one field (such as as_tensor or "
            f"as_int), got {short(value)}"
        )
    ((tag, payload),) = value.items()
    return str(tag), payload


def check_schema_version(doc: Mapping[str, Any]) -> tuple[int, int]:
    """Return ``(major, minor)``; raise unless the major version is :data:`SCHEMA_MAJOR`."""
    where = "schema_version"
    version = doc.get("schema_version")
    if version is None:
        raise ProgramError(
            "the document has no schema_version; expected an ExportedProgram JSON "
            f"document (torch/_export/serde schema {SCHEMA_MAJOR}.x)"
        )
    major = field(version, "major", int, where)
    minor = field(version, "minor", int, where)
    if major != SCHEMA_MAJOR:
        raise ProgramError(
            f"unsupported schema version {major}.{minor}; the proxy executor reads "
            f"version {SCHEMA_MAJOR}.x (re-export the program with a matching torch)"
        )
    return major, minor
