"""Loading the compiled libraries (once, on first use; never on ``import torchexec_torchbind``)."""

from __future__ import annotations

import importlib.machinery
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
    # Only a library built for this interpreter: another one (a stale build for another Python)
    # may sit beside it.
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _HERE / f"{name}{suffix}"
        if path.exists():
            return path
    others = sorted(p.name for p in _HERE.glob(f"{name}.*"))
    found = f" (found only {', '.join(others)}, built for another Python)" if others else ""
    raise ExecutorLoadError(
        f"torchexec-torchbind: the compiled library {name!r} is missing from {_HERE}{found}. "
        "Build it against the installed torch with "
        "'pip install --no-build-isolation -e plugins/torchbind' (or 'make setup')."
    )


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
        if name == ENGINE_LIBRARY:
            built = torch.ops.torchexec.built_with_torch()
            if built != torch.__version__:
                raise ExecutorLoadError(
                    f"torchexec-torchbind: {path.name} was built against torch {built}, but "
                    f"torch {torch.__version__} is installed; rebuild it with "
                    "'pip install --no-build-isolation --force-reinstall -e plugins/torchbind'."
                )
        _LOADED.add(name)
