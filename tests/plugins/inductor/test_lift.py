"""Preparing the program AOTInductor compiles, checked in eager mode (nothing is compiled here)."""

from __future__ import annotations

import copy

import torch
from torch.export import Dim
from torch.export.graph_signature import InputKind

from torchexec_inductor._inputs import InputChecker, TensorInput, user_inputs
from torchexec_inductor._lift import LiftedState, compile_program, written_placeholders


class Stateful(torch.nn.Module):
    count: torch.Tensor
    scale: torch.Tensor
    fixed: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 4)
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("scale", torch.ones(4), persistent=False)
        self.register_buffer("fixed", torch.full((4,), 0.5))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        self.scale[1:].mul_(2)  # through a view
        y.mul_(2)
        out: torch.Tensor = self.lin(x) + self.count * self.scale + self.fixed
        return out


def _export() -> tuple[Stateful, torch.export.ExportedProgram]:
    torch.manual_seed(0)
    model = Stateful()
    x, y = torch.randn(5, 8), torch.randn(3)
    ep = torch.export.export(copy.deepcopy(model), (x, y), dynamic_shapes=({0: Dim("b")}, None))
    return model, ep


def test_written_placeholders_follow_views() -> None:
    _, ep = _export()
    assert written_placeholders(ep) == {"b_count", "b_scale", "y"}


def test_every_buffer_becomes_a_leading_input() -> None:
    model, ep = _export()
    before = str(ep.graph)
    lifted = LiftedState.of(ep, written_placeholders(ep))
    assert lifted.names == ("count", "scale", "fixed")
    assert lifted.tensors[0] is ep.state_dict["count"]
    assert lifted.tensors[1] is ep.constants["scale"]

    compiled = compile_program(ep, lifted, [torch.randn(5, 8), torch.randn(3)])
    kinds = {s.arg.name: s.kind for s in compiled.graph_signature.input_specs}
    assert kinds == {
        "p_lin_weight": InputKind.PARAMETER,
        "p_lin_bias": InputKind.PARAMETER,
        "b_count": InputKind.USER_INPUT,
        "b_fixed": InputKind.USER_INPUT,
        "b_scale": InputKind.USER_INPUT,
        "x": InputKind.USER_INPUT,
        "y": InputKind.USER_INPUT,
    }
    assert set(compiled.state_dict) == {"lin.weight", "lin.bias"}
    assert str(ep.graph) == before  # the program's own graph is untouched

    # Run the compiled form eagerly: the buffers passed in are updated in place, call after call.
    state = [t.clone() for t in lifted.tensors]
    run = compiled.module()
    for _ in range(2):
        x, y, y_ref = torch.randn(6, 8), torch.randn(3), torch.randn(3)
        y_ref.copy_(y)
        torch.testing.assert_close(run(*state, x, y), model(x, y_ref))
        assert torch.equal(y, y_ref)
    assert float(state[0]) == 2.0 and state[1].tolist() == [1.0, 4.0, 4.0, 4.0]


def test_examples_are_made_up_when_the_program_has_none() -> None:
    _, ep = _export()
    checker = InputChecker(ep, user_inputs(ep, written_placeholders(ep)))
    x, y = checker.example()
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    assert x.shape[1] == 8 and x.shape[0] >= 2 and y.shape == (3,)
    checker([x, y])  # the made-up inputs pass the checks
    spec = checker.inputs[0]
    assert isinstance(spec, TensorInput) and not spec.static and spec.contiguous_stride()

    ep.example_inputs = None  # as for a program read from JSON
    compiled = compile_program(ep, LiftedState((), (), ()), [x, y])
    assert compiled is not ep and compiled.graph is not ep.graph
    args, kwargs = compiled.example_inputs
    assert args[0] is x and args[1] is y and kwargs == {}
