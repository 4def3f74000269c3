"""A test executor that claims a chosen subset of operators and runs what it claims on ATen."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

import torchexec
from torchexec import Capabilities, OptionSpec, Program, Runner, validate_options

Claim = Callable[[torch.fx.Node], bool]


class SubsetExecutor:
    """Claims the nodes ``claims`` accepts; prepares each program it is given on ``aten``.

    ``programs`` records every program it prepared, so tests can see how the graph was cut.
    """

    description = "Test executor: claims a subset of operators, runs them on aten"
    capabilities = Capabilities(devices=("cpu", "cuda"), torchbind=True, bitwise=True)
    options = (OptionSpec("tag", (str,), "", "a label, to test per-executor options"),)

    def __init__(self, name: str, claims: Claim) -> None:
        self.name = name
        self._claims = claims
        self.programs: list[Program] = []
        self.tags: list[object] = []

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        return validate_options(self.name, self.options, options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool:
        return self._claims(node)

    def prepare(self, program: Program, options: Mapping[str, object]) -> Runner:
        self.programs.append(program)
        self.tags.append(options["tag"])
        return torchexec.get_executor("aten").prepare(program, {})


def claims_all_but(*names: str) -> Claim:
    """Claim every operator whose name (``aten::relu``, overload dropped) is not in ``names``."""

    def claim(node: torch.fx.Node) -> bool:
        target = node.target
        if isinstance(target, torch._ops.OpOverload):
            return target._schema.name not in names
        return True

    return claim
