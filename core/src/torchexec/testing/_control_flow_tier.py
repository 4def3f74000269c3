"""The control-flow tier: generated programs with higher-order operators on every executor.

Programs come from :func:`~torchexec.testing._control_flow.control_flow_programs`; every kind
of :data:`~torchexec.testing._control_flow.KINDS` runs in every run (a kind the main draw missed
gets two programs of its own). An executor that does not run a higher-order operator says so:
``higher_order::cond`` (or ``higher_order::while_loop``, ...) in ``Capabilities.unsupported_ops``,
or ``supports()`` not claiming the node; the kit then counts the program as *unsupported*.
Programs are small, so they are not shrunk: a failure is recorded with its whole program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from hypothesis import HealthCheck, Phase, given, reject, seed, settings

from torchexec.testing._control_flow import KINDS, ControlFlowProgram, control_flow_programs
from torchexec.testing._quiet import quiet
from torchexec.testing.runner import Case, Outcome, program_operators

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["TIER", "run_control_flow_tier"]

TIER = "control_flow"


def examples(kit: Kit) -> int:
    """``--max-examples`` / 10 (at least 5), else 10 (``quick``) or 40 (``ci``)."""
    if kit.options.max_examples:
        return max(5, kit.options.max_examples // 10)
    return 40 if kit.profile.derandomize else 10


def run_control_flow_tier(kit: Kit) -> None:
    """Run the tier on every executor of ``kit``.

    Raises:
        ConformanceFailure: listing every program an executor failed.
    """
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec.testing._programs import ConformanceFailure

    kit.tiers_run.add(TIER)
    messages: list[str] = []
    seen: set[str] = set()

    def body(program: ControlFlowProgram) -> None:
        with quiet():
            try:
                case = _case(kit, program)
            except Exception as exc:
                kit.report.warnings.append(f"{TIER}: a program failed to export: {exc}"[:300])
                reject()
            expected = kit.reference_or_none(case)
            if expected is None:
                reject()
            outcomes = {name: kit.checker.check(case, name, expected) for name in kit.executors}
        seen.add(program.kind)
        kit.report.examples[TIER] += 1
        kit.report.operators.update(program.operators)
        kit.report.graph_operators.update(program_operators(case.program))
        kit.known_ids.update(i for name in kit.executors for i in case.ids(name))
        kit.record(TIER, dict(outcomes))
        messages.extend(_failure(kit, program, case, o) for o in outcomes.values() if o.failed)

    def draw(count: int, kinds: tuple[str, ...]) -> None:
        test = settings(
            settings.get_profile(f"torchexec-{kit.options.profile}"),
            max_examples=count,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(control_flow_programs(kinds=kinds))(body))
        if not kit.profile.derandomize:
            test = seed(kit.seed)(test)
        test()

    draw(examples(kit), KINDS)
    for kind in KINDS:
        if kind not in seen:
            draw(2, (kind,))
    if messages:
        raise ConformanceFailure("\n\n".join(messages))


def _case(kit: Kit, program: ControlFlowProgram) -> Case:
    case = Case.of(
        program.exported(), program.make_inputs, case_id=TIER, tier=TIER,
        operators=program.operators,
    )  # fmt: skip

    def repro(executor: str, _cmp: object) -> str:
        exact = kit.checker.bitwise(executor)
        tol = kit.checker.tolerances.for_dtype(torch.float32, program.operators)
        compare = "rtol=0, atol=0" if exact else f"rtol={tol.rtol!r}, atol={tol.atol!r}"
        return "\n".join([
            f"# torchexec conformance: {executor!r} against {kit.reference!r} ({TIER} tier)",
            program.source.rstrip(),
            "",
            "",
            "import torchexec",
            "",
            f"program = {program.export_code()}",
            f'expected = torchexec.execute(program, *make_inputs(), executor="{kit.reference}")',
            f'actual = torchexec.execute(program, *make_inputs(), executor="{executor}")',
            f"torch.testing.assert_close(actual, expected, {compare}, equal_nan=True)",
        ]) + "\n"  # fmt: skip

    case.reproduction = repro
    return case


def _failure(kit: Kit, program: ControlFlowProgram, case: Case, o: Outcome) -> str:
    operator = program.operators[-1]
    code = case.reproduction(o.executor, o.comparison) if case.reproduction else ""
    failure = o.failure(f"{TIER}::{operator}", TIER, operator, program.operators, code,
                        kit.seed_text)  # fmt: skip
    kit.add_failure(failure)
    return (
        f"executor {o.executor!r} {o.status} on {operator} ({program.kind} program): "
        f"{o.message}\nseed: {kit.seed_text}\nreproduction:\n{code}"
    )
