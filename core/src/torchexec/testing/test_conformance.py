"""The conformance kit's tests: ``pytest --pyargs torchexec.testing --executor NAME``.

Collected only with ``--executor`` (the ``torchexec_kit`` fixture and the options come from
``torchexec.testing.plugin``). Order: contract checks, generated programs, programs with
TorchBind calls, then the OpInfo tier.
"""

from __future__ import annotations

import pytest

from torchexec.testing._kit import Kit
from torchexec.testing.contract import CHECKS
from torchexec.testing.plugin import KIT_KEY


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise over the executors under test, the contract checks and the OpInfos."""
    kit = metafunc.config.stash.get(KIT_KEY, None)
    if "executor" in metafunc.fixturenames:
        metafunc.parametrize("executor", kit.executors if kit else [])
    if "check" in metafunc.fixturenames:
        metafunc.parametrize("check", list(CHECKS))
    if "opinfo_name" in metafunc.fixturenames:
        names: list[str] = []
        if kit is not None and kit.opinfo_samples > 0:
            from torchexec.testing.opinfo import opinfo_names

            names = opinfo_names()
        metafunc.parametrize("opinfo_name", names)


def test_contract(torchexec_kit: Kit, executor: str, check: str) -> None:
    """Metadata, option validation, input checks, repeat calls, files, state."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    reason = torchexec_kit.run_contract(executor, check)
    if reason is not None:
        pytest.xfail(reason)


def test_generated_programs(torchexec_kit: Kit) -> None:
    """Random ATen programs agree with the reference on every executor."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    torchexec_kit.run_programs("generated")


def test_torchbind_programs(torchexec_kit: Kit) -> None:
    """Programs calling TorchBind methods agree (needs the torchexec-torchbind test classes)."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec import ExecutorLoadError

    try:
        from torchexec.testing._torchbind_ops import torchbind_ops

        torchbind_ops()
    except (ImportError, ExecutorLoadError) as exc:
        pytest.skip(f"torchexec-torchbind is not installed ({exc}); no TorchBind test classes")
    torchexec_kit.run_programs("torchbind")


def test_opinfo(torchexec_kit: Kit, opinfo_name: str) -> None:
    """PyTorch's OpInfo samples, one program each, agree with the reference."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    torchexec_kit.run_opinfo(opinfo_name)
