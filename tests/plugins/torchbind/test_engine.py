"""The C++ engine on hand-built plans: validation errors name the node, run-time checks, pickling."""

from __future__ import annotations

import io
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import torchexec
from torchexec_proxy.plan import MixedList, Plan, PlanNode, Slot, SlotList, StateEntry, Static
from torchexec_torchbind import InputSpec, build_engine, encode_plan, engine_from_plan_state
from torchexec_torchbind._encode import InputKind

from .conftest import TESTING_NS, assert_same, engine_of

pytestmark = pytest.mark.usefixtures("engine_lib")

NS = ("aten", "prims")
F32 = InputSpec("tensor", torch.float32, torch.device("cpu"))


def node(
    name: str,
    target: str,
    args: tuple[Any, ...],
    outputs: tuple[int | None, ...],
    kind: str = "op",
    kwargs: dict[str, Any] | None = None,
    free: tuple[int, ...] = (),
    returns_list: bool = False,
) -> PlanNode:
    return PlanNode(
        name=name,
        target=target,
        kind=kind,  # type: ignore[arg-type]
        op=None,
        args=args,
        kwargs=kwargs or {},
        outputs=outputs,
        returns_list=returns_list,
        free_after=free,
    )


def plan(
    nodes: tuple[PlanNode, ...],
    outputs: tuple[Any, ...],
    num_slots: int | None = None,
    inputs: tuple[int | None, ...] = (0, 1),
    state: tuple[StateEntry, ...] = (),
    state_values: dict[str, Any] | None = None,
) -> Plan:
    if num_slots is None:  # as many as the plan writes values (the engine's bound)
        num_slots = len(inputs) + len(state) + sum(len(n.outputs) for n in nodes)
    return Plan(
        num_slots=num_slots,
        inputs=inputs,
        state=state,
        state_values=state_values or {},
        nodes=nodes,
        outputs=outputs,
    )


ADD = node(
    "add", "torch.ops.aten.add.Tensor", (Slot(0), Slot(1)), (2,), kwargs={"alpha": Static(2)}
)
GOOD = plan((ADD,), (Slot(2),))


def engine(p: Plan, specs: tuple[InputSpec, ...] | None = (F32, F32), **kw: Any) -> Any:
    return build_engine(p, allowed_namespaces=kw.pop("ns", NS), input_specs=specs, **kw)


def test_hand_built_plan_runs() -> None:
    x, y = torch.randn(3), torch.randn(3)
    e = engine(GOOD)
    assert_same(e.run([x, y]), [torch.add(x, y, alpha=2)])
    assert e.num_nodes() == 1 and e.num_slots() == 3 and e.num_inputs() == 2
    assert e.operators() == ["aten::add.Tensor"]


def test_statics_lists_and_frees() -> None:
    """Slot lists, optional lists, mixed int lists, dtype/device statics and moved slots."""
    nodes = (
        node("cat", "torch.ops.aten.cat.default", (SlotList((0, 1, 0)), Static(0)), (2,)),
        node(
            "view",
            "torch.ops.aten.view.default",
            (Slot(2), MixedList((3, 3))),
            (3,),
            free=(2,),
        ),
        node(
            "index",
            "torch.ops.aten.index.Tensor",
            (Slot(3), SlotList((None, 4))),
            (5,),
        ),
        node("idx", "torch.ops.aten.arange.default", (Static(3),), (4,),
             kwargs={"dtype": Static(torch.int64), "layout": Static(torch.strided),
                     "device": Static(torch.device("cpu")), "pin_memory": Static(False)}),
    )  # fmt: skip
    # "idx" must run before "index": reorder.
    p = plan((nodes[0], nodes[1], nodes[3], nodes[2]), (Slot(5), Slot(3)))
    x, y = torch.randn(3), torch.randn(3)
    out = engine(p).run([x, y])
    cat = torch.cat([x, y, x]).view(3, 3)
    assert_same(out, [cat[:, torch.arange(3)], cat])


def test_returns_list_and_python_nodes() -> None:
    nodes = (
        node("split", "torch.ops.aten.split.Tensor", (Slot(0), Static(2)), (2, 3), returns_list=True),
        node("size", "torch.ops.aten.sym_size.int", (Slot(2), Static(0)), (4,)),
        node("mul", "_operator.mul", (Slot(4), Static(5)), (5,), kind="python"),
        node("fd", "_operator.floordiv", (Static(-7), Slot(5)), (6,), kind="python"),
    )  # fmt: skip
    p = plan(nodes, (Slot(3), Slot(5), Slot(6), Static(1.5)), inputs=(0, None))
    x = torch.randn(4)
    out = engine(p, specs=(F32, InputSpec("int"))).run([x, 3])
    assert_same(out, [x[2:], 10, -7 // 10, 1.5])


def _error(p: Plan, match: str, **kw: Any) -> None:
    with pytest.raises(torchexec.ProgramError, match=match):
        engine(p, **kw)


def test_unknown_operator() -> None:
    bad = replace(ADD, name="mystery", target="torch.ops.aten.not_an_op.Tensor")
    _error(plan((bad,), (Slot(2),)), r"node 'mystery'.*unknown operator aten::not_an_op.Tensor")


def test_namespace_not_allowed() -> None:
    _error(GOOD, r"node 'add'.*namespace 'aten' is not allowed", ns=("prims",))


def test_too_many_arguments() -> None:
    bad = replace(ADD, args=(Slot(0), Slot(1), Static(1), Static(2)), kwargs={})
    _error(plan((bad,), (Slot(2),)), r"node 'add'.*takes 3 arguments, got 4")


def test_unknown_and_duplicate_keyword() -> None:
    _error(
        plan((replace(ADD, kwargs={"beta": Static(1)}),), (Slot(2),)),
        r"node 'add'.*no argument named 'beta' \(arguments: self, other, alpha\)",
    )
    _error(
        plan((replace(ADD, kwargs={"other": Slot(1)}),), (Slot(2),)),
        r"node 'add'.*argument 'other' is given twice",
    )


def test_missing_argument() -> None:
    _error(plan((replace(ADD, args=(Slot(0),), kwargs={}),), (Slot(2),)),
           r"node 'add'.*missing argument 'other'")  # fmt: skip


def test_wrong_static_type() -> None:
    _error(
        plan((replace(ADD, kwargs={"alpha": Static("two")}),), (Slot(2),)),
        r"node 'add'.*argument 'alpha'.*expected a value of type Scalar, got a static 'str'",
    )
    bad = node("sum", "torch.ops.aten.sum.dim_IntList", (Slot(0), Static(1.5)), (2,))
    _error(plan((bad,), (Slot(2),)), r"node 'sum'.*argument 'dim'.*expected a value of type")


def test_wrong_slot_type() -> None:
    nodes = (
        node("size", "torch.ops.aten.sym_size.int", (Slot(0), Static(0)), (2,)),
        node("neg", "torch.ops.aten.neg.default", (SlotList((2,)),), (3,)),
    )
    _error(plan(nodes, (Slot(3),)), r"node 'neg'.*argument 'self' expects Tensor, not a list")
    nodes = (
        nodes[0],
        node("cat", "torch.ops.aten.cat.default", (SlotList((0, 2)),), (3,)),
    )
    _error(plan(nodes, (Slot(3),)), r"node 'cat'.*expects tensors but slot 2 holds int")


def test_slot_read_before_written_or_after_freed() -> None:
    bad = replace(ADD, args=(Slot(0), Slot(2)), outputs=(3,))
    _error(plan((bad,), (Slot(3),)), r"node 'add'.*reads slot 2 before anything writes it")
    nodes = (replace(ADD, free_after=(0,)), replace(ADD, name="again", outputs=(3,)))
    _error(plan(nodes, (Slot(3),)), r"node 'again'.*reads slot 0 after node 'add' freed it")
    _error(plan((ADD,), (Slot(3),), num_slots=4),
           r"program output 0 reads slot 3 before anything writes it")  # fmt: skip
    _error(plan((replace(ADD, free_after=(1,)),), (Slot(1),)),
           r"program output 0 reads slot 1 after node 'add' freed it")  # fmt: skip
    _error(plan((ADD,), (Slot(99),)), r"refers to slot 99, outside \[0, 3\)")
    _error(plan((ADD,), (Slot(2),), num_slots=1 << 29), r"num_slots is 536870912, but the plan")


def test_output_count_must_match_the_schema() -> None:
    _error(plan((replace(ADD, outputs=(2, 3)),), (Slot(2),)),
           r"node 'add'.*returns 1 values but the plan stores 2")  # fmt: skip


def test_unknown_python_function() -> None:
    bad = node("sneaky", "builtins.eval", (Static("1"),), (2,), kind="python")
    _error(plan((bad,), (Slot(2),)), r"node 'sneaky'.*unsupported Python function 'builtins.eval'")


def test_bad_plan_shape_is_an_error_not_a_crash() -> None:
    enc = encode_plan(GOOD, allowed_namespaces=NS)
    node = enc[6][0]
    bad_shapes = [
        (),
        ("nope",) * 9,
        (*enc[:6], [node[:2]], *enc[7:]),  # a node with 2 of its 8 fields
        (*enc[:6], [(*node[:4], [("", "slot", "zero", [], "", None)], *node[5:])], *enc[7:]),
    ]
    for bad in bad_shapes:
        with pytest.raises(torchexec.ProgramError):
            engine_from_plan_state(bad)
    with pytest.raises(torchexec.ProgramError, match="not an engine plan"):
        engine_from_plan_state(("other", *enc[1:]))
    with pytest.raises(torchexec.ProgramError, match="plan version 2 is not supported"):
        engine_from_plan_state((enc[0], 2, *enc[2:]))
    bad_arg = [(*node[:4], [("", "slot", [0, 1], [], "", None), *node[4][1:]], *node[5:])]
    with pytest.raises(torchexec.ProgramError, match=r"node 'add'.*'self' needs exactly one slot"):
        engine_from_plan_state((*enc[:6], bad_arg, *enc[7:]))
    bad_tag = [(*node[:4], [("", "weird", [], [], "", None), *node[4][1:]], *node[5:])]
    with pytest.raises(torchexec.ProgramError, match=r"node 'add'.*argument 'self'"):
        engine_from_plan_state((*enc[:6], bad_tag, *enc[7:]))


def test_run_input_checks() -> None:
    e = torchexec_runner(GOOD)
    x = torch.randn(3)
    with pytest.raises(torchexec.InputMismatchError, match="expected 2 inputs, got 1"):
        e(x)
    with pytest.raises(
        torchexec.InputMismatchError,
        match=r"input 1 must have dtype torch\.float32, got torch\.float64",
    ):
        e(x, x.double())  # fmt: skip
    with pytest.raises(torchexec.InputMismatchError, match="input 0 must be a tensor, got int"):
        e(3, x)
    with pytest.raises(torchexec.InputMismatchError, match="input 1 must be on cpu, got meta"):
        e(x, torch.empty(3, device="meta"))


def test_scalar_input_kinds_are_checked() -> None:
    """Each kind is encoded as its word; the engine checks it as its own enum."""
    unread = plan((), (Static(1),), inputs=(None, None, None, None))
    specs = (InputSpec(InputKind.INT), InputSpec("float"), InputSpec("bool"), InputSpec("str"))
    rows = encode_plan(unread, allowed_namespaces=NS, input_specs=specs)[4]
    assert [row[1] for row in rows] == ["int", "float", "bool", "str"]
    e = engine(unread, specs=specs)
    assert e.run([1, 2.0, True, "s"]) == [1]
    for i, bad in enumerate(([1.0, 2.0, True, "s"], [1, 2, True, "s"], [1, 2.0, 1, "s"],
                             [1, 2.0, True, 3])):  # fmt: skip
        with pytest.raises(ValueError, match=f"input {i} must be an? (int|float|bool|str)"):
            e.run(bad)


def test_unknown_input_kind() -> None:
    with pytest.raises(torchexec.ProgramError, match=r"unknown input kind 'complex'.*tensor, int"):
        InputSpec("complex")
    enc = encode_plan(GOOD, allowed_namespaces=NS)
    inputs = [(enc[4][0][0], "complex", "", "", -1), enc[4][1]]
    with pytest.raises(torchexec.ProgramError, match="input 0: unknown input kind 'complex'"):
        engine_from_plan_state((*enc[:4], inputs, *enc[5:]))


def torchexec_runner(p: Plan) -> Any:
    from torchexec_torchbind import EngineRunner

    return EngineRunner(engine(p))


def test_errors_while_running_name_the_node() -> None:
    e = engine(GOOD)
    with pytest.raises(RuntimeError, match=r"while running node 'add' \(aten::add.Tensor\)"):
        e.run([torch.randn(3), torch.randn(4)])


def test_missing_custom_object_and_method(testing_lib: None) -> None:
    from torchexec_torchbind import testing

    call = node(
        "call", "torch.ops.higher_order.call_torchbind",
        (Slot(2), Static("apply"), Slot(0)), (3,), kind="torchbind",
    )  # fmt: skip
    state = (StateEntry(2, "custom_obj", "scale"),)
    p = plan((call,), (Slot(3),), state=state, state_values={})
    _error(p, r"custom object 'scale' was not given; pass it by name in custom_objs")
    obj: Any = testing.scale(torch.tensor([2.0, 3.0, 4.0]))
    good = replace(p, state_values={"scale": obj})
    x = torch.randn(3)
    assert_same(engine(good).run([x, x]), [obj.apply(x)])
    bad = replace(good, nodes=(replace(call, args=(Slot(2), Static("shrink"), Slot(0))),))
    _error(bad, r"node 'call'.*Scale.shrink.*has no method 'shrink' \(methods: apply, get_weight\)")
    not_obj = replace(good, nodes=(replace(call, args=(Slot(0), Static("apply"), Slot(0))),))
    _error(not_obj, r"node 'call'.*needs a TorchBind object, slot 0 holds Tensor")
    arity = replace(good, nodes=(replace(call, args=(*call.args, Slot(1))),))
    _error(arity, r"node 'call'.*takes 1 arguments, got 2")
    op = node(
        "sa", f"torch.ops.{TESTING_NS}.scale_add.default", (Slot(0), Slot(1)), (3,)
    )  # passes a tensor where the operator takes a Scale
    _error(replace(good, nodes=(op,)), r"node 'sa'.*argument 'scale' expects .*Scale but slot 0",
           ns=(*NS, TESTING_NS))  # fmt: skip


def _holder_script(e: Any) -> torch.jit.ScriptModule:
    class Holder(torch.nn.Module):
        def __init__(self, engine: Any) -> None:
            super().__init__()
            self.engine = engine

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> list[Any]:
            inputs: list[Any] = [x, y]
            out: list[Any] = self.engine.run(inputs)
            return out

    scripted: torch.jit.ScriptModule = torch.jit.script(Holder(e))
    return scripted


def test_pickling_round_trips(tmp_path: Path) -> None:
    x, y = torch.randn(3), torch.randn(3)
    e = engine(GOOD)
    expected = e.run([x, y])
    # TorchScript: a module holding the engine, saved and loaded without Python objects.
    path = tmp_path / "holder.pt"
    torch.jit.save(_holder_script(e), str(path))
    loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    assert_same(loaded(x, y), expected)
    assert loaded.engine.operators() == ["aten::add.Tensor"]
    # Python pickle and copy go through the same __getstate__/__setstate__.
    assert_same(pickle.loads(pickle.dumps(e)).run([x, y]), expected)
    buf = io.BytesIO()
    torch.save(e, buf)
    buf.seek(0)
    assert_same(torch.load(buf, weights_only=False).run([x, y]), expected)
    # The state is the encoded plan.
    assert e.plan()[0] == "torchexec.engine"
    rebuilt: Any = engine_from_plan_state(e.plan())
    assert_same(rebuilt.run([x, y]), expected)


def test_engine_from_prepare_pickles_with_its_weights(tmp_path: Path) -> None:
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    x = torch.randn(2, 3)
    run = torchexec.prepare(mlp, x, executor="torchbind")
    e = engine_of(run)
    restored = pickle.loads(pickle.dumps(e))
    with torch.no_grad():
        assert_same(restored.run([x]), [mlp(x)])
