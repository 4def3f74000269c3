"""The conformance kit's tests: ``pytest --pyargs torchexec.testing --executor NAME``.

Collected only with ``--executor`` (the ``torchexec_kit`` fixture and the options come from
``torchexec.testing.plugin``). Order: contract checks, the coverage pass, generated programs,
programs with TorchBind calls, the OpInfo tier, programs with higher-order operators, then (with
``--distributed N``) programs with collectives.
"""

from __future__ import annotations

import pytest

from torchexec.testing._coverage_tier import run_coverage
from torchexec.testing._kit import Kit
from torchexec.testing._opinfo_tier import run_opinfo
from torchexec.testing._programs import run_program_tier
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


def test_coverage_pass(torchexec_kit: Kit) -> None:
    """Every catalog operator on every dtype it declares, in batches, agrees on every executor."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    if torchexec_kit.coverage_variants <= 0:
        pytest.skip("coverage pass turned off (--coverage-variants 0)")
    run_coverage(torchexec_kit)


def test_generated_programs(torchexec_kit: Kit) -> None:
    """Random ATen programs agree with the reference on every executor."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    run_program_tier(torchexec_kit, "generated")


def test_torchbind_programs(torchexec_kit: Kit) -> None:
    """Programs calling the operators plugins contribute (TorchBind methods, custom operators)
    agree; skipped when no installed plugin contributes any."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec import ExecutorLoadError
    from torchexec.testing._contributed import contributed_ops

    try:
        contributed = contributed_ops()
    except ExecutorLoadError as exc:
        pytest.skip(f"a plugin's conformance operators cannot load: {exc}")
    if not contributed:
        pytest.skip("no installed plugin contributes conformance operators")
    run_program_tier(torchexec_kit, "torchbind")


def test_opinfo(torchexec_kit: Kit, opinfo_name: str) -> None:
    """PyTorch's OpInfo samples, one program each, agree with the reference."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    run_opinfo(torchexec_kit, opinfo_name)


def test_control_flow_programs(torchexec_kit: Kit) -> None:
    """Programs with higher-order operators (cond, while_loop, map, scan, a functionalized
    mutating custom operator) agree on every executor, or are declared unsupported."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec.testing._control_flow_tier import run_control_flow_tier

    run_control_flow_tier(torchexec_kit)


def test_distributed_programs(torchexec_kit: Kit) -> None:
    """Programs with functional collectives agree on every rank (``--distributed N``)."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    import torch.distributed as dist

    from torchexec.testing._distributed_tier import run_distributed_tier

    world = torchexec_kit.options.distributed
    if world == 0:
        pytest.skip("pass --distributed N to run programs with collectives on N gloo ranks")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build of torch")
    run_distributed_tier(torchexec_kit, world)
