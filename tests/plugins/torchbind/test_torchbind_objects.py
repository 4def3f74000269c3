"""Programs holding TorchBind objects run on aten, proxy and torchbind, and agree.

The objects come from ``torchexec_torchbind.testing``: ``Scale`` (pure), ``Accumulator``
(stateful) and the ``scale_add`` operator that takes a ``Scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import torchexec

from .conftest import TESTING_NS, assert_same, engine_of

pytestmark = pytest.mark.usefixtures("testing_lib")

EXECUTORS = ("aten", "proxy", "torchbind")
OPTIONS = {"allowed_namespaces": [TESTING_NS]}
W = torch.tensor([1.0, -2.0, 0.5])


def _scale(weight: torch.Tensor = W) -> Any:
    from torchexec_torchbind import testing

    return testing.scale(weight.clone())


def _accumulator() -> Any:
    from torchexec_torchbind import testing

    return testing.accumulator(torch.zeros(3))


class PureModel(torch.nn.Module):
    """A method call and a custom operator on a pure object."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = _scale()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.scale.apply(x).relu()
        z = torch.ops.torchexec_testing.scale_add(self.scale, y, 3)
        return z * 2, torch.ops.torchexec_testing.scale_add(self.scale, x)


class StatefulModel(torch.nn.Module):
    """Two method calls on a stateful object per call, one of them on an operator's output."""

    def __init__(self) -> None:
        super().__init__()
        self.acc = _accumulator()
        self.scale = _scale()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.acc.add(self.scale.apply(x))
        second = self.acc.add(x + 1)
        return first * 1, second - first


def test_pure_object_runs_everywhere() -> None:
    m = PureModel()
    x = torch.randn(4, 3)
    ep = torch.export.export(m, (x,), strict=False)
    kinds = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert "call_torchbind" in kinds[0] and any("scale_add" in k for k in kinds)
    eager = m(x)
    for name in EXECUTORS:
        opts = None if name == "aten" else OPTIONS
        run = torchexec.prepare(ep, x, executor=name, executor_parameters=opts)
        for _ in range(2):
            assert_same(run(x), eager, name)


def test_stateful_object_states_agree() -> None:
    """Each executor gets a fresh accumulator; outputs and final states agree."""
    x = torch.randn(2, 3)
    m = StatefulModel()
    ep = torch.export.export(m, (x,), strict=False)
    assert m.acc.get_count() == 0  # tracing used a fake object
    outputs: dict[str, list[Any]] = {}
    states: dict[str, tuple[torch.Tensor, int]] = {}
    for name in EXECUTORS:
        acc = _accumulator()
        if name == "aten":
            ep.constants["acc"] = acc  # the reference runs the program's own object
            run = torchexec.prepare(ep, x, executor=name)
        else:
            opts = dict(OPTIONS, custom_objs={"acc": acc})
            run = torchexec.prepare(ep, x, executor=name, executor_parameters=opts)
        outputs[name] = [run(x) for _ in range(3)]
        states[name] = (acc.get_total(), acc.get_count())
    for name in ("proxy", "torchbind"):
        assert_same(outputs[name], outputs["aten"], name)
        assert_same(states[name], states["aten"], f"{name} state")
    assert states["torchbind"][1] == 6
    # The second call's first output started from the first call's total.
    assert not torch.equal(outputs["torchbind"][0][0], outputs["torchbind"][1][0])


def test_custom_objs_replace_the_program_object() -> None:
    x = torch.randn(3)
    ep = torch.export.export(PureModel(), (x,), strict=False)
    other = _scale(torch.tensor([3.0, 3.0, 3.0]))
    opts = dict(OPTIONS, custom_objs={"scale": other})
    out = torchexec.prepare(ep, x, executor="torchbind", executor_parameters=opts)(x)
    y = (x * 3).relu()
    assert_same(out, ((y + 3 * 3.0) * 2, x + 3.0))


def test_pt2_with_custom_objects_runs_from_disk(tmp_path: Path) -> None:
    x = torch.randn(2, 3)
    m = PureModel()
    path = tmp_path / "pure.pt2"
    torch.export.save(torch.export.export(m, (x,), strict=False), path)
    run = torchexec.prepare(str(path), x, executor="torchbind", executor_parameters=OPTIONS)
    assert_same(run(x), m(x))


def test_custom_namespace_must_be_allowed() -> None:
    x = torch.randn(3)
    ep = torch.export.export(PureModel(), (x,), strict=False)
    with pytest.raises(torchexec.ProgramError, match="torchexec_testing"):
        torchexec.prepare(ep, x, executor="torchbind")


def test_engine_holding_objects_saves_and_loads(tmp_path: Path) -> None:
    """A TorchScript module holding the engine (and through it the objects) round-trips."""
    x = torch.randn(2, 3)
    m = StatefulModel()
    ep = torch.export.export(m, (x,), strict=False)
    acc = _accumulator()
    run = torchexec.prepare(
        ep, x, executor="torchbind", executor_parameters=dict(OPTIONS, custom_objs={"acc": acc})
    )
    run(x)  # the saved engine holds an accumulator that has seen one call
    holder = torch.jit.script(_Holder(engine_of(run)))
    path = tmp_path / "engine.pt"
    torch.jit.save(holder, str(path))
    loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    expected = run(x)
    assert_same(loaded(x), list(expected))


class _Holder(torch.nn.Module):
    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, x: torch.Tensor) -> list[Any]:
        inputs: list[Any] = [x]
        out: list[Any] = self.engine.run(inputs)
        return out
