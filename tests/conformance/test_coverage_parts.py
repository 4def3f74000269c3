"""Unit tests of the coverage pass's parts: its cases, batches, the coverage table, and the
OpInfo tier's dtypes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchexec.testing._coverage import (
    VARIANTS,
    CoverageCase,
    coverage_cases,
    declared_dtypes,
    merge,
)
from torchexec.testing._coverage_report import (
    CoverageCell,
    coverage_json,
    coverage_lines,
    never_exercised,
)
from torchexec.testing.catalog import CATALOG, by_name
from torchexec.testing.compare import compare_outputs

CASES = coverage_cases(CATALOG, len(VARIANTS))


def _of(op: str, dtype: str | None = None) -> list[CoverageCase]:
    return [c for c in CASES if c.op == op and (dtype is None or c.dtype == dtype)]


def test_every_operator_declares_dtypes_and_the_int_division_is_one() -> None:
    declared = declared_dtypes(CASES)
    assert set(declared) == {op.name for op in CATALOG}
    assert declared["aten.div.Tensor"] == ["float32", "float64", "float16", "bfloat16", "int64"]
    assert declared["aten.bitwise_and.Tensor"] == ["int64", "bool"]
    assert declared["aten.full.default"] == [
        "float32", "float64", "float16", "bfloat16", "int64", "bool",
    ]  # fmt: skip
    assert sum(map(len, declared.values())) >= 650


def test_cases_are_the_same_every_run() -> None:
    again = coverage_cases(CATALOG[:20], 4)
    first = [c for c in CASES if c.op in {op.name for op in CATALOG[:20]}]
    assert [(c.op, c.dtype, c.variant) for c in again] == [
        (c.op, c.dtype, c.variant) for c in first
    ]
    for a, b in zip(again, first, strict=True):
        assert a.ir.module_code() == b.ir.module_code()


def _calls(op: str, dtype: str | None = None) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    return [(c.ir.calls[0].args, dict(c.ir.calls[0].kwargs)) for c in _of(op, dtype)]


def test_variants_cover_the_keywords_that_change_behaviour() -> None:
    alphas = {kw.get("alpha") for _, kw in _calls("aten.sub.Tensor", "float32")}
    assert alphas == {None, 2, -1, 0.5}
    modes = {kw.get("rounding_mode") for _, kw in _calls("aten.div.Tensor_mode", "float32")}
    assert modes == {"trunc", "floor", None}
    keepdims = {args[2] for args, _ in _calls("aten.amax.default", "float32")}
    assert keepdims == {True, False}
    dims = [args[1] for args, _ in _calls("aten.sum.dim_IntList", "float32")]
    assert [] in dims and any(d and all(x < 0 for x in d) for d in dims)
    scalars = {args[1] for args, _ in _calls("aten.add.Scalar")}
    assert len(scalars) >= 2


def test_variants_cover_layouts_empty_tensors_and_special_values() -> None:
    layouts = {s.layout for c in CASES for s in c.ir.inputs}
    assert layouts == {"contiguous", "transposed", "strided", "expanded"}
    layouts = {s.layout for c in _of("aten.add.Tensor", "float32") for s in c.ir.inputs}
    assert {"contiguous", "expanded"} <= layouts
    empty = [c for c in _of("aten.sum.dim_IntList") if any(0 in s.shape for s in c.ir.inputs)]
    assert empty
    ints = [x for c in CASES if c.dtype == "int64" for x in c.ir.make_inputs()]
    big = torch.iinfo(torch.int64)
    extremes = [bool(((x == big.max) | (x == big.min)).any()) for x in ints]
    assert sum(extremes) >= 50
    floats = [x for c in CASES if c.dtype == "float32" for x in c.ir.make_inputs()]
    assert sum(bool(x.isnan().any()) for x in floats) >= 20
    assert sum(bool((x == float("-inf")).any()) for x in floats) >= 10


def test_a_batch_computes_what_its_cases_compute() -> None:
    chosen = [c for c in CASES if c.dtype == "int64"][:40]
    batch = merge(chosen)
    assert len(batch.calls) == len(chosen)
    env = batch.evaluate()
    got = [env[r.name] if r.index is None else env[r.name][r.index] for r in batch.outputs]
    want = []
    for c in chosen:
        e = c.ir.evaluate()
        want += [e[r.name] if r.index is None else e[r.name][r.index] for r in c.ir.outputs]
    assert compare_outputs(got, want).ok


def test_coverage_cell_status_and_table() -> None:
    declared = {"aten.div.Tensor": ["float32", "int64"], "aten.abs.default": ["float32"]}
    cells = {
        ("aten.div.Tensor", "float32"): CoverageCell(exercised=3, passed=3),
        ("aten.div.Tensor", "int64"): CoverageCell(exercised=1, failed=1),
    }
    data = coverage_json(cells, declared)
    assert data["aten.div.Tensor"]["float32"] == {"status": "passed", "exercised": 3, "passed": 3}
    assert data["aten.div.Tensor"]["int64"]["status"] == "failed"
    assert data["aten.abs.default"]["float32"] == {"status": "not exercised"}
    assert never_exercised(cells, declared) == ["aten.abs.default on float32"]
    lines = coverage_lines("mine", cells, declared)
    assert (
        lines[0] == "coverage mine: 3 (operator, dtype) pairs: 1 passed, 1 failed, 1 not exercised"
    )
    assert lines[2].split() == ["aten.div.Tensor", "ok", "FAIL"]
    assert lines[3].split() == ["aten.abs.default", "MISS", "."]
    claimed = {("aten.abs.default", "float32"): CoverageCell(unsupported=2, reason="declared")}
    assert never_exercised(claimed, {"aten.abs.default": ["float32"]}) == []


def test_catalog_dtype_of_a_call() -> None:
    case = _of("aten.where.self", "int64")[0]
    assert case.ir.calls[0].dtype == "int64"
    assert by_name("aten.where.self").group == "comparison"


def test_opinfo_dtypes_and_samples() -> None:
    pytest.importorskip("expecttest")
    from torchexec.testing.opinfo import opinfo_dtypes, reproduction, sample_program

    dtypes = opinfo_dtypes("add")
    assert dtypes[0] == torch.float32 and torch.int64 in dtypes and torch.bool in dtypes
    _, make_inputs = sample_program("add", 0, "int64")
    assert all(x.dtype == torch.int64 for x in make_inputs())
    code = reproduction("add", 0, "mine", "aten", exact=True, dtype=torch.int64)
    assert 'sample_program("add", 0, "int64")' in code
