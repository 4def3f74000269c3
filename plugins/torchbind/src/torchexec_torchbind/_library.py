"""Loading the compiled libraries (once, on first use; never on ``import torchexec_torchbind``)."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from torchexec import ExecutorLoadError

__all__ = ["library_path", "load_library"]

_HERE = Path(__file__).parent
_LOCK = threading.Lock()
_LOADED: set[str] = set()

ENGINE_LIBRARY = "_lib_engine"
TESTING_LIBRARY = "_lib_testing"


def library_path(name: str) -> Path:
    """The built shared library ``name`` (``_lib_engine`` or ``_lib_testing``) in this package.

    Raises:
        ExecutorLoadError: it was not built.
    """
    candidates = sorted(_HERE.glob(f"{name}.*.so")) + sorted(_HERE.glob(f"{name}.*.pyd"))
    if not candidates:
        raise ExecutorLoadError(
            f"torchexec-torchbind: the compiled library {name!r} is missing from {_HERE}. "
            "Build it against the installed torch with "
            "'pip install --no-build-isolation -e plugins/torchbind' (or 'make setup')."
        )
    return candidates[0]


def load_library(name: str = ENGINE_LIBRARY) -> None:
    """Load a compiled library into ``torch.ops`` / ``torch.classes`` (idempotent, thread-safe).

    Raises:
        ExecutorLoadError: it is missing or does not load (for example, it was built against
            another torch version).
    """
    if name in _LOADED:
        return
    with _LOCK:
        if name in _LOADED:
            return
        path = library_path(name)
        try:
            torch.ops.load_library(str(path))  # type: ignore[no-untyped-call]
        except (OSError, RuntimeError) as exc:
            raise ExecutorLoadError(
                f"torchexec-torchbind: cannot load {path.name} into torch {torch.__version__}: "
                f"{exc}. Rebuild it with 'pip install --no-build-isolation -e plugins/torchbind'."
            ) from exc
        _LOADED.add(name)
