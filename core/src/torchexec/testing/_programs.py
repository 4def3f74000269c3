"""The generated and torchbind tiers: hypothesis programs, each run on every executor.

A program is exported once and run on the reference, then on each executor. An executor that
disagrees fails the hypothesis test with an exception type of its own (one per executor and
outcome), so hypothesis shrinks each executor's failure separately; on the final replay of a
shrunk program the kit finds the first operator whose result differs and records the failure
with the program as Python code.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from hypothesis import given, reject, seed as hypothesis_seed, settings, strategies as st
from hypothesis.control import current_build_context

import torchexec
from torchexec.testing._ir import ProgramIR, reproduction
from torchexec.testing._quiet import quiet
from torchexec.testing.catalog import CATALOG
from torchexec.testing.runner import Case, Outcome, program_operators
from torchexec.testing.strategies import GeneratedProgram, programs, torchbind_programs

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["ConformanceFailure", "run_program_tier"]


class ConformanceFailure(AssertionError):
    """An executor disagrees with the reference (subclassed per executor and outcome)."""


_TYPES: dict[tuple[str, str], type[ConformanceFailure]] = {}


def failure_type(executor: str, status: str) -> type[ConformanceFailure]:
    """A distinct exception type per (executor, status), so hypothesis tells them apart."""
    key = (executor, status)
    if key not in _TYPES:
        name = f"{status.capitalize()}On_{executor}"
        _TYPES[key] = type(name, (ConformanceFailure,), {"__module__": __name__})
    return _TYPES[key]


def program_case(ir: ProgramIR, tier: str, kit: Kit) -> Case:
    """Normalise ``ir`` once into a :class:`Case` with a reproduction for failures."""
    case = Case.of(
        ir.graph_module(), ir.make_inputs, case_id=tier, tier=tier, operators=ir.operators,
        calls=2 if ir.stateful else 1,
    )  # fmt: skip
    if ir.stateful:
        case.make_program = lambda: torchexec.normalize(ir.graph_module(), ir.make_inputs())

    def repro(executor: str, _cmp: object) -> str:
        exact = kit.checker.bitwise(executor)
        tol = kit.checker.tolerances.for_dtype(torch.float32, ir.operators)
        return reproduction(
            ir, executor, kit.reference, exact=exact, rtol=tol.rtol, atol=tol.atol,
            header=[f"torchexec conformance: {executor!r} against {kit.reference!r} ({tier} tier)"],
        )  # fmt: skip

    case.reproduction = repro
    kit.pending_dtypes = ir.operator_dtypes
    return case


def localize(kit: Kit, ir: ProgramIR, executor: str, tier: str) -> int | None:
    """The index of the first call whose result differs on ``executor`` (``None`` if no
    prefix of the program fails on its own)."""
    for k in range(len(ir.calls)):
        if _fails(kit, ir.prefix(k), executor, tier) is not None:
            return k
    return None


def _fails(kit: Kit, ir: ProgramIR, executor: str, tier: str) -> tuple[Case, Outcome] | None:
    try:
        case = program_case(ir, tier, kit)
        expected = kit.checker.reference_results(case)
    except Exception:
        return None
    outcome = kit.checker.judge(case, executor, expected)
    return (case, outcome) if outcome.failed else None


def minimize(
    kit: Kit, ir: ProgramIR, case: Case, outcome: Outcome, tier: str
) -> tuple[ProgramIR, Case, Outcome, str | None]:
    """The smallest failing program among: the first failing call alone (its arguments given
    as the values they had), that call with what it depends on, the program up to it."""
    k = localize(kit, ir, outcome.executor, tier)
    if k is None:
        return ir, case, outcome, _operator_of(ir, outcome)
    op = ir.calls[k].op
    try:
        env = ir.evaluate()
        alone = ir.isolated(k, env)
    except Exception:
        alone = None
    for candidate in (alone, ir.sliced(k), ir.prefix(k)):
        if candidate is None:
            continue
        found = _fails(kit, candidate, outcome.executor, tier)
        if found is not None:
            return candidate, found[0], found[1], op
    return ir, case, outcome, op


def _operator_of(ir: ProgramIR, outcome: Outcome) -> str | None:
    cmp = outcome.comparison
    if cmp is not None and cmp.output is not None and cmp.output < len(ir.outputs):
        call = ir.call_of(ir.outputs[cmp.output])
        if call is not None:
            return call.op
    return ir.calls[-1].op if ir.calls else None


def _record_failure(kit: Kit, program: GeneratedProgram, case: Case, o: Outcome, tier: str) -> str:
    with torch.no_grad():
        ir, small_case, small, operator = minimize(kit, program.ir, case, o, tier)
    code = small_case.reproduction(o.executor, small.comparison) if small_case.reproduction else ""
    cmp = small.comparison
    case_id = f"{tier}::{operator}"
    kit.add_failure(small.failure(case_id, tier, operator, ir.operators, code, kit.seed_text))
    errors = ""
    if cmp is not None:
        errors = f" (max abs error {cmp.max_abs:.3g}, max rel error {cmp.max_rel:.3g})"
    return (
        f"executor {o.executor!r} {small.status} on operator {operator}{errors}: {small.message}\n"
        f"seed: {kit.seed_text}\n"
        f"minimal reproduction ({len(ir.calls)} of {len(program.ir.calls)} calls):\n{code}"
    )


def _strategy(tier: str, operators: list[Any] | None = None) -> st.SearchStrategy[GeneratedProgram]:
    if tier == "torchbind":
        return torchbind_programs()
    return programs(operators=operators) if operators else programs()


def _run(
    kit: Kit,
    tier: str,
    strategy: st.SearchStrategy[GeneratedProgram],
    n: int,
    executors: list[str],
) -> list[str]:
    """One hypothesis run over ``executors``; returns the executors that failed."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    state: dict[str, Any] = {"failing": False, "since": 0.0, "focus": list(executors)}
    failed_names: list[str] = []

    def conformance(program: GeneratedProgram) -> None:
        __tracebackhide__ = True  # pytest shows the failure, not the kit
        final = current_build_context().is_final
        # Shrinking: only the executors that failed, and only for a while; past the budget every
        # candidate "passes", hypothesis replays the smallest failure found so far, and the
        # kit's own minimiser takes it from there.
        shrinking = state["failing"] and not final
        if shrinking and time.monotonic() - state["since"] > kit.profile.shrink_seconds:
            return
        names = state["focus"]
        with quiet():
            try:
                case = program_case(program.ir, tier, kit)
            except torchexec.ProgramError as exc:
                kit.report.warnings.append(f"a generated program failed to export: {exc}"[:300])
                reject()
            expected = kit.reference_or_none(case)
            if expected is None:
                reject()
            outcomes = {name: kit.checker.check(case, name, expected) for name in names}
        failed = [o for o in outcomes.values() if o.failed]
        if not state["failing"]:
            kit.report.examples[tier] += 1
            kit.report.operators.update(program.operators)
            kit.report.graph_operators.update(program_operators(case.program))
            kit.record(tier, dict(outcomes))
        if not failed:
            return
        if not state["failing"]:
            state.update(failing=True, since=time.monotonic(), focus=[o.executor for o in failed])
        first = failed[0]
        if not final:
            raise failure_type(first.executor, first.status)(first.message)
        with quiet():
            messages = [_record_failure(kit, program, case, o, tier) for o in failed]
        failed_names.extend(o.executor for o in failed)
        raise failure_type(first.executor, first.status)("\n\n".join(messages))

    test = given(strategy)(conformance)
    test = settings(settings.get_profile(f"torchexec-{kit.options.profile}"), max_examples=n)(test)
    if not kit.profile.derandomize:
        test = hypothesis_seed(kit.seed)(test)
    try:
        test()
    except BaseException:
        if not failed_names:
            raise
        remaining = [e for e in executors if e not in failed_names]
        if remaining:  # look for the other executors' failures too
            try:
                _run(kit, tier, strategy, n, remaining)
            except BaseException as more:
                kit.report.warnings.append(
                    f"{tier}: after {', '.join(dict.fromkeys(failed_names))} failed, "
                    f"{type(more).__name__} for {', '.join(remaining)} (see the failures)"
                )
        raise
    return failed_names


def run_program_tier(kit: Kit, tier: str) -> None:
    """Run ``tier`` (``generated`` or ``torchbind``) on every executor of ``kit``."""
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    kit.tiers_run.add(tier)
    executors = list(kit.executors)
    if tier == "torchbind":
        _run(kit, tier, _strategy(tier), kit.torchbind_examples, executors)
        return
    _run(kit, tier, _strategy(tier), kit.max_examples, executors)
    # Coverage: every catalog operator runs in every run, even where the main draw missed one
    # (a few short programs of that operator alone); not when fewer examples were asked for.
    if kit.max_examples < 25:
        return
    for op in CATALOG:
        if kit.report.operators.get(op.name, 0) == 0:
            _run(kit, tier, programs(operators=[op], max_nodes=3), 3, executors)
