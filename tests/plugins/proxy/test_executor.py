"""The installed ``torchexec-proxy`` distribution, as the registry discovers it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import torchexec
from torchexec_proxy import ProxyExecutor, ProxyRunner


def test_discovered_through_entry_points() -> None:
    info = {i.name: i for i in torchexec.list_executors()}["proxy"]
    assert info.distribution == "torchexec-proxy"
    assert info.status in ("available", "loaded")
    assert info.capabilities is not None
    assert info.capabilities.devices == ("cpu", "cuda")
    assert info.capabilities.torchbind and info.capabilities.bitwise


def test_executor_object_and_options() -> None:
    ex = torchexec.get_executor("proxy")
    assert isinstance(ex, ProxyExecutor) and isinstance(ex, torchexec.Executor)
    assert ex.name == "proxy"
    assert {o.name for o in ex.options} == {
        "allowed_namespaces",
        "custom_objs",
        "allow_pickle",
        "process_groups",
        "max_loop_iterations",
    }
    assert ex.validate_options(None) == {
        "allowed_namespaces": (),
        "custom_objs": {},
        "allow_pickle": False,
        "process_groups": {},
        "max_loop_iterations": None,
    }
    opts = ex.validate_options({"allowed_namespaces": ["quantized"], "allow_pickle": True})
    assert opts["allowed_namespaces"] == ("quantized",) and opts["allow_pickle"] is True


def test_registry_and_executor_state_the_same_metadata() -> None:
    """The plugin module and the executor class read one statement of name, description and
    capabilities."""
    info = {i.name: i for i in torchexec.list_executors()}["proxy"]
    ex = torchexec.get_executor("proxy")
    assert (info.description, info.capabilities) == (ex.description, ex.capabilities)
    assert ex.description.startswith("Runs serialized ExportedProgram JSON")


def test_shared_option_table() -> None:
    """The proxy's options are the public table that executors built on its loader reuse."""
    from torchexec_proxy import options

    executor: Any = torchexec.get_executor("proxy")
    assert executor.options is options.OPTIONS
    assert options.validate("mine", {"allowed_namespaces": ["my_ops"]})["allowed_namespaces"] == (
        "my_ops",
    )
    with pytest.raises(torchexec.InvalidOptionsError, match="executor 'mine' must hold namespace"):
        options.validate("mine", {"allowed_namespaces": ["__builtins__"]})


def test_prepare_returns_a_runner() -> None:
    run = torchexec.prepare(lambda x: x.cos() + 1, torch.zeros(3), executor="proxy")
    assert isinstance(run.runner, ProxyRunner)
    assert torch.equal(run(torch.zeros(3)), torch.full((3,), 2.0))
    assert "2 nodes" in repr(run.runner)


def test_runner_checks_input_count() -> None:
    run = torchexec.prepare(lambda x: x * 2, torch.ones(2), executor="proxy")
    with pytest.raises(torchexec.InputMismatchError, match="takes 1 flat inputs, got 2"):
        run.runner(torch.ones(2), torch.ones(2))
