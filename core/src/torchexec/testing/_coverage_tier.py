"""The coverage pass: every catalog operator on every dtype it declares, in batches.

The cases of :mod:`torchexec.testing._coverage` are merged into batches (one program of up to
:data:`BATCH` independent calls, per dtype), so each executor prepares few programs. Each case's
slice of a batch's outputs (and of its inputs, after the call) is compared on its own, with the
tolerances of its own operator. A batch the executor cannot prepare or run is split in halves
until the cases that fail are alone; a batch holding operators the executor's ``supports()``
does not claim is run without them, and cases a skips file lists run alone. Every failure names the operator, the dtype and the input
values, with a reproduction of that one call.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.utils._pytree as pytree

import torchexec
from torchexec.testing import _lists
from torchexec.testing._coverage import (
    CoverageCase,
    coverage_cases,
    declared_dtypes,
    input_values,
    merge,
)
from torchexec.testing._coverage_report import never_exercised
from torchexec.testing._ir import ProgramIR, reproduction
from torchexec.testing._programs import ConformanceFailure
from torchexec.testing._quiet import quiet
from torchexec.testing.catalog import CATALOG
from torchexec.testing.compare import Comparison, compare_outputs
from torchexec.testing.report import Failure
from torchexec.testing.runner import Case
from torchexec.testing.skips import id_matches

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["BATCH", "run_coverage"]

BATCH = 160
"""The most cases in one batch program."""

Results = list[Any]


Layout = tuple[tuple[int, ...], int]
"""An output's strides (size-1 dims left out) and the input it is a view of (-1: none)."""


@dataclass
class _Batch:
    cases: list[CoverageCase]
    ir: ProgramIR
    case: Case
    expected: Results
    layouts: list[Layout]


@dataclass
class _Pass:
    kit: Kit
    messages: list[str] = field(default_factory=list)
    counted: set[int] = field(default_factory=set)


def run_coverage(kit: Kit) -> None:
    """Run the coverage pass on every executor of ``kit``.

    Raises:
        ConformanceFailure: a case failed, or (``ci`` profile) a claimed (operator, dtype) was
            never exercised.
    """
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    kit.tiers_run.add("coverage")
    cases = coverage_cases(CATALOG, kit.coverage_variants)
    kit.report.coverage_declared = declared_dtypes(cases)
    state = _Pass(kit)
    groups: dict[tuple[int, ...], list[str]] = {}
    for name in kit.executors:
        claimed = []
        for i, c in enumerate(cases):
            why = _declared_unsupported(kit, name, c)
            if why is None:
                claimed.append(i)
            else:
                _record(state, name, c, "unsupported", why)
        groups.setdefault(tuple(claimed), []).append(name)
    with quiet(), torch.no_grad():
        for claimed_ids, names in groups.items():
            for chunk in _chunks([cases[i] for i in claimed_ids]):
                _run(state, chunk, names)
    if kit.profile.require_coverage:
        for name in kit.executors:
            section = kit.report.executor(name)
            missing = never_exercised(section.coverage, kit.report.coverage_declared)
            if missing:
                state.messages.append(
                    f"{name}: {len(missing)} (operator, dtype) pairs it claims were never "
                    f"exercised: {'; '.join(missing)}"
                )
    if state.messages:
        raise ConformanceFailure("\n\n".join(state.messages))


def _chunks(cases: Sequence[CoverageCase]) -> Iterator[list[CoverageCase]]:
    by_dtype: dict[str, list[CoverageCase]] = {}
    for c in cases:
        by_dtype.setdefault(c.dtype, []).append(c)
    for group in by_dtype.values():
        n = -(-len(group) // BATCH)
        size = -(-len(group) // n)
        for i in range(0, len(group), size):
            yield group[i : i + size]


def _declared_unsupported(kit: Kit, executor: str, case: CoverageCase) -> str | None:
    caps = _lists.capabilities(executor)
    for declared in caps.unsupported_ops:
        if id_matches(declared.replace("::", "."), case.op):
            return f"{executor} declares {declared} unsupported"
    bad = {str(d).removeprefix("torch.") for d in caps.unsupported_dtypes}
    dtypes = {case.dtype} | {str(s.dtype).removeprefix("torch.") for s in case.ir.inputs}
    found = sorted(dtypes & bad)
    if found:
        return f"{executor} declares dtype {found[0]} unsupported"
    return None


def _build(kit: Kit, cases: list[CoverageCase]) -> _Batch | str:
    """The batch normalised, with the reference's results, or why it cannot be judged."""
    from torchexec.testing._programs import program_case

    ir = merge(cases)
    try:
        case = program_case(ir, "coverage", kit)
    except Exception as exc:
        return f"torchexec.normalize: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    case.reproduction = None  # failures are reproduced case by case
    kit.pending_dtypes = []
    try:
        expected, layouts = _execute(kit, case, kit.reference)
    except Exception as exc:
        return f"the reference raised: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return _Batch(cases, ir, case, expected, layouts)


def _execute(kit: Kit, case: Case, executor: str) -> tuple[Results, list[Layout]]:
    """Prepare and call ``case`` once: flat outputs then inputs after the call (copies), and
    the layout of each output."""
    inputs = case.make_inputs()
    prepared = torchexec.prepare(
        case.program, *inputs, executor=_lists.choice(executor),
        executor_parameters=kit.checker.parameters(case, executor),
    )  # fmt: skip
    torch.manual_seed(0)
    flat = pytree.tree_leaves(prepared(*inputs))
    layouts = [_layout(t, inputs) for t in flat]
    copies = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in [*flat, *inputs]]
    return copies, layouts


def _layout(value: Any, inputs: Sequence[Any]) -> Layout:
    if not isinstance(value, torch.Tensor):
        return (), -1
    strides = tuple(st for st, n in zip(value.stride(), value.shape, strict=True) if n > 1)
    if value.numel() == 0:
        return strides, -1
    ptr = value.untyped_storage().data_ptr()
    for j, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.numel() and x.untyped_storage().data_ptr() == ptr:
            return strides, j
    return strides, -1


def _layout_differs(got: Sequence[Layout], want: Sequence[Layout]) -> str | None:
    """How a bitwise executor's output layouts differ from the reference's, or ``None``."""
    for i, ((gs, ga), (ws, wa)) in enumerate(zip(got, want, strict=True)):
        if (ga >= 0) != (wa >= 0):
            what = "a view of its input" if wa >= 0 else "a new tensor"
            return f"output {i}: the reference returns {what}, the executor does not"
        if gs != ws:
            return f"output {i}: strides {list(gs)}, expected {list(ws)} (size-1 dims left out)"
    return None


def _halves(cases: list[CoverageCase]) -> list[list[CoverageCase]]:
    mid = len(cases) // 2
    return [cases[:mid], cases[mid:]]


def _run(state: _Pass, cases: list[CoverageCase], executors: list[str]) -> None:
    built = _build(state.kit, cases)
    if isinstance(built, str):
        if len(cases) == 1:
            for name in executors:
                _record(state, name, cases[0], "skipped", built)
            return
        for half in _halves(cases):
            _run(state, half, executors)
        return
    for c in cases:
        if id(c) not in state.counted:
            state.counted.add(id(c))
            state.kit.report.examples["coverage"] += 1
    for name in executors:
        _judge(state, built, name)


def _ids(executor: str, case: CoverageCase) -> list[str]:
    base = f"{executor}::coverage"
    return [base, f"{base}::{case.op}", f"{base}::{case.op}::{case.dtype}"]


def _judge(state: _Pass, batch: _Batch, executor: str) -> None:
    kit = state.kit
    if len(batch.cases) > 1:  # known failures run alone, so that they do not break a batch
        listed = [c for c in batch.cases if kit.checker.skips.match(_ids(executor, c))]
        if listed:
            for c in listed:
                _run(state, [c], [executor])
            rest = [c for c in batch.cases if all(c is not x for x in listed)]
            if rest:
                _run(state, rest, [executor])
            return
    unclaimed = _unclaimed(kit, batch, executor)
    if unclaimed:
        for i in sorted(unclaimed):
            why = f"{executor}'s supports() does not claim an operator of this call"
            _record(state, executor, batch.cases[i], "unsupported", why)
        rest = [c for i, c in enumerate(batch.cases) if i not in unclaimed]
        if rest:
            _run(state, rest, [executor])
        return
    kit.checker._note(batch.case, executor)
    try:
        actual, layouts = _execute(kit, batch.case, executor)
    except Exception as exc:
        error = exc
        if len(batch.cases) > 1:
            for half in _halves(batch.cases):
                _run(state, half, [executor])
            return
        if isinstance(error, torchexec.UnsupportedOperatorError):
            _record(state, executor, batch.cases[0], "unsupported", f"not claimed: {error}")
            return
        message = f"{type(error).__name__}: {error}"
        _record(state, executor, batch.cases[0], "raised", message)
        return
    n_out = len(batch.ir.outputs)
    out_at = in_at = 0
    bitwise = kit.checker.bitwise(executor)
    for c in batch.cases:
        k, m = len(c.ir.outputs), len(c.ir.inputs)
        got = actual[out_at : out_at + k] + actual[n_out + in_at : n_out + in_at + m]
        want = (
            batch.expected[out_at : out_at + k] + batch.expected[n_out + in_at : n_out + in_at + m]
        )
        out_at, in_at = out_at + k, in_at + m
        cmp = compare_outputs(
            got, want, bitwise=bitwise, tolerances=kit.checker.tolerances, operators=[c.op]
        )
        if cmp.ok and bitwise:
            at = out_at - k
            differs = _layout_differs(layouts[at : at + k], batch.layouts[at : at + k])
            if differs is not None:
                cmp = Comparison(False, None, differs)
        if cmp.ok:
            _record(state, executor, c, "passed")
        else:
            what = cmp.reason
            if cmp.output is not None and cmp.output >= k:
                what = f"input {cmp.output - k} after the call: " + cmp.reason.split(": ", 1)[-1]
            _record(state, executor, c, "mismatched", what, cmp)


def _unclaimed(kit: Kit, batch: _Batch, executor: str) -> set[int]:
    """The cases of ``batch`` holding a node ``executor``'s ``supports()`` does not claim."""
    if len(_lists.members(executor)) != 1:
        return set()
    impl = torchexec.get_executor(executor)
    supports = getattr(impl, "supports", None)
    if supports is None:
        return set()
    options = impl.validate_options(kit.checker.parameters(batch.case, executor))
    graph = batch.case.program.graph_module().graph
    outputs = pytree.tree_leaves(graph.output_node().args[0])
    if len(outputs) != len(batch.ir.outputs):
        return set()
    out: set[int] = set()
    at = 0
    for i, c in enumerate(batch.cases):
        k = len(c.ir.outputs)
        if not all(_claimed(supports, options, node) for node in _ancestors(outputs[at : at + k])):
            out.add(i)
        at += k
    return out


def _claimed(supports: Any, options: Any, node: torch.fx.Node) -> bool:
    if node.op != "call_function" or node.target is operator.getitem:
        return True
    try:
        return bool(supports(node, options))
    except Exception:
        return False


def _ancestors(nodes: Sequence[Any]) -> list[torch.fx.Node]:
    seen: dict[torch.fx.Node, None] = {}
    todo = [n for n in nodes if isinstance(n, torch.fx.Node)]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen[n] = None
        todo.extend(n.all_input_nodes)
    return list(seen)


def _record(
    state: _Pass,
    executor: str,
    case: CoverageCase,
    status: str,
    message: str = "",
    cmp: Comparison | None = None,
) -> None:
    """Count one case's outcome on ``executor``; a failure gets a reproduction."""
    kit = state.kit
    section = kit.report.executor(executor)
    cell = section.cell(case.op, case.dtype)
    if status == "skipped":
        cell.skipped += 1
        cell.reason = message
        return
    if status in ("mismatched", "raised"):
        entry = kit.checker.skips.match(_ids(executor, case))
        if entry is not None:
            kit.checker.skips.mark_used(entry)
            section.xfails[(entry.prefix, entry.reason, entry.source)] += 1
            status, message = "xfailed", entry.reason
    section.tier("coverage").add(status)
    if status == "unsupported":
        cell.unsupported += 1
        cell.reason = message
        return
    cell.exercised += 1
    if status == "passed":
        cell.passed += 1
        return
    if status == "xfailed":
        cell.xfailed += 1
        cell.reason = message
        return
    cell.failed += 1
    _failure(state, executor, case, status, message, cmp)


def _failure(
    state: _Pass,
    executor: str,
    case: CoverageCase,
    status: str,
    message: str,
    cmp: Comparison | None,
) -> None:
    kit = state.kit
    exact = kit.checker.bitwise(executor)
    tol = kit.checker.tolerances.for_dtype(getattr(torch, case.dtype), [case.op])
    header = [
        f"torchexec conformance: {executor!r} against {kit.reference!r} (coverage pass)",
        f"{case.label}: {status}: {message}"[:300],
    ]
    code = reproduction(
        case.ir, executor, kit.reference, exact=exact, rtol=tol.rtol, atol=tol.atol, header=header
    )
    inputs = input_values(case.ir)
    failure = Failure(
        id=f"{executor}::coverage::{case.op}::{case.dtype}",
        executor=executor,
        tier="coverage",
        status=status,
        operator=case.op,
        message=f"{case.variant}: {message}",
        max_abs_error=cmp.max_abs if cmp is not None else None,
        max_rel_error=cmp.max_rel if cmp is not None else None,
        operators=[case.op],
        seed="deterministic (coverage pass: the same cases every run)",
        reproduction=code,
        dtype=case.dtype,
        inputs=inputs,
    )
    kit.add_failure(failure)
    state.messages.append(
        f"executor {executor!r} {status} on operator {case.op} on dtype {case.dtype} "
        f"({case.variant}): {message}\ninputs:\n"
        + "\n".join(f"  {x}" for x in inputs)
        + f"\nminimal reproduction:\n{code}"
    )
