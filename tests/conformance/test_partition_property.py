"""However a generated program is cut, a partial executor plus aten agrees with aten bit for bit.

A seeded "subset" executor claims a random subset of the operators of each generated program
(drawn per example) and runs its partitions on ATen; the rest goes to aten. Programs come from
the conformance kit's strategies: many operators and dtypes, several outputs, views, constants,
unused inputs, and TorchBind method calls that mutate object state.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
import torch
import torch.utils._pytree as pytree
from hypothesis import HealthCheck, given, settings, strategies as st

import torchexec
from tests.core.subset_executor import SubsetExecutor
from torchexec.testing import GeneratedProgram, compare_outputs, programs, torchbind_programs

SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class _Seeded:
    """Claims an operator when a hash of (seed, operator) is even: a fixed random subset."""

    def __init__(self) -> None:
        self.seed = 0

    def __call__(self, node: torch.fx.Node) -> bool:
        return zlib.crc32(f"{self.seed}:{node.target}".encode()) % 2 == 0


@pytest.fixture(scope="module")
def subset() -> Iterator[tuple[SubsetExecutor, _Seeded]]:
    claim = _Seeded()
    ex = SubsetExecutor("subset", claim)
    with torchexec.register_executor(ex):
        yield ex, claim


def _check(program: GeneratedProgram, seed: int, subset: tuple[SubsetExecutor, _Seeded]) -> int:
    _, claim = subset
    claim.seed = seed
    inputs = program.make_inputs()
    # Two normalisations: TorchBind objects are fresh in each, so state mutations do not leak.
    ref_program = torchexec.normalize(program.graph_module(), inputs)
    cut_program = torchexec.normalize(program.graph_module(), inputs)
    try:
        want = torchexec.prepare(ref_program, *inputs, executor="aten")(*program.make_inputs())
    except Exception:
        return 0  # the reference refuses (an invalid case for the kit too): nothing to compare
    cut = torchexec.prepare(cut_program, *inputs, executor=["subset", "aten"])
    got = cut(*program.make_inputs())
    result = compare_outputs(pytree.tree_leaves(got), pytree.tree_leaves(want), bitwise=True)
    assert result.ok, (result, program.code(), str(cut.placement))
    return len(cut.placement.partitions)


CUTS: list[int] = []
"""Partitions per checked example of the generated tier (read by the last test)."""


@SETTINGS
@given(program=programs(max_nodes=12), seed=st.integers(0, 2**16))
def test_generated_programs_cut_anywhere_agree_with_aten(
    subset: tuple[SubsetExecutor, _Seeded], program: GeneratedProgram, seed: int
) -> None:
    CUTS.append(_check(program, seed, subset))


@settings(SETTINGS, max_examples=40)
@given(program=torchbind_programs(max_nodes=8), seed=st.integers(0, 2**16))
def test_torchbind_programs_cut_anywhere_agree_with_aten(
    subset: tuple[SubsetExecutor, _Seeded], program: GeneratedProgram, seed: int
) -> None:
    pytest.importorskip("torchexec_torchbind", reason="torchexec-torchbind is not installed")
    _check(program, seed, subset)


def test_the_programs_were_really_cut() -> None:
    """The property above is only as strong as its cuts: most programs had several partitions."""
    if not CUTS:
        pytest.skip("runs after test_generated_programs_cut_anywhere_agree_with_aten")
    checked = [n for n in CUTS if n]
    assert len(checked) >= 250, len(checked)
    assert sum(n >= 2 for n in checked) >= 0.5 * len(checked)
    assert sum(n >= 4 for n in checked) >= 20
