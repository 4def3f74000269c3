"""Registration, options and cheap import of the inductor plugin (nothing is compiled here)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import torchexec


def test_listed_with_capabilities() -> None:
    info = {i.name: i for i in torchexec.list_executors()}["inductor"]
    assert info.distribution == "torchexec-inductor"
    assert info.status in ("available", "loaded")
    ex = torchexec.get_executor("inductor")
    assert ex.capabilities.bitwise is False
    assert ex.capabilities.torchbind is False
    assert set(ex.capabilities.devices) == {"cpu", "cuda"}


def test_option_defaults() -> None:
    ex = torchexec.get_executor("inductor")
    assert ex.validate_options(None) == {"max_autotune": False, "cache": True}
    assert ex.validate_options({"cache": False}) == {"max_autotune": False, "cache": False}


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"max_autotun": True}, r"no option 'max_autotun'. Did you mean 'max_autotune'"),
        ({"max_autotune": 1}, r"Option 'max_autotune' of executor 'inductor' must be bool"),
        ({"cache": "no"}, r"Option 'cache' of executor 'inductor' must be bool, got str"),
        (["cache"], r"must be a mapping"),
    ],
)
def test_bad_options_fail_before_compiling(options: object, pattern: str) -> None:
    x = torch.randn(2)
    with pytest.raises(torchexec.InvalidOptionsError, match=pattern):
        torchexec.prepare(
            lambda a: a + 1,
            x,
            executor="inductor",
            executor_parameters=options,  # type: ignore[arg-type]
        )


def test_plugin_module_imports_cheaply() -> None:
    code = (
        "import sys, torchexec, torchexec_inductor\n"
        "torchexec.list_executors()\n"
        "print('torch' in sys.modules, 'torch._inductor' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
