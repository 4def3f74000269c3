"""The Plan contract (shared with the torchbind engine) and the liveness of intermediates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy
from torchexec_proxy.plan import MixedList, Plan, Slot, SlotList, Static


def _reads(plan_node: Any) -> set[int]:
    out: set[int] = set()
    for a in (*plan_node.args, *plan_node.kwargs.values()):
        if isinstance(a, Slot):
            out.add(a.index)
        elif isinstance(a, SlotList):
            out.update(i for i in a.items if i is not None)
        elif isinstance(a, MixedList):
            out.update(i.index for i in a.items if isinstance(i, Slot))
    return out


def check_plan_invariants(plan: Plan) -> None:
    """Every slot read is written first; frees never hit state, outputs or a node's own writes."""
    state = {e.slot for e in plan.state}
    assert len(state) == len(plan.state)
    live = set(state) | {s for s in plan.inputs if s is not None}
    for node in plan.nodes:
        reads = _reads(node)
        assert reads <= live, f"{node.name} reads unset slots {reads - live}"
        writes = {o for o in node.outputs if o is not None}
        assert not writes & state, f"{node.name} overwrites state"
        assert not set(node.free_after) & writes, f"{node.name} frees a slot it writes"
        assert not set(node.free_after) & state, f"{node.name} frees state"
        assert set(node.free_after) <= reads, f"{node.name} frees slots it does not read"
        live |= writes
        live -= set(node.free_after)
        assert all(0 <= s < plan.num_slots for s in reads | writes)
    for out in plan.outputs:
        if isinstance(out, Slot):
            assert out.index in live
    for m in plan.mutations:
        assert m.slot in live


class Block(nn.Module):
    shift: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.register_buffer("shift", torch.randn(8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.a(x)) + x
        g = torch.sigmoid(self.b(h)) * h + self.shift
        v, i = torch.topk(g, 3)
        return torch.cat([g, h], 1).sum(1) + v.sum(1), i


def _program() -> tuple[torchexec.Program, torch.export.ExportedProgram]:
    torch.manual_seed(0)
    ep = torch.export.export(Block(), (torch.randn(4, 8),), strict=False)
    return torchexec.Program.from_exported(ep), ep


def test_plan_structure() -> None:
    program, ep = _program()
    plan = torchexec_proxy.load_plan(program)
    check_plan_invariants(plan)
    assert [e.kind for e in plan.state] == ["parameter"] * 4 + ["buffer"]
    assert set(plan.state_values) == {"a.weight", "a.bias", "b.weight", "b.bias", "shift"}
    assert plan.state_values["shift"] is ep.state_dict["shift"]
    by_name = {n.name: n for n in plan.nodes}
    topk = by_name["topk"]
    assert topk.kind == "op" and topk.returns_tuple and len(topk.outputs) == 2
    assert topk.op is torch.ops.aten.topk.default
    # defaults are filled in, in schema order: topk(self, k, dim=-1, largest=True, sorted=True)
    assert topk.args[1:] == (Static(3), Static(-1), Static(True), Static(True))
    add = next(n for n in plan.nodes if n.target == "torch.ops.aten.add.Tensor")
    assert add.kwargs == {"alpha": Static(1)}
    cat = by_name["cat"]
    assert isinstance(cat.args[0], SlotList) and len(cat.args[0].items) == 2
    assert plan.metadata["schema_version"].startswith("8.")
    assert plan.metadata["in_spec"] and plan.metadata["out_spec"]


def test_slots_are_reused() -> None:
    program, _ = _program()
    plan = torchexec_proxy.load_plan(program)
    values = len(plan.state) + 1 + sum(len(n.outputs) for n in plan.nodes)
    assert plan.num_slots < values


def _expected_live(gm: torch.fx.GraphModule, user_inputs: set[str]) -> dict[str, int]:
    """Intermediates alive after each call in ``gm.forward`` (which drops a name after its
    last use), counting user inputs and excluding the program's state."""
    nodes = list(gm.graph.nodes)
    last: dict[str, int] = {}
    for k, n in enumerate(nodes):
        for a in n.all_input_nodes:
            last[a.name] = k
    outputs = {a.name for a in nodes[-1].all_input_nodes}
    counts: dict[str, int] = {}
    defined: list[str] = [n.name for n in nodes if n.op == "placeholder" and n.name in user_inputs]
    for k, n in enumerate(nodes):
        if n.op != "call_function":
            continue
        defined.append(n.name)
        counts[n.name] = sum(1 for d in defined if last.get(d, -1) > k or d in outputs)
    return counts


def test_intermediates_freed_at_last_use() -> None:
    """After each node, the runner holds exactly the values ``gm.forward`` still holds."""
    torch.manual_seed(0)

    class Chain(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            a = x * y
            b = torch.relu(a) + y  # a dies here
            c = b.exp()
            d = c - b  # b and c die here
            e = torch.cat([d, x])  # x dies here
            f = e.sum() + d.mean()
            return f * 2

    x, y = torch.randn(64), torch.randn(64)
    ep = torch.export.export(Chain(), (x, y), strict=False)
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    check_plan_invariants(plan)
    runner = torchexec_proxy.ProxyRunner(plan)
    expected = _expected_live(ep.graph_module, {"x", "y"})
    seen = {}
    for name, slots in runner.trace(x, y):
        if name != "<outputs>":
            seen[name] = sum(1 for s in slots if s is not None)
        else:
            assert torch.equal(slots[0], ep.module()(x, y))
    assert seen == expected
    assert max(seen.values()) <= 3


def test_large_intermediates_released_during_run() -> None:
    """With 4 MB intermediates, at most a few are alive at any point of a 40-node chain."""
    x = torch.randn(1 << 20)

    class Long(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for _ in range(20):
                x = torch.sin(x) * 1.5
            return x

    ep = torch.export.export(Long(), (x,), strict=False)
    runner = torchexec_proxy.ProxyRunner(
        torchexec_proxy.load_plan(torchexec.Program.from_exported(ep))
    )
    peak = 0
    for name, slots in runner.trace(x):
        if name != "<outputs>":
            peak = max(peak, sum(1 for s in slots if isinstance(s, torch.Tensor)))
    # each node's input dies at that node, so its output takes the same slot
    assert peak == 1
    assert runner.plan.num_slots == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval(),
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4).eval(), nn.ReLU()),
    ],
)
def test_invariants_on_models(make: Callable[[], nn.Module]) -> None:
    torch.manual_seed(0)
    model = make()
    shape = (2, 5, 16) if isinstance(model, nn.TransformerEncoderLayer) else (1, 3, 6, 6)
    ep = torch.export.export(model, (torch.randn(*shape),), strict=False)
    check_plan_invariants(torchexec_proxy.load_plan(torchexec.Program.from_exported(ep)))


def test_load_plan_from_json_matches_load_plan() -> None:
    program, _ = _program()
    ser = program.serialized()
    a = torchexec_proxy.load_plan(program)
    b = torchexec_proxy.load_plan_from_json(ser.model_json, ser.weights, ser.constants)
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    assert [(n.args, n.kwargs, n.outputs, n.free_after) for n in a.nodes] == [
        (n.args, n.kwargs, n.outputs, n.free_after) for n in b.nodes
    ]
    x = torch.randn(4, 8)
    out_a, out_b = torchexec_proxy.ProxyRunner(a)(x), torchexec_proxy.ProxyRunner(b)(x)
    assert all(torch.equal(p, q) for p, q in zip(out_a, out_b, strict=True))


def test_plugin_module_imports_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, torchexec_proxy; "
        "assert 'torchexec_proxy._loader' not in sys.modules; "
        "torchexec_proxy.load_plan; "
        "assert 'torchexec_proxy._loader' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
