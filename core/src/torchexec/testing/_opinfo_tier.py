"""Running one OpInfo's samples on every executor and counting what happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from torchexec.testing import opinfo
from torchexec.testing._programs import ConformanceFailure
from torchexec.testing._quiet import quiet
from torchexec.testing._values import dtype_name
from torchexec.testing.compare import compare_outputs
from torchexec.testing.runner import Case

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["run_opinfo"]

Results = list[list[object]]


def run_opinfo(kit: Kit, name: str) -> None:
    """Run up to ``kit.opinfo_samples`` float32 samples of OpInfo ``name``, and up to
    ``kit.opinfo_dtype_samples`` samples on each other dtype it supports on CPU.

    Counts (``report.opinfo``): ``samples`` drawn, ``traced`` by make_fx, ``exported`` by
    ``torchexec.normalize``, ``reference_failed``, ``nondeterministic`` (the reference disagrees
    with itself, e.g. uninitialised memory), ``run``. Per executor: run, agreed, mismatched,
    raised, unsupported, xfailed.

    Raises:
        ConformanceFailure: listing every sample an executor failed (not xfailed).
    """
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    kit.tiers_run.add("opinfo")
    counts = kit.report.opinfo
    messages: list[str] = []
    traced_any = False
    plan = [(d, kit.opinfo_samples if d == torch.float32 else kit.opinfo_dtype_samples)
            for d in opinfo.opinfo_dtypes(name)]  # fmt: skip
    with quiet():
        for sample in (s for d, n in plan if n > 0 for s in opinfo.samples(name, n, d)):
            counts["samples"] += 1
            kit.known_ids.update(f"{e}::opinfo::{sample.case_id}" for e in kit.executors)
            traced_any = traced_any or sample.graph_module is not None
            runnable = _runnable_case(kit, name, sample)
            if runnable is None:
                continue
            counts["run"] += 1
            case, expected = runnable
            for executor in kit.executors:
                message = _check_on(kit, name, case, expected, executor, sample.dtype)
                if message is not None:
                    messages.append(message)
    if traced_any:
        counts["opinfos"] += 1
    if messages:
        raise ConformanceFailure("\n\n".join(messages))


def _runnable_case(kit: Kit, name: str, sample: opinfo.OpInfoSample) -> tuple[Case, Results] | None:
    """The sample as a case with the reference's results, or ``None`` when it cannot be judged
    (not traced, not exported, the reference raises or disagrees with itself): counted, and the
    reason kept in ``report.opinfo_skipped``."""
    counts, skipped = kit.report.opinfo, kit.report.opinfo_skipped
    if sample.graph_module is None:
        counts["not_traced"] += 1
        skipped[sample.case_id] = sample.error[:200]
        return None
    counts["traced"] += 1
    try:
        case = Case.of(
            sample.graph_module, sample.make_inputs, case_id=sample.case_id, tier="opinfo"
        )
    except Exception as exc:
        counts["not_exported"] += 1
        skipped[sample.case_id] = f"normalize: {exc}".splitlines()[0][:200]
        return None
    counts["exported"] += 1

    def repro(executor: str, _cmp: object, index: int = sample.index) -> str:
        exact = kit.checker.bitwise(executor)
        return opinfo.reproduction(
            name, index, executor, kit.reference, exact=exact, dtype=sample.dtype
        )

    case.reproduction = repro
    expected = kit.reference_or_none(case)
    if expected is None:
        counts["reference_failed"] += 1
        skipped[sample.case_id] = "the reference raised"
        return None
    again = kit.reference_or_none(case)
    if again is None or not _agrees(again, expected):
        counts["nondeterministic"] += 1
        skipped[sample.case_id] = "the reference disagrees with itself"
        return None
    return case, expected


def _agrees(a: Results, b: Results) -> bool:
    return all(compare_outputs(x, y).ok for x, y in zip(a, b, strict=True))


def _check_on(
    kit: Kit, name: str, case: Case, expected: Results, executor: str, dtype: torch.dtype
) -> str | None:
    """Judge ``case`` on ``executor`` and count the outcome; a failure is recorded and its
    message (with the reproduction) returned."""
    o = kit.checker.check(case, executor, expected)
    section = kit.report.executor(executor)
    section.opinfo.run += 1
    attr = "agreed" if o.status == "passed" else o.status
    setattr(section.opinfo, attr, getattr(section.opinfo, attr) + 1)
    if o.skip is not None:
        section.xfails[(o.skip.prefix, o.skip.reason, o.skip.source)] += 1
    if not o.failed:
        return None
    code = case.reproduction(executor, o.comparison) if case.reproduction else ""
    failure = o.failure(f"opinfo::{case.case_id}", "opinfo", name, case.operators, code)
    failure.dtype = dtype_name(dtype)
    kit.add_failure(failure)
    return (
        f"{failure.id} {o.status}: {o.message}\n"
        f"aten operators: {', '.join(case.operators)}\nreproduction:\n{code}"
    )
