"""Bad programs: every mutated program is rejected at load with ``ProgramError``, or loads, runs
and agrees with the reference bit for bit; never another exception, a crash or a hang.

Four loaders, each fed 2,000 seeded mutants of a small corpus of valid programs (and 150 more
chosen by hypothesis, which shrinks any counterexample): ExportedProgram JSON and ``.pt2``
archives (the ``proxy`` executor), AOTInductor extern-kernel JSON (``ExternKernelProxy``) and
the torchbind engine's encoded plan. Cases run in worker subprocesses, so a crash or a hang is
counted and named (see ``fuzzing/``). ``benchmarks/fuzz_long.py`` runs more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzing.cases import LOADERS
from fuzzing.corpus import shared_corpus_dir
from fuzzing.harness import LoaderRun, run_hypothesis, run_loader, summary_table
from fuzzing.outcome import Outcome

CI_CASES = 2000
"""Seeded mutants per loader in CI (``benchmarks/fuzz_long.py --programs N`` runs more)."""
HYPOTHESIS_EXAMPLES = 150
JOBS = 2


@pytest.fixture(scope="module")
def corpus_dir() -> Path:
    """The valid programs, built once per test session."""
    return shared_corpus_dir()


def _explain(bad: list[Outcome]) -> str:
    lines = [f"{len(bad)} cases break the property:"]
    for o in bad[:20]:
        lines.append(
            f"- {o.loader} case {o.case} ({o.program}): {o.outcome} in {o.phase or '?'}: "
            f"{o.detail}\n  mutation: {'; '.join(o.mutation) or '?'}\n  reproduce: "
            f".venv/bin/python -m fuzzing.worker --loader {o.loader} "
            f"--cases {o.case} --human"
        )
    return "\n".join(lines)


def _check_mix(run: LoaderRun, total: int) -> None:
    """Both sides of the property are exercised: a fuzzer whose mutants were all rejected (or
    all harmless) would prove nothing."""
    counts = run.counts()
    assert counts["agreed"] >= total // 10, counts
    assert counts["rejected"] >= total // 10, counts


@pytest.mark.parametrize("loader", LOADERS)
def test_seeded_mutants_are_rejected_or_agree(loader: str, corpus_dir: Path) -> None:
    run = run_loader(loader, CI_CASES, corpus_dir, jobs=JOBS)
    print("\n" + summary_table([run]))
    assert [o.case for o in run.outcomes] == list(range(CI_CASES))
    assert not run.bad(), _explain(run.bad())
    _check_mix(run, CI_CASES)


@pytest.mark.parametrize("loader", LOADERS)
def test_hypothesis_mutants_are_rejected_or_agree(loader: str, corpus_dir: Path) -> None:
    run = run_hypothesis(loader, HYPOTHESIS_EXAMPLES, corpus_dir)
    print("\n" + summary_table([run]))
    assert not run.falsified, f"shrunk counterexample: {run.falsified}\n" + _explain(run.bad())
    assert not run.bad(), _explain(run.bad())
    # hypothesis discards the odd example that overruns its draw budget
    assert len(run.outcomes) >= HYPOTHESIS_EXAMPLES * 9 // 10
    _check_mix(run, HYPOTHESIS_EXAMPLES)
