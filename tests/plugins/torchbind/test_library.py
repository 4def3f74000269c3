"""Finding and loading the compiled engine library."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchexec import ExecutorLoadError
from torchexec_torchbind import _library


def test_only_a_library_for_this_interpreter_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_library, "_HERE", tmp_path)
    (tmp_path / "_lib_engine.cpython-39-x86_64-linux-gnu.so").write_bytes(b"stale")
    with pytest.raises(
        ExecutorLoadError, match=r"found only _lib_engine\.cpython-39.*another Python"
    ):
        _library.library_path("_lib_engine")
    (tmp_path / "_lib_engine.cpython-39-x86_64-linux-gnu.so").unlink()
    with pytest.raises(ExecutorLoadError, match=r"missing from .*pip install --no-build-isolation"):
        _library.library_path("_lib_engine")


def test_engine_library_records_the_torch_it_was_built_against() -> None:
    _library.load_library()
    assert torch.ops.torchexec.built_with_torch() == torch.__version__


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF shared libraries")
@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf")
@pytest.mark.parametrize("name", [_library.ENGINE_LIBRARY, _library.TESTING_LIBRARY])
def test_libraries_use_the_shared_cxx_runtime(name: str) -> None:
    """On the GPU machine g++ embedded a private static libstdc++ in the libraries, whose
    iostream locale is never initialised: every error message that formatted a number crashed
    the process with SIGSEGV. setup.py links the shared one by its soname."""
    dynamic = subprocess.run(
        ["readelf", "--dynamic", str(_library.library_path(name))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "[libstdc++.so.6]" in dynamic
