"""Finding and loading the compiled engine library."""

from __future__ import annotations

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
