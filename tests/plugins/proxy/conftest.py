"""Fixtures for the proxy executor's tests: bit-for-bit comparison and program builders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.utils._pytree as pytree

import torchexec
from torchexec.testing.compare import same_bits

Compare = Callable[[Any, Any], None]


def assert_bitwise(expected: Any, actual: Any) -> None:
    """Same structure; every tensor has the same dtype, shape, NaN positions and bits."""
    e_leaves, e_spec = pytree.tree_flatten(expected)
    a_leaves, a_spec = pytree.tree_flatten(actual)
    assert a_spec == e_spec, f"output structure differs: {a_spec} != {e_spec}"
    for i, (e, a) in enumerate(zip(e_leaves, a_leaves, strict=True)):
        if isinstance(e, torch.Tensor):
            assert isinstance(a, torch.Tensor), f"output {i}: {type(a).__name__} is not a tensor"
            assert a.dtype == e.dtype, f"output {i}: dtype {a.dtype} != {e.dtype}"
            assert a.shape == e.shape, f"output {i}: shape {a.shape} != {e.shape}"
            if e.is_floating_point() or e.is_complex():
                assert torch.equal(a.isnan(), e.isnan()), f"output {i}: NaN positions differ"
            assert same_bits(a, e), f"output {i}: values differ"
        else:
            assert type(a) is type(e) and a == e, f"output {i}: {a!r} != {e!r}"


@pytest.fixture
def bitwise() -> Compare:
    """``bitwise(expected, actual)`` asserts bit-for-bit agreement of two output structures."""
    return assert_bitwise


@pytest.fixture(autouse=True)
def _fresh_runner_cache() -> Iterator[None]:
    """Each test starts and ends with an empty runner cache."""
    torchexec.clear_cache()
    yield
    torchexec.clear_cache()


Check = Callable[..., Any]


@pytest.fixture
def check_against_aten() -> Check:
    """``check(fn_or_module, *args)``: run on ``aten`` and ``proxy`` and compare bit for bit.

    Modules are deep-copied so that each executor sees the same starting state (programs that
    mutate buffers); the final buffers are compared too. Returns the proxy's outputs.
    """

    def check(program: Any, *args: Any) -> Any:
        ref_prog, prox_prog = program, program
        if isinstance(program, torch.nn.Module):
            ref_prog, prox_prog = copy.deepcopy(program), copy.deepcopy(program)
        ref_args = pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, args)
        expected = torchexec.execute(ref_prog, *ref_args, executor="aten")
        actual = torchexec.execute(prox_prog, *args, executor="proxy")
        assert_bitwise(expected, actual)
        assert_bitwise(ref_args, args)  # user-input mutations applied alike
        if isinstance(program, torch.nn.Module):
            assert_bitwise(dict(ref_prog.state_dict()), dict(prox_prog.state_dict()))
        return actual

    return check


@pytest.fixture
def export_json() -> Callable[..., tuple[dict[str, Any], torch.export.ExportedProgram]]:
    """``export_json(fn, *args)`` -> (ExportedProgram JSON document as a dict, the program)."""
    from torch._export.serde.serialize import serialize

    def make(fn: Any, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
        module = fn if isinstance(fn, torch.nn.Module) else _Wrap(fn)
        ep = torch.export.export(module, args, kwargs or None, strict=False)
        doc = json.loads(serialize(ep).exported_program)
        return doc, ep

    return make


class _Wrap(torch.nn.Module):
    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


@pytest.fixture
def save_pt2(tmp_path: Path) -> Callable[..., Path]:
    """``save_pt2(module, *args, name="model")`` exports and saves a ``.pt2``; returns its path."""

    def save(module: torch.nn.Module, *args: Any, name: str = "model", **kw: Any) -> Path:
        ep = torch.export.export(module, args, strict=False, **kw)
        path = tmp_path / f"{name}.pt2"
        torch.export.save(ep, path)
        return path

    return save


@pytest.fixture
def torchbind_testing() -> Any:
    """The TorchBind test classes of the torchbind plugin (``torchexec_torchbind.testing``),
    loaded; the test is skipped when that plugin is not installed."""
    testing = pytest.importorskip("torchexec_torchbind.testing")
    try:
        testing.load()
    except torchexec.TorchexecError as exc:  # installed, but its C++ library is not built
        pytest.skip(f"the torchbind test library cannot be loaded: {exc}")
    return testing


Edit = Callable[[str, bytes], bytes | None]


@pytest.fixture
def rewrite_pt2(tmp_path: Path) -> Callable[[Path, Edit], Path]:
    """``rewrite_pt2(path, edit)`` copies an archive, passing each entry (name relative to the
    archive's root folder) through ``edit(name, data)``; ``None`` drops the entry."""
    import zipfile

    def rewrite(path: Path, edit: Edit) -> Path:
        out = tmp_path / f"edited_{path.name}"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                rel = info.filename.partition("/")[2]
                data = edit(rel, src.read(info))
                if data is not None:
                    dst.writestr(f"{out.stem}/{rel}", data)
        return out

    return rewrite
