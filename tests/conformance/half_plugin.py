"""A pytest plugin for the kit's child run: registers ``half``, a test executor that claims a fixed
pseudo-random half of the operators, so that ``--executor half,aten`` checks cut programs."""

from __future__ import annotations

import zlib

import pytest
import torch

import torchexec
from tests.core.subset_executor import SubsetExecutor


def _half(node: torch.fx.Node) -> bool:
    return zlib.crc32(str(node.target).encode()) % 2 == 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register ``half`` before the kit looks the executors up."""
    torchexec.register_executor(SubsetExecutor("half", _half))
