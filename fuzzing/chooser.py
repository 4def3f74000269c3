"""The source of every random decision a mutator makes.

Mutators never touch a random module directly: they ask a :class:`Chooser`. Two implementations:

- :class:`RandomChooser`, a seeded ``random.Random``: the batch runs, where each case is
  reproduced from its seed alone (``seed_for(loader, case)``);
- :class:`HypothesisChooser`, backed by hypothesis's ``st.data()``: the property tests, where a
  failing case shrinks to a small mutation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["Chooser", "HypothesisChooser", "RandomChooser", "seed_for", "weighted"]

T = TypeVar("T")


class Chooser(Protocol):
    """Random decisions, by kind."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]`` (both included)."""
        ...

    def choice(self, items: Sequence[T]) -> T:
        """One of ``items`` (not empty)."""
        ...

    def chance(self, percent: int) -> bool:
        """True with probability ``percent`` / 100."""
        ...


class RandomChooser:
    """A :class:`Chooser` over a seeded ``random.Random``."""

    def __init__(self, seed: int | str) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, items: Sequence[T]) -> T:
        return items[self.rng.randrange(len(items))]

    def chance(self, percent: int) -> bool:
        return self.rng.randrange(100) < percent


class HypothesisChooser:
    """A :class:`Chooser` drawing from hypothesis's ``st.data()`` object."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def integer(self, lo: int, hi: int) -> int:
        value: int = self._data.draw(self._st.integers(lo, hi))
        return value

    def choice(self, items: Sequence[T]) -> T:
        index: int = self._data.draw(self._st.integers(0, len(items) - 1))
        return items[index]

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent


def weighted(ch: Chooser, table: Sequence[tuple[T, int]]) -> T:
    """One item of ``(item, weight)`` pairs, drawn in proportion to the weights."""
    pick = ch.integer(0, sum(weight for _, weight in table) - 1)
    for item, weight in table:
        if pick < weight:
            return item
        pick -= weight
    raise AssertionError("unreachable: the pick is below the total weight")


def seed_for(loader: str, case: int, base_seed: int = 0) -> str:
    """The seed of case ``case`` of ``loader``: a string, so it does not depend on hashing."""
    return f"torchexec-fuzz:{loader}:{base_seed}:{case}"
