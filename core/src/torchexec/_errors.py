"""The exception hierarchy. Every user-facing error derives from :class:`TorchexecError`."""

from __future__ import annotations

__all__ = [
    "DuplicateExecutorError",
    "ExecutorError",
    "ExecutorLoadError",
    "ExecutorNotFoundError",
    "InputMismatchError",
    "InvalidOptionsError",
    "ProgramError",
    "TorchexecError",
    "UnsupportedOperatorError",
]


class TorchexecError(Exception):
    """Base class of every error torchexec raises on purpose."""


class ExecutorNotFoundError(TorchexecError, ValueError):
    """No executor of that name is installed (also a ``ValueError``, as in the original API)."""


class ExecutorLoadError(TorchexecError, RuntimeError):
    """An executor is installed but broken: its plugin failed to import, register or load.

    The message names the distribution that provides it and the original error, which is also
    chained as ``__cause__`` where there is one.
    """


class DuplicateExecutorError(ExecutorLoadError):
    """Two distributions register the same executor name; torchexec will not pick one silently."""


class ExecutorError(TorchexecError, RuntimeError):
    """An executor failed in ``prepare`` or while running, or broke the runner contract (for
    example by returning the wrong number of outputs).

    The message names the executor and its distribution; the executor's own exception is chained
    as ``__cause__``. Errors an executor raises on purpose (``ProgramError``, ...) pass unchanged.
    """


class InvalidOptionsError(TorchexecError, ValueError):
    """``executor_parameters`` holds an unknown option or a value of the wrong type."""


class InputMismatchError(TorchexecError, ValueError):
    """A call's inputs do not match the spec the program was prepared for."""


class ProgramError(TorchexecError, ValueError):
    """A program is malformed or unsupported (bad file, unknown operator, wrong argument types)."""


class UnsupportedOperatorError(ProgramError):
    """The executors named do not claim every operator of the program.

    The message lists each unclaimed operator with its count and suggests a priority list that
    ends with an executor claiming everything; nothing falls back to an executor the user did
    not name.
    """
