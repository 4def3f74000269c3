"""Unit tests of the kit's parts: values, comparison, skips, strategies, reproduction code."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import torchexec
from torchexec.testing import InputSpec, compare_outputs, input_specs, make_input, programs
from torchexec.testing._contributed import contributed_ops
from torchexec.testing._ir import Call, ProgramIR, Ref, map_refs, reproduction
from torchexec.testing._values import tensor_literal
from torchexec.testing.catalog import CATALOG, GROUPS, by_name, select
from torchexec.testing.compare import Tolerances, same_bits
from torchexec.testing.runner import Case, Checker
from torchexec.testing.skips import SkipList, SkipsFileError, id_matches
from torchexec.testing.strategies import Builder, GenerationConfig

FEW = settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "shape", "contiguous"),
    [
        ("contiguous", (2, 3), True),
        ("transposed", (2, 3, 4), False),
        ("strided", (3, 4), False),
        ("expanded", (3, 2), False),
    ],
)
def test_input_layouts(layout: str, shape: tuple[int, ...], contiguous: bool) -> None:
    x = make_input(InputSpec(shape, torch.float32, layout, seed=3))  # type: ignore[arg-type]
    assert tuple(x.shape) == shape
    assert x.is_contiguous() == contiguous
    if layout == "expanded":
        assert x.stride()[0] == 0
    assert torch.equal(x, make_input(InputSpec(shape, torch.float32, layout, seed=3)))  # type: ignore[arg-type]


def test_input_value_ranges() -> None:
    idx = make_input(InputSpec((50,), torch.int64, low=0, high=3))
    assert int(idx.min()) >= 0 and int(idx.max()) <= 2
    special = make_input(InputSpec((400,), torch.float64, seed=1, specials=True))
    assert bool(special.isnan().any()) and bool(special.isinf().any())
    with pytest.raises(ValueError, match="rank >= 2"):
        InputSpec((3,), torch.float32, "transposed")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_tensor_literal_is_exact(dtype: torch.dtype) -> None:
    x = torch.tensor([1 / 3, math.nan, math.inf, -math.inf, -0.0, 1e-3], dtype=dtype)
    y = eval(tensor_literal(x), {"torch": torch})
    assert y.dtype == dtype
    assert torch.equal(x.isnan(), y.isnan())
    assert torch.equal(x.nan_to_num(), y.nan_to_num())
    assert torch.equal(torch.signbit(x), torch.signbit(y))
    empty = torch.empty(2, 0, 3, dtype=torch.int64)
    assert eval(tensor_literal(empty), {"torch": torch}).shape == (2, 0, 3)


@FEW
@given(input_specs(max_rank=3, max_dim=4))
def test_input_specs_strategy(spec: InputSpec) -> None:
    x = make_input(spec)
    assert tuple(x.shape) == spec.shape and x.dtype == spec.dtype
    assert len(spec.shape) <= 3 and all(0 <= d <= 4 for d in spec.shape)
    if spec.layout == "contiguous":
        assert x.is_contiguous()


# --- comparison ------------------------------------------------------------------------------


def test_bitwise_comparison() -> None:
    x = torch.tensor([1.0, math.nan, 3.0])
    assert compare_outputs([x.clone()], [x]).ok
    one_ulp = torch.nextafter(x, torch.tensor(math.inf))
    cmp = compare_outputs([torch.where(x.isnan(), x, one_ulp)], [x])
    assert not cmp.ok and cmp.output == 0 and "values differ" in cmp.reason
    assert 0 < cmp.max_abs < 1e-6
    moved = compare_outputs([torch.tensor([math.nan, 2.0, 3.0])], [x])
    assert "NaN in different places" in moved.reason
    assert "dtype" in compare_outputs([x.double()], [x]).reason
    assert "shape" in compare_outputs([x[:2]], [x]).reason
    assert "2 outputs, expected 1" in compare_outputs([x, x], [x]).reason


def test_same_bits() -> None:
    x = torch.tensor([1.0, math.nan, -math.inf])
    assert same_bits(x, x.clone())
    assert not same_bits(torch.tensor([0.0]), torch.tensor([-0.0]))
    assert not same_bits(x, torch.nextafter(x, torch.tensor(0.0)))
    grid = torch.arange(6.0).reshape(2, 3)
    assert same_bits(grid.t(), grid.t().contiguous())
    assert same_bits(torch.tensor([True, False]), torch.tensor([True, False]))
    assert not same_bits(torch.tensor([True]), torch.tensor([False]))


def test_tolerance_comparison() -> None:
    e = torch.tensor([1.0, 2.0, 4.0])
    near = e * (1 + 5e-6)
    assert not compare_outputs([near], [e]).ok
    assert compare_outputs([near], [e], bitwise=False).ok
    far = e * (1 + 1e-3)
    cmp = compare_outputs([far], [e], bitwise=False)
    assert not cmp.ok and math.isclose(cmp.max_rel, 1e-3, rel_tol=1e-3)
    # an operator on the path widens the tolerance
    tols = Tolerances.shipped()
    assert (
        tols.for_dtype(torch.float32, ["aten.mm.default"]).rtol > tols.for_dtype(torch.float32).rtol
    )
    ints = torch.tensor([1, 2])
    assert not compare_outputs([ints + 1], [ints], bitwise=False).ok


def test_tolerance_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        Tolerances.from_json({"defaults": {}})
    with pytest.raises(ValueError, match=r"operators.aten.exp.float32"):
        Tolerances.from_json({"operators": {"aten.exp": {"float32": {"tol": 1}}}})
    path = tmp_path / "tol.json"
    path.write_text('{"operators": {"aten.exp": {"float32": {"rtol": 0.5, "atol": 0.5}}}}')
    merged = Tolerances.shipped().merged(Tolerances.load(path))
    assert merged.for_dtype(torch.float32, ["aten.exp.default"]).rtol == 0.5


# --- skips -----------------------------------------------------------------------------------


def test_skips_matching() -> None:
    skips = SkipList.parse(
        "x::opinfo::add   adds\n*::opinfo::linalg  all linalg  # comment\n\n# only a comment\n",
        "s.txt",
    )
    assert skips.match(["x::opinfo::add::0"]).reason == "adds"  # type: ignore[union-attr]
    assert skips.match(["x::opinfo::addmm::0"]) is None
    assert skips.match(["y::opinfo::linalg.svd::1"]).reason == "all linalg"  # type: ignore[union-attr]
    assert skips.match(["y::opinfo::add::0"]) is None
    assert id_matches("x::generated::aten.mul", "x::generated::aten.mul.Tensor")
    assert not id_matches("x::generated::aten.mul", "x::generated::aten.multiply.Tensor")


def test_skips_file_errors() -> None:
    with pytest.raises(SkipsFileError, match=r"s.txt:2: 'x::opinfo::add' has no reason"):
        SkipList.parse("\nx::opinfo::add\n", "s.txt")
    with pytest.raises(SkipsFileError, match="not a conformance id"):
        SkipList.parse("add  reason\n", "s.txt")


def test_unmatched_skips() -> None:
    skips = SkipList.parse(
        "x::opinfo::ad  typo\nx::opinfo::add::3  sample 3\nx::generated::a  g\n", "s"
    )
    unmatched = skips.unmatched(["x::opinfo::add"], ["x"], ["opinfo"])
    assert [e.prefix for e in unmatched] == ["x::opinfo::ad"]  # generated did not run


# --- catalog and strategies ------------------------------------------------------------------


def test_catalog_covers_the_operator_families() -> None:
    assert len(CATALOG) >= 60
    assert len({op.name for op in CATALOG}) == len(CATALOG)
    for group in ("unary", "binary", "comparison", "reduction", "matmul", "view",
                  "multi-output", "indexing", "normalization", "convolution", "cast"):  # fmt: skip
        assert group in GROUPS
    for name in ("aten.where.self", "aten.argmax.default", "aten.addmm.default",
                 "aten.conv2d.default", "aten.max_pool2d.default", "aten.layer_norm.default",
                 "aten.split.Tensor", "aten.gather.default", "aten._to_copy.default"):  # fmt: skip
        assert by_name(name).name == name
    assert [op.group for op in select(groups=["matmul"])] == ["matmul"] * 5
    with pytest.raises(KeyError, match="close"):
        by_name("aten.add.Tensr")


def _aten_only(gm: torch.fx.GraphModule) -> bool:
    import operator

    return all(
        n.op != "call_function"
        or n.target is operator.getitem
        or isinstance(n.target, torch._ops.OpOverload)
        for n in gm.graph.nodes
    )


@FEW
@given(programs(max_nodes=8))
def test_generated_programs_are_valid_aten_graphs(program: object) -> None:
    from torchexec.testing.strategies import GeneratedProgram

    assert isinstance(program, GeneratedProgram)
    gm = program.graph_module()
    assert _aten_only(gm)
    assert 1 <= len(program.ir.calls) <= 8 + 1
    out = gm(*program.make_inputs())
    assert len(out) == len(program.ir.outputs) >= 1
    # the reproduction code rebuilds the same program and inputs
    scope: dict[str, object] = {"torch": torch, "torchexec": torchexec}
    exec(compile(program.code(), "<generated>", "exec"), scope)
    again = scope["Program"]()(*scope["make_inputs"]())  # type: ignore[operator]
    assert compare_outputs(list(again), list(out)).ok


@FEW
@given(programs(operators=[by_name("aten.conv2d.default")], max_nodes=2))
def test_operator_subsets(program: object) -> None:
    from torchexec.testing.strategies import GeneratedProgram

    assert isinstance(program, GeneratedProgram)
    assert set(program.operators) <= {"aten.conv2d.default", "aten.clone.default"}


@FEW
@given(st.data())
def test_minimised_programs_run(data: st.DataObject) -> None:
    b = Builder(data.draw, GenerationConfig(dtypes=(torch.float32,), constant_ratio=0))
    for name in ("aten.exp.default", "aten.mul.Tensor", "aten.neg.default", "aten.sum.default"):
        assume(b.call(by_name(name)) is not None)
    ir = b.ir
    ir.outputs = ir.calls[-1].results()
    env = ir.evaluate()
    alone = ir.isolated(2, env)
    assert alone is not None and alone.operators == ["aten.neg.default"]
    assert len(alone.inputs) == 1 and alone.inputs[0].literal is not None
    assert compare_outputs(list(alone.graph_module()(*alone.make_inputs())), [env["v2"]]).ok
    sliced = ir.sliced(1)
    assert sliced.operators[-1] == "aten.mul.Tensor"
    assert compare_outputs(list(sliced.graph_module()(*sliced.make_inputs())), [env["v1"]]).ok
    code = reproduction(alone, "aten", "aten", exact=True)
    exec(compile(code, "<repro>", "exec"), {"__name__": "repro"})


# --- runner ----------------------------------------------------------------------------------


def test_reproduction_runs_the_setup_lines_the_specs_carry() -> None:
    """A reproduction gets its imports from the data of the operators and objects it calls."""
    setup = ("import math", "SETUP_RAN = math.pi > 3")
    neg = Call("v0", "mine.neg", torch.ops.aten.neg.default, (Ref("x0"),), setup=setup)
    ir = ProgramIR(inputs=[InputSpec((3,), torch.float32)], calls=[neg], outputs=[Ref("v0")])
    code = reproduction(ir, "aten", "aten", exact=True)
    assert code.index("import math") < code.index("SETUP_RAN") < code.index("class Program")
    scope: dict[str, object] = {}
    exec(compile(code, "reproduction", "exec"), scope)
    assert scope["SETUP_RAN"] is True
    assert "import math" not in reproduction(
        ProgramIR(inputs=ir.inputs), "aten", "aten", exact=True
    )


def test_map_refs_reaches_every_ref() -> None:
    value = (Ref("x0"), [Ref("v1", 0), 2, (Ref("c0"),)], {"alpha": Ref("x1")}, "x2")
    assert map_refs(value, lambda r: r.code()) == (
        "x0",
        ["v1[0]", 2, ("c0",)],
        {"alpha": "x1"},
        "x2",
    )
    call = Call("v2", "aten.add.Tensor", torch.ops.aten.add.Tensor, (Ref("x0"), Ref("v1", 1)),
                {"alpha": Ref("x1")})  # fmt: skip
    assert call.refs() == [Ref("x0"), Ref("v1", 1), Ref("x1")]
    renamed = call.with_refs(lambda r: Ref(r.name.upper(), r.index), name="v0")
    assert (renamed.name, renamed.args, renamed.kwargs) == (
        "v0", (Ref("X0"), Ref("V1", 1)), {"alpha": Ref("X1")}
    )  # fmt: skip


@FEW
@given(st.data())
def test_contributed_torchbind_ops_describe_themselves(data: st.DataObject) -> None:
    """torchexec-torchbind's operators reach the kit through the hook, with their setup lines,
    and its Accumulator is marked stateful (so a call on it is never isolated)."""
    pytest.importorskip("torchexec_torchbind.conformance")
    ops = {op.name: op for op in contributed_ops()}
    assert set(ops) == {
        "torchexec_testing.Scale.apply",
        "torchexec_testing.Scale.get_weight",
        "torchexec_testing.Accumulator.add",
        "torchexec_testing.scale_add.default",
    }
    assert {op.setup for op in ops.values()} == {
        ("import torchexec_torchbind.testing", "torchexec_torchbind.testing.load()")
    }
    b = Builder(data.draw, GenerationConfig(dtypes=(torch.float32,), constant_ratio=0))
    assume(b.call(ops["torchexec_testing.Accumulator.add"]) is not None)
    assert [o.stateful for o in b.ir.objects] == [True] and b.ir.stateful
    assert b.ir.isolated(0, b.ir.evaluate()) is None
    assume(b.call(ops["torchexec_testing.Scale.apply"]) is not None)
    assert b.ir.objects[-1].stateful is False


def test_checker_on_aten() -> None:
    gm = torch.fx.symbolic_trace(lambda x: torch.relu(x) * 2)
    x = torch.randn(4)
    case = Case.of(gm, lambda: (x.clone(),), case_id="relu")
    assert "aten.relu.default" in case.operators
    outcome = Checker(["aten"]).run(case)["aten"]
    assert outcome.status == "passed" and not outcome.failed


# --- entry points ----------------------------------------------------------------------------


def test_main_splits_executors_from_pytest_options(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from torchexec.testing import main
    from torchexec.testing._main import cli

    assert main([], []) == 4
    assert cli(["-k", "x"]) == 4
    # what 'torchexec check aten -- -k ...' hands over: options after the executor names
    report = tmp_path / "r.json"
    args = ["-k", "contract and metadata", "-q", "-p", "no:cacheprovider"]
    assert main(["aten", "--", *args, "--conformance-report", str(report)]) == 0
    assert '"metadata": "passed"' in report.read_text()
    assert f"report written to {report}" in capfd.readouterr().out


def test_kit_is_collected_whatever_python_files_says(tmp_path: Path) -> None:
    from tests.conformance.support import run_kit

    args = ["-o", "python_files=check_*.py", "-k", "contract and metadata", "-q"]
    run = run_kit(["aten"], args, tmp_path / "report.json")
    assert run.returncode == 0, run.output[-3000:]
    assert run.executor("aten")["contract"] == {"metadata": "passed"}
