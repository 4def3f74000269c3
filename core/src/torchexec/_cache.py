"""A bounded, thread-safe LRU cache of prepared programs."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["CacheInfo", "LRUCache", "freeze"]

V = TypeVar("V")


class CacheInfo(NamedTuple):
    """Statistics of the runner cache, as :func:`functools.lru_cache` reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class LRUCache(Generic[V]):
    """Least-recently-used mapping with a size bound; every method is thread-safe."""

    def __init__(self, maxsize: int = 128) -> None:
        if maxsize < 1:
            raise ValueError(f"cache size must be at least 1, got {maxsize}")
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._maxsize = maxsize
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` (marking it recently used), or ``None``; counts a hit or miss."""
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return value

    def peek(self, key: Hashable) -> V | None:
        """The value for ``key`` without touching the statistics or the recency order."""
        with self._lock:
            return self._data.get(key)

    def put(self, key: Hashable, value: V) -> V:
        """Store ``value``; if another thread stored one first, keep and return that one."""
        with self._lock:
            existing = self._data.get(key)
            if existing is not None:
                self._data.move_to_end(key)
                return existing
            self._data[key] = value
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)
            return value

    def clear(self) -> None:
        """Drop every entry and reset the statistics."""
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0

    def resize(self, maxsize: int) -> None:
        """Change the bound, evicting the least recently used entries if needed."""
        if maxsize < 1:
            raise ValueError(f"cache size must be at least 1, got {maxsize}")
        with self._lock:
            self._maxsize = maxsize
            while len(self._data) > maxsize:
                self._data.popitem(last=False)

    def count_where(self, predicate: Callable[[Hashable], bool]) -> int:
        """How many keys satisfy ``predicate``."""
        with self._lock:
            return sum(1 for key in self._data if predicate(key))

    def discard_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drop the entries whose key satisfies ``predicate`` (statistics are kept)."""
        with self._lock:
            for key in [k for k in self._data if predicate(k)]:
                del self._data[key]

    def info(self) -> CacheInfo:
        """Hits, misses, bound and current size."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, self._maxsize, len(self._data))


def freeze(value: object) -> Hashable:
    """A hashable stand-in for an options value (mappings and sequences become tuples).

    Objects that are not hashable are keyed by identity, so a cache entry never outlives a
    mutation of such an object silently: the caller passing a new object prepares again.
    """
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((str(k), freeze(v)) for k, v in value.items()))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value
