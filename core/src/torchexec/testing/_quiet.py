"""``quiet()``: the kit runs thousands of programs without printing their warnings."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet"]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings and torch's trace logging while running thousands of programs."""
    trace = logging.getLogger("torch.__trace")
    was = trace.disabled
    trace.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        trace.disabled = was
