"""Broken third-party plugins, each a real pip-installed distribution, never take a user down."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from torchexec import ExecutorError, ExecutorLoadError
from torchexec._cli import main

ALL_BROKEN = (
    "torchexec_broken_import",
    "torchexec_broken_hook",
    "torchexec_faulty",
    "torchexec_dup_a",
    "torchexec_dup_b",
)


@pytest.fixture
def everything_broken(use_plugin: Callable[[str], Path]) -> dict[str, torchexec.ExecutorInfo]:
    for name in ALL_BROKEN:
        use_plugin(name)
    return {(i.name, i.distribution): i for i in torchexec.list_executors()}  # type: ignore[misc]


def _program() -> tuple[torch.fx.GraphModule, tuple[torch.Tensor, torch.Tensor]]:
    args = (torch.randn(2, 3), torch.randn(2, 3))
    return make_fx(lambda a, b: (a * b, a - b))(*args), args


def test_the_healthy_executors_keep_working(everything_broken: dict[object, object]) -> None:
    gm, args = _program()
    for name in ("aten", "faulty_ok"):
        out = torchexec.execute(gm, *args, executor=name)
        assert torch.equal(out[0], args[0] * args[1]) and torch.equal(out[1], args[0] - args[1])


@pytest.mark.parametrize(
    ("name", "dist", "status", "reason"),
    [
        ("broken_import", "torchexec-broken-import", "broken", "failed to import"),
        ("broken_hook", "torchexec-broken-hook", "broken", "the hook exploded"),
        ("faulty", "torchexec-faulty", "broken", "not a torchexec.ExecutorSpec"),
        ("old_api", "torchexec-faulty", "broken", "plugin API 99"),
        ("twin", "torchexec-dup-a", "conflict", "also registered by torchexec-dup-b"),
        ("twin", "torchexec-dup-b", "conflict", "also registered by torchexec-dup-a"),
    ],
)
def test_listed_with_state_and_reason(
    everything_broken: dict[tuple[str, str], torchexec.ExecutorInfo],
    name: str,
    dist: str,
    status: str,
    reason: str,
) -> None:
    info = everything_broken[(name, dist)]
    assert info.status == status
    assert reason in (info.error or "")
    out = io.StringIO()
    assert main(["list"], out=out) == 0
    assert f"{name} ({dist} " in out.getvalue()


@pytest.mark.parametrize(
    ("name", "error", "pattern"),
    [
        ("broken_import", ExecutorLoadError, r"torchexec-broken-import 1\.0\.0.*a_module_that"),
        ("broken_hook", ExecutorLoadError, r"torchexec-broken-hook 1\.0\.0.*hook exploded"),
        ("old_api", ExecutorLoadError, r"torchexec-faulty 0\.0\.1.*plugin API 99"),
        ("non_executor", ExecutorLoadError, r"torchexec-faulty 0\.0\.1.*not an Executor"),
        (
            "twin",
            torchexec.DuplicateExecutorError,
            r"torchexec-dup-a 1\.0\.0, torchexec-dup-b 1\.0\.1",
        ),
        (
            "prepare_raises",
            ExecutorError,
            r"'prepare_raises' \(torchexec-faulty\) failed to prepare.*KeyError",
        ),
        (
            "runner_raises",
            ExecutorError,
            r"'runner_raises' \(torchexec-faulty\) failed while running.*slot 7",
        ),
        (
            "wrong_outputs",
            ExecutorError,
            r"'wrong_outputs' \(torchexec-faulty\) returned 4 outputs.*has 2",
        ),
    ],
)
def test_using_a_broken_executor_raises_the_documented_error(
    everything_broken: object, name: str, error: type[Exception], pattern: str
) -> None:
    gm, args = _program()
    with pytest.raises(error, match=pattern):
        torchexec.execute(gm, *args, executor=name)
    # ...and nothing else is affected.
    assert torch.equal(torchexec.execute(gm, *args)[0], args[0] * args[1])
