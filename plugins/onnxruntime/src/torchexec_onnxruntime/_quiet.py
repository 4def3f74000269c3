"""Keep the exporter's progress lines, warnings and log records off the user's terminal."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_exporter"]

_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence warnings, and log records below ERROR of the exporter's libraries, for a while."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
