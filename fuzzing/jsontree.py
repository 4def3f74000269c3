"""Paths into a parsed JSON document, and a JSON writer that can repeat a key.

A path is a tuple of dict keys and list indices. The writer exists because ``json.dumps`` cannot
write an object with a repeated key (a mutation worth trying: ``json.loads`` keeps the last).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DupKeys",
    "Path",
    "dumps",
    "get",
    "parent_of",
    "paths",
    "put",
    "remove",
]

Path = tuple[str | int, ...]


class DupKeys:
    """A JSON object written with its pairs in order, repeated keys included."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def paths(value: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) under ``value``, ``value`` itself first (iterative: no recursion
    limit, documents may be deep)."""
    stack: list[tuple[Path, Any]] = [(prefix, value)]
    while stack:
        path, v = stack.pop()
        yield path, v
        if isinstance(v, dict):
            stack.extend(((*path, k), x) for k, x in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend(((*path, i), x) for i, x in reversed(list(enumerate(v))))


def get(doc: Any, path: Path) -> Any:
    """The value at ``path``."""
    v = doc
    for key in path:
        v = v[key]
    return v


def parent_of(doc: Any, path: Path) -> tuple[Any, str | int]:
    """The container holding ``path`` and the key of ``path`` in it (``path`` not empty)."""
    return get(doc, path[:-1]), path[-1]


def put(doc: Any, path: Path, value: Any) -> Any:
    """Set the value at ``path``; returns the (possibly new) document."""
    if not path:
        return value
    container, key = parent_of(doc, path)
    container[key] = value
    return doc


def remove(doc: Any, path: Path) -> None:
    """Delete the dict key or list element at ``path`` (not empty)."""
    container, key = parent_of(doc, path)
    del container[key]


def dumps(
    value: Any,
    *,
    indent: int | None = None,
    ensure_ascii: bool = True,
    sort_keys: bool = False,
    compact: bool = False,
) -> str:
    """``json.dumps`` that also writes :class:`DupKeys` objects (and NaN/Infinity tokens)."""
    separators = (",", ":") if compact else None
    if not _has_dups(value):
        return json.dumps(
            value,
            indent=indent,
            ensure_ascii=ensure_ascii,
            sort_keys=sort_keys,
            separators=separators,
        )
    return _write(value, ensure_ascii)


def _has_dups(value: Any) -> bool:
    return any(isinstance(v, DupKeys) for _, v in paths(value))


def _write(value: Any, ensure_ascii: bool) -> str:
    if isinstance(value, DupKeys):
        items = ", ".join(
            f"{json.dumps(k, ensure_ascii=ensure_ascii)}: {_write(v, ensure_ascii)}"
            for k, v in value.pairs
        )
        return "{" + items + "}"
    if isinstance(value, dict):
        return _write(DupKeys(list(value.items())), ensure_ascii)
    if isinstance(value, list):
        return "[" + ", ".join(_write(v, ensure_ascii) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)
