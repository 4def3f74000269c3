"""Fixtures of the torchbind executor's tests.

The compiled libraries are built by installing the plugin (``make setup``). When they are
missing (a fresh checkout whose build step was skipped), the session builds them once, in place,
before the first test that needs them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import torch

import torchexec
from torchexec import ExecutorLoadError

PLUGIN = Path(__file__).resolve().parents[3] / "plugins" / "torchbind"
TESTING_NS = "torchexec_testing"


def _ensure_built() -> None:
    from torchexec_torchbind import library_path
    from torchexec_torchbind._library import ENGINE_LIBRARY, TESTING_LIBRARY

    try:
        library_path(ENGINE_LIBRARY)
        library_path(TESTING_LIBRARY)
    except ExecutorLoadError:
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=PLUGIN,
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def engine_lib() -> None:
    """The engine library, built (once per session, if missing) and loaded."""
    _ensure_built()
    from torchexec_torchbind import load_library

    load_library()


@pytest.fixture(scope="session")
def testing_lib(engine_lib: None) -> None:
    """The TorchBind test classes and operator (namespace ``torchexec_testing``), loaded."""
    from torchexec_torchbind import testing

    testing.load()


_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's elements as integers of the same width (NaN payloads and -0.0 included)."""
    if t.is_complex():
        t = torch.view_as_real(t)
    if t.is_floating_point():
        return t.view(_INT_OF_SIZE[t.element_size()])
    return t


def assert_same(actual: object, expected: object, where: str = "output") -> None:
    """Bit-for-bit equality of (nested) outputs: bits, dtype, shape, device."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor), f"{where}: expected a tensor, got {actual!r}"
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        assert actual.device == expected.device, f"{where}: device differs"
        assert torch.equal(bits(actual), bits(expected)), (
            f"{where}: values differ\n{actual}\n{expected}"
        )
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), (
            f"{where}: expected {len(expected)} values, got {actual!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for k in expected:
            assert_same(actual[k], expected[k], f"{where}[{k!r}]")
    else:
        assert type(actual) is type(expected) and actual == expected, (
            f"{where}: {actual!r} != {expected!r}"
        )


def engine_of(prepared: torchexec.PreparedProgram) -> Any:
    """The ``torch.classes.torchexec.Engine`` inside a program prepared for ``torchbind``."""
    return cast(Any, prepared.runner).engine


Agree = Callable[..., list[Any]]


@pytest.fixture
def agree(engine_lib: None) -> Agree:
    """``agree(program, *args, executors=("torchbind",), calls=2, options=None)``.

    Prepares ``program`` for ``aten`` and each executor, calls each ``calls`` times with
    ``args`` and checks that every output matches aten's bit for bit. Returns aten's outputs.
    """

    def check(
        program: object,
        *args: Any,
        executors: Sequence[str] = ("torchbind",),
        calls: int = 2,
        options: dict[str, object] | None = None,
    ) -> list[Any]:
        prog = torchexec.normalize(program, args)
        ref_run = torchexec.prepare(prog, *args, executor="aten")
        expected = [ref_run(*args) for _ in range(calls)]
        for name in executors:
            run = torchexec.prepare(prog, *args, executor=name, executor_parameters=options)
            for i in range(calls):
                assert_same(run(*args), expected[i], f"{name} call {i}")
        return expected

    return check


@pytest.fixture
def cuda() -> Iterator[torch.device]:
    """A CUDA device; the test is skipped without one."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    yield torch.device("cuda")
