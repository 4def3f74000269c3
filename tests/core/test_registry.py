"""Registry: discovery from real distributions, isolation of broken plugins, in-process registration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from torchexec import (
    Capabilities,
    ExecutorLoadError,
    ExecutorNotFoundError,
    ExecutorSpec,
    Program,
    TorchexecError,
)
from torchexec._registry import REGISTRY


def _gm() -> tuple[torch.fx.GraphModule, tuple[torch.Tensor, torch.Tensor]]:
    args = (torch.randn(3, 4), torch.randn(3, 4))
    return make_fx(lambda a, b: torch.relu(a + b).sum(0))(*args), args


class _Doubler:
    """An in-process executor whose runner doubles the reference result (for tests)."""

    name = "doubler"
    description = "test executor"
    capabilities = Capabilities()

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        return torchexec.validate_options(self.name, (), options)

    def prepare(
        self, program: Program, options: Mapping[str, object]
    ) -> Callable[..., list[torch.Tensor]]:
        from torchexec_aten._executor import AtenRunner

        ref = AtenRunner(program)
        return lambda *args: [2 * out for out in ref(*args)]


def test_import_loads_no_plugin() -> None:
    code = (
        "import sys, torchexec; print(sorted(m for m in sys.modules if m.startswith('torchexec_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_listing_imports_plugin_modules_but_no_implementation() -> None:
    code = (
        "import sys, torchexec; torchexec.list_executors(); "
        "print('torchexec_aten' in sys.modules, 'torchexec_aten._executor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_list_shows_aten_with_distribution() -> None:
    rows = {i.name: i for i in torchexec.list_executors()}
    aten = rows["aten"]
    assert aten.distribution == "torchexec-aten"
    assert aten.version == "0.1.0"
    assert aten.status in ("available", "loaded")
    assert aten.capabilities is not None and "cpu" in aten.capabilities.devices
    assert aten.description


def test_unknown_executor_is_value_error_with_suggestion() -> None:
    gm, args = _gm()
    with pytest.raises(ValueError, match=r"Unknown executor 'atn'\. Did you mean 'aten'\?"):
        torchexec.execute(gm, *args, executor="atn")
    with pytest.raises(ExecutorNotFoundError, match=r"Installed: .*aten.*torchexec list"):
        torchexec.get_executor("nonsense")


def test_third_party_distribution_is_discovered(use_plugin: Callable[[str], Path]) -> None:
    use_plugin("torchexec_example")
    rows = {i.name: i for i in torchexec.list_executors()}
    assert rows["example"].distribution == "torchexec-example"
    assert rows["example"].version == "0.3.1"
    assert rows["example"].status == "available"
    import torchexec_example  # type: ignore[import-not-found]

    assert torchexec_example.LOADED is False  # listing did not load the executor
    gm, args = _gm()
    out = torchexec.execute(gm, *args, executor="example")
    assert torch.equal(out, gm(*args))
    assert torchexec_example.LOADED is True
    out = torchexec.execute(
        gm, *args, executor="example", executor_parameters={"garbage_collect_values": False}
    )
    assert torch.equal(out, gm(*args))


def test_broken_import_is_isolated_and_reported(use_plugin: Callable[[str], Path]) -> None:
    use_plugin("torchexec_broken_import")
    rows = {i.name: i for i in torchexec.list_executors()}
    broken = rows["broken_import"]
    assert broken.status == "broken"
    assert broken.distribution == "torchexec-broken-import"
    assert "a_module_that_does_not_exist" in (broken.error or "")
    with pytest.raises(ExecutorLoadError, match="torchexec-broken-import") as info:
        torchexec.get_executor("broken_import")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    gm, args = _gm()
    assert torch.equal(torchexec.execute(gm, *args), gm(*args))  # aten still works


def test_raising_hook_is_isolated_and_reported(use_plugin: Callable[[str], Path]) -> None:
    use_plugin("torchexec_broken_hook")
    use_plugin("torchexec_example")
    rows = {i.name: i for i in torchexec.list_executors()}
    assert rows["broken_hook"].status == "broken"
    assert "the hook exploded" in (rows["broken_hook"].error or "")
    assert rows["example"].status == "available"
    with pytest.raises(ExecutorLoadError, match=r"torchexec-broken-hook.*the hook exploded"):
        torchexec.get_executor("broken_hook")


def test_cli_list_shows_broken_plugin(use_plugin: Callable[[str], Path]) -> None:
    import io

    from torchexec._cli import main

    use_plugin("torchexec_broken_import")
    out = io.StringIO()
    assert main(["list"], out=out) == 0
    text = out.getvalue()
    assert "broken_import  broken" in text
    assert "torchexec-broken-import" in text
    assert "failed to import" in text


def test_register_executor_in_process_and_undo() -> None:
    gm, args = _gm()
    with torchexec.register_executor(_Doubler()):
        assert "doubler" in [i.name for i in torchexec.list_executors()]
        out = torchexec.execute(gm, *args, executor="doubler")
        assert torch.equal(out, 2 * gm(*args))
    assert "doubler" not in [i.name for i in torchexec.list_executors()]
    with pytest.raises(ExecutorNotFoundError):
        torchexec.execute(gm, *args, executor="doubler")


def test_register_existing_name_needs_replace() -> None:
    gm, args = _gm()

    class Shadow(_Doubler):
        name = "aten"

    with pytest.raises(TorchexecError, match="already registered by torchexec-aten"):
        torchexec.register_executor(Shadow())
    reg = torchexec.register_executor(Shadow(), replace_existing=True)
    assert torch.equal(torchexec.execute(gm, *args, executor="aten"), 2 * gm(*args))
    reg.unregister()
    assert torch.equal(torchexec.execute(gm, *args, executor="aten"), gm(*args))


def test_duplicate_names_are_reported_not_resolved() -> None:
    from torchexec._registry import _Entry

    entries = REGISTRY._ensure()
    spec = ExecutorSpec(name="twin", description="d", load=_Doubler)
    REGISTRY._add(_Entry("twin", "dist-a", "1.0", spec=spec))
    REGISTRY._add(_Entry("twin", "dist-b", "2.0", spec=spec))
    assert len(entries["twin"]) == 2
    rows = [i for i in torchexec.list_executors() if i.name == "twin"]
    assert {r.status for r in rows} == {"conflict"}
    assert {r.error for r in rows} == {"also registered by dist-a", "also registered by dist-b"}
    with pytest.raises(torchexec.DuplicateExecutorError, match=r"dist-a 1\.0, dist-b 2\.0"):
        torchexec.get_executor("twin")


def test_invalid_specs_and_api_version_mark_plugin_broken() -> None:
    from types import ModuleType

    from torchexec.hookspecs import hookimpl

    module = ModuleType("fake_plugin")

    @hookimpl
    def torchexec_register_executors(register: Callable[[object], None]) -> None:
        register("not a spec")
        register(ExecutorSpec(name="old", description="", load=_Doubler, api_version=0))
        register(ExecutorSpec(name="fine", description="ok", load=_Doubler))

    module.torchexec_register_executors = torchexec_register_executors  # type: ignore[attr-defined]

    class EP:
        name = "fake"
        value = "fake_plugin"
        dist = None

        def load(self) -> ModuleType:
            return module

    REGISTRY._ensure()
    REGISTRY._load_entry_point(EP())  # type: ignore[arg-type]
    rows = {i.name: i for i in torchexec.list_executors()}
    assert rows["fake"].status == "broken"
    assert "not a torchexec.ExecutorSpec" in (rows["fake"].error or "")
    assert rows["old"].status == "broken"
    assert "plugin API 0" in (rows["old"].error or "")
    assert rows["fine"].status == "available"
    assert isinstance(torchexec.get_executor("fine"), _Doubler)


def test_load_returning_non_executor_is_load_error() -> None:
    with torchexec.register_executor(
        ExecutorSpec(name="bad_load", description="", load=object)  # type: ignore[arg-type]
    ):
        with pytest.raises(ExecutorLoadError, match="not an Executor"):
            torchexec.get_executor("bad_load")
        status = {i.name: i.status for i in torchexec.list_executors()}["bad_load"]
        assert status == "broken"
