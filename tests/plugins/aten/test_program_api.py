"""The public ``Program`` API that the aten executor (and any third-party one) is built on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import torchexec
from torchexec import GraphOutput


class _Stateful(torch.nn.Module):
    """A parameter, a persistent and a non-persistent buffer, a lifted constant; it mutates a
    buffer and its second input."""

    count: torch.Tensor
    offset: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([2.0, 3.0]))
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("offset", torch.tensor([0.5, 0.25]), persistent=False)
        self.const = torch.tensor([10.0, 20.0])

    def forward(self, x: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        acc.add_(x)
        out: torch.Tensor = x * self.weight + self.offset + self.const + self.count
        return out


def _export() -> torch.export.ExportedProgram:
    """The functional form, where mutations are graph outputs (``run_decompositions``)."""
    with torch.no_grad():
        ep = torch.export.export(_Stateful(), (torch.ones(2), torch.zeros(2)), strict=False)
        functional: torch.export.ExportedProgram = ep.run_decompositions({})
    return functional


@pytest.fixture(scope="module")
def exported() -> torch.export.ExportedProgram:
    return _export()


def _check(program: torchexec.Program, ep: torch.export.ExportedProgram) -> None:
    outputs = program.graph_outputs()
    assert outputs == (
        GraphOutput("buffer_mutation", target="count"),
        GraphOutput("user_input_mutation", target="acc", user_input=1),
        GraphOutput("user_output"),
    )
    state = program.state()
    (const_name,) = _constant_names(ep)
    assert set(state) == {"weight", "count", "offset", const_name}
    lifted = program.lifted_state()
    names = [s.target for s in ep.graph_signature.input_specs if s.target is not None]
    assert len(lifted) == len(names) == 4
    for value, name in zip(lifted, names, strict=True):
        assert torch.equal(value, state[name]), name
    assert torch.equal(state["weight"], torch.tensor([2.0, 3.0]))
    gm = program.graph_module()
    x, acc = torch.tensor([1.0, 1.0]), torch.zeros(2)
    new_count, new_acc, out = gm(*lifted, x, acc)
    assert torch.equal(out, torch.tensor([13.5, 24.25]))
    assert (new_count.item(), new_acc.tolist()) == (1.0, [1.0, 1.0])


def _constant_names(ep: torch.export.ExportedProgram) -> list[str]:
    return [
        s.target
        for s in ep.graph_signature.input_specs
        if s.kind == torch.export.graph_signature.InputKind.CONSTANT_TENSOR and s.target
    ]


def test_in_memory_program(exported: torch.export.ExportedProgram) -> None:
    _check(torchexec.Program.from_exported(exported), exported)


def test_file_program(exported: torch.export.ExportedProgram, tmp_path: Path) -> None:
    path = tmp_path / "stateful.pt2"
    torch.export.save(exported, path)
    _check(torchexec.Program.from_path(path), exported)


def test_aten_applies_the_mutations() -> None:
    x, acc = torch.tensor([1.0, 1.0]), torch.zeros(2)
    run = torchexec.prepare(_export(), x, acc, executor="aten")
    with torch.no_grad():
        run(x, acc)
        out = run(x, acc)
    assert torch.equal(acc, torch.tensor([2.0, 2.0]))
    assert torch.equal(out, torch.tensor([14.5, 25.25]))  # count is 2 on the second call


def test_a_missing_state_value_is_a_program_error() -> None:
    ep = _export()
    del ep.state_dict["weight"]
    with pytest.raises(torchexec.ProgramError, match="parameter 'weight' has no value"):
        torchexec.Program.from_exported(ep).lifted_state()
