"""TorchBind test classes for executors, loaded only on request.

:func:`load` loads the compiled ``torchexec_testing`` library and registers the fake (meta)
implementations that ``torch.export`` needs to trace modules holding its objects:

- ``torch.classes.torchexec_testing.Scale(weight)``: pure; ``apply(x) = x * weight``,
  ``get_weight()``.
- ``torch.classes.torchexec_testing.Accumulator(initial, count)``: stateful; ``add(x)`` adds
  ``x`` to a running total, counts the call and returns the new total; ``get_total()``,
  ``get_count()``.
- ``torch.ops.torchexec_testing.scale_add(scale, x, alpha=1) = x + alpha * scale.weight``: an
  operator that takes a ``Scale`` object.

All three pickle (``def_pickle``), so programs holding them can be saved.

>>> from torchexec_torchbind import testing
>>> testing.load()
>>> s = testing.scale(torch.tensor([2.0]))          # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch._library.fake_class_registry import register_fake_class

from torchexec_torchbind._library import TESTING_LIBRARY, load_library

__all__ = ["NAMESPACE", "accumulator", "load", "scale"]

NAMESPACE = "torchexec_testing"
"""The operator namespace of the test library (pass it in ``allowed_namespaces``)."""

_LOCK = threading.Lock()
_REGISTERED = False


class _FakeScale:
    """Fake ``Scale`` for tracing: holds a fake weight."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight

    @classmethod
    def __obj_unflatten__(cls, flat: Any) -> _FakeScale:
        return cls(**dict(flat))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    def get_weight(self) -> torch.Tensor:
        return self.weight


class _FakeAccumulator:
    """Fake ``Accumulator`` for tracing: follows the real one's state on fake tensors."""

    def __init__(self, total: torch.Tensor, count: int) -> None:
        self.total = total
        self.count = count

    @classmethod
    def __obj_unflatten__(cls, flat: Any) -> _FakeAccumulator:
        return cls(**dict(flat))

    def add(self, x: torch.Tensor) -> torch.Tensor:
        self.total = self.total + x
        self.count += 1
        return self.total

    def get_total(self) -> torch.Tensor:
        return self.total

    def get_count(self) -> int:
        return self.count


def _fake_scale_add(scale: Any, x: torch.Tensor, alpha: Any = 1) -> torch.Tensor:
    weight = scale.wrapped_obj.weight
    return torch.add(x, weight, alpha=alpha)


def load() -> None:
    """Load the test library and register its fake implementations (idempotent).

    Raises:
        torchexec.ExecutorLoadError: the library was not built.
    """
    global _REGISTERED
    load_library(TESTING_LIBRARY)
    with _LOCK:
        if _REGISTERED:
            return
        register_fake_class(f"{NAMESPACE}::Scale")(_FakeScale)
        register_fake_class(f"{NAMESPACE}::Accumulator")(_FakeAccumulator)
        torch.library.register_fake(f"{NAMESPACE}::scale_add")(_fake_scale_add)
        _REGISTERED = True


def scale(weight: torch.Tensor) -> torch.ScriptObject:
    """A new ``Scale`` object holding ``weight``."""
    load()
    obj: torch.ScriptObject = torch.classes.torchexec_testing.Scale(weight)
    return obj


def accumulator(initial: torch.Tensor) -> torch.ScriptObject:
    """A new ``Accumulator`` starting from ``initial`` with a count of zero."""
    load()
    obj: torch.ScriptObject = torch.classes.torchexec_testing.Accumulator(initial, 0)
    return obj
