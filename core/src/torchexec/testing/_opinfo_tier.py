"""Running one OpInfo's samples on every executor and counting what happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchexec.testing import opinfo
from torchexec.testing._programs import ConformanceFailure
from torchexec.testing.compare import compare_outputs
from torchexec.testing.report import Failure
from torchexec.testing.runner import Case

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["run_opinfo"]


def _agrees(a: list[list[object]], b: list[list[object]]) -> bool:
    return all(compare_outputs(x, y).ok for x, y in zip(a, b, strict=True))


def run_opinfo(kit: Kit, name: str) -> None:
    """Run up to ``kit.opinfo_samples`` samples of OpInfo ``name``.

    Counts (``report.opinfo``): ``samples`` drawn, ``traced`` by make_fx, ``exported`` by
    ``torchexec.normalize``, ``reference_failed``, ``nondeterministic`` (the reference disagrees
    with itself, e.g. uninitialised memory), ``run``. Per executor: run, agreed, mismatched,
    raised, unsupported, xfailed.

    Raises:
        ConformanceFailure: listing every sample an executor failed (not xfailed).
    """
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec.testing._kit import quiet

    counts = kit.report.opinfo
    messages: list[str] = []
    traced_any = False
    with quiet():
        for s in opinfo.samples(name, kit.opinfo_samples):
            counts["samples"] += 1
            kit.known_ids.update(f"{e}::opinfo::{s.case_id}" for e in kit.executors)
            if s.graph_module is None:
                counts["not_traced"] += 1
                kit.report.opinfo_skipped[s.case_id] = s.error[:200]
                continue
            counts["traced"] += 1
            traced_any = True
            try:
                case = Case.of(s.graph_module, s.make_inputs, case_id=s.case_id, tier="opinfo")
            except Exception as exc:
                counts["not_exported"] += 1
                kit.report.opinfo_skipped[s.case_id] = f"normalize: {exc}".splitlines()[0][:200]
                continue
            counts["exported"] += 1
            index = s.index

            def repro(executor: str, _cmp: object, index: int = index) -> str:
                return opinfo.reproduction(
                    name, index, executor, kit.reference, exact=kit.checker.bitwise(executor)
                )

            case.reproduction = repro
            expected = kit.reference_or_none(case)
            if expected is None:
                counts["reference_failed"] += 1
                kit.report.opinfo_skipped[s.case_id] = "the reference raised"
                continue
            again = kit.reference_or_none(case)
            if again is None or not _agrees(again, expected):
                counts["nondeterministic"] += 1
                kit.report.opinfo_skipped[s.case_id] = "the reference disagrees with itself"
                continue
            counts["run"] += 1
            for executor in kit.executors:
                o = kit.checker.check(case, executor, expected)
                section = kit.report.executor(executor)
                section.opinfo.run += 1
                attr = "agreed" if o.status == "passed" else o.status
                setattr(section.opinfo, attr, getattr(section.opinfo, attr) + 1)
                if o.skip is not None:
                    section.xfails[(o.skip.prefix, o.skip.reason, o.skip.source)] += 1
                if o.failed:
                    cmp = o.comparison
                    code = repro(executor, cmp)
                    kit.add_failure(
                        Failure(
                            id=f"{executor}::opinfo::{s.case_id}",
                            executor=executor,
                            tier="opinfo",
                            status=o.status,
                            operator=name,
                            message=o.message,
                            max_abs_error=cmp.max_abs if cmp is not None else None,
                            max_rel_error=cmp.max_rel if cmp is not None else None,
                            operators=list(case.operators),
                            reproduction=code,
                        )
                    )
                    messages.append(
                        f"{executor}::opinfo::{s.case_id} {o.status}: {o.message}\n"
                        f"aten operators: {', '.join(case.operators)}\nreproduction:\n{code}"
                    )
    if traced_any:
        counts["opinfos"] += 1
    if messages:
        raise ConformanceFailure("\n\n".join(messages))
