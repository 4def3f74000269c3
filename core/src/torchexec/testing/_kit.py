"""``Kit``: the state of one conformance run (options, checker, report) and its tiers."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

import torchexec
from torchexec.testing import _lists, contract
from torchexec.testing._quiet import quiet
from torchexec.testing.catalog import CATALOG
from torchexec.testing.compare import Tolerances
from torchexec.testing.report import ExecutorReport, Failure, Report
from torchexec.testing.runner import Case, Checker, Outcome, ReferenceFailure
from torchexec.testing.skips import SkipEntry, SkipList

__all__ = ["PROFILES", "Kit", "KitOptions", "Profile"]


@dataclass(frozen=True)
class Profile:
    """How much a run generates.

    Attributes:
        max_examples: generated programs (the generated tier).
        torchbind_examples: programs with TorchBind calls.
        opinfo_samples: float32 samples per OpInfo.
        opinfo_dtype_samples: samples per OpInfo on each other dtype it supports on CPU.
        derandomize: the same examples every run (no database, no random seed).
        shrink_seconds: how long hypothesis may shrink a failing program before the kit's own
            minimiser (first failing call, alone) takes over.
        coverage_variants: variants per (operator, dtype) in the coverage pass (0: no pass).
        require_coverage: fail when an (operator, dtype) the executor claims was never run.
    """

    max_examples: int
    torchbind_examples: int
    opinfo_samples: int
    derandomize: bool
    opinfo_dtype_samples: int = 0
    shrink_seconds: float = 30.0
    coverage_variants: int = 1
    require_coverage: bool = False


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        max_examples=25,
        torchbind_examples=8,
        opinfo_samples=1,
        derandomize=False,
        opinfo_dtype_samples=0,
        shrink_seconds=10,
        coverage_variants=1,
    ),
    "ci": Profile(
        max_examples=300,
        torchbind_examples=40,
        opinfo_samples=2,
        derandomize=True,
        opinfo_dtype_samples=1,
        shrink_seconds=30,
        coverage_variants=4,
        require_coverage=True,
    ),
}
"""``quick`` is the default; ``ci`` is derandomized and larger."""


_EVERY_SAMPLE = 1_000_000


@dataclass
class KitOptions:
    """The options of a run (the pytest options map onto these)."""

    executors: list[str]
    reference: str = "aten"
    profile: str = "quick"
    max_examples: int | None = None
    opinfo_samples: int | None = None
    opinfo_dtype_samples: int | None = None
    opinfo_full: bool = False
    coverage_variants: int | None = None
    seed: int | None = None
    report: Path | None = None
    skips: list[Path] = field(default_factory=list)
    tolerances: Path | None = None
    executor_options: dict[str, dict[str, object]] = field(default_factory=dict)
    distributed: int = 0
    """Ranks of the distributed tier (programs with collectives on gloo); 0 turns it off."""
    distributed_setup: list[str] = field(default_factory=list)
    """Modules each rank process imports first (ones that register executors in-process)."""
    distributed_timeout: float | None = None
    """Seconds the ranks of the distributed tier may take in all (default: 120 + 15 per
    program); a collective waits at most half of it, and never more than a minute."""
    worker: str | None = None
    """The pytest-xdist worker id (``gw0``...) when the run is sharded: the crash journal is then
    one file per worker."""


def _hypothesis_settings(profile: str, p: Profile) -> None:
    from hypothesis import HealthCheck, Phase, settings

    settings.register_profile(
        f"torchexec-{profile}",
        max_examples=p.max_examples,
        derandomize=p.derandomize,
        database=None if p.derandomize else settings().database,
        deadline=None,
        print_blob=False,  # @reproduce_failure cannot decorate the kit's inner test: see the seed
        # no "explain" phase: it replays a failure many times under coverage tracing, slow for
        # programs that are exported and run on several executors; the kit minimises instead
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


for _name, _p in PROFILES.items():
    _hypothesis_settings(_name, _p)


class Kit:
    """One conformance run: options, the checker, the report, and the tiers."""

    def __init__(self, options: KitOptions) -> None:
        if options.profile not in PROFILES:
            raise ValueError(f"unknown profile {options.profile!r}; known: {sorted(PROFILES)}")
        self.options = options
        self.profile = PROFILES[options.profile]
        self.executors = list(dict.fromkeys(options.executors))
        self.reference = options.reference
        self.max_examples = options.max_examples or self.profile.max_examples
        self.torchbind_examples = (
            max(4, options.max_examples * 2 // 15)
            if options.max_examples
            else self.profile.torchbind_examples
        )
        self.opinfo_samples = (
            self.profile.opinfo_samples
            if options.opinfo_samples is None
            else options.opinfo_samples
        )
        self.opinfo_dtype_samples = (
            self.profile.opinfo_dtype_samples
            if options.opinfo_dtype_samples is None
            else options.opinfo_dtype_samples
        )
        if options.opinfo_full:  # every sample of every dtype
            self.opinfo_samples = self.opinfo_dtype_samples = _EVERY_SAMPLE
        self.coverage_variants = (
            self.profile.coverage_variants
            if options.coverage_variants is None
            else options.coverage_variants
        )
        self.seed = options.seed if options.seed is not None else random.randrange(2**32)
        tolerances = Tolerances.shipped()
        if options.tolerances is not None:
            tolerances = tolerances.merged(Tolerances.load(options.tolerances))
        self.skips = SkipList.load(options.skips)
        journal = ".journal" if options.worker is None else f".{options.worker}.journal"
        self.journal = None if options.report is None else options.report.with_suffix(journal)
        self.report = Report(reference=self.reference, profile=options.profile, seed=self.seed_text)
        self.report.versions = {"torch": torch.__version__, "torchexec": torchexec.__version__}
        self.report.catalog = [op.name for op in CATALOG]
        self.tiers_run: set[str] = set()
        self.pending_dtypes: list[tuple[str, str]] = []
        self.known_ids: set[str] = set()
        self._checker: Checker | None = None
        self._tolerances = tolerances
        infos = {i.name: i for i in torchexec.list_executors()}
        for name in self.executors:
            found = [infos[m] for m in _lists.members(name) if m in infos]
            caps = _lists.capabilities(name) if len(found) == len(_lists.members(name)) else None
            self.report.executors[name] = ExecutorReport(
                name=name,
                bitwise=bool(caps.bitwise) if caps is not None else True,
                distribution=" + ".join(f"{i.distribution} {i.version}".strip() for i in found),
                capabilities=caps.as_dict() if caps is not None else {},
            )

    @property
    def seed_text(self) -> str:
        """How to get the same examples again."""
        if self.profile.derandomize:
            return f"derandomized ({self.options.profile} profile: the same examples every run)"
        return f"{self.seed} (rerun with --hypothesis-seed={self.seed})"

    @property
    def checker(self) -> Checker:
        """The checker (loads the executors on first use, so errors surface in a test)."""
        if self._checker is None:
            torchexec.get_executor(self.reference)
            self._checker = Checker(
                self.executors,
                self.reference,
                tolerances=self._tolerances,
                skips=self.skips,
                journal=self.journal,
                options=self.options.executor_options,
            )
        return self._checker

    # --- recording --------------------------------------------------------------------------

    def record(self, tier: str, outcomes: Mapping[str, Outcome]) -> None:
        """Count one example's outcomes (and the calls of the program last made into a case,
        ``pending_dtypes``, in each executor's coverage per (operator, dtype))."""
        dtypes, self.pending_dtypes = self.pending_dtypes, []
        for name, o in outcomes.items():
            if o.status != "unsupported":
                section = self.report.executor(name)
                for op, dtype in dtypes:
                    cell = section.cell(op, dtype)
                    cell.exercised += 1
                    cell.passed += o.status == "passed"
            self.report.executor(name).tier(tier).add(o.status)
            if o.skip is not None:
                key = (o.skip.prefix, o.skip.reason, o.skip.source)
                self.report.executor(name).xfails[key] += 1

    def add_failure(self, failure: Failure) -> None:
        """Add a failure to its executor's section."""
        self.report.executor(failure.executor).failures.append(failure)

    # --- tiers (the generated, torchbind and opinfo tiers are in _programs and _opinfo_tier) --

    def run_contract(self, executor: str, which: str) -> str | None:
        """Run one contract check; returns the skips reason if it is a listed failure."""
        __tracebackhide__ = True  # pytest shows the failure, not the kit
        self.tiers_run.add("contract")
        cid = f"{executor}::contract::{which}"
        try:
            with quiet():
                contract.check(executor, which)
        except Exception as exc:
            entry = self.skips.match([cid])
            message = f"{type(exc).__name__}: {exc}"
            if entry is not None:
                self.skips.mark_used(entry)
                self.report.executor(executor).contract[which] = f"xfailed: {entry.reason}"
                return entry.reason
            self.report.executor(executor).contract[which] = message
            self.add_failure(Failure(cid, executor, "contract", "raised", None, message))
            raise
        self.report.executor(executor).contract[which] = "passed"
        return None

    def reference_or_none(self, case: Case) -> list[list[object]] | None:
        """The reference results, or ``None`` (counted as a warning) if the reference fails."""
        try:
            return self.checker.reference_results(case)
        except ReferenceFailure as exc:
            self.report.warnings.append(str(exc).splitlines()[0][:300])
            return None

    # --- end ----------------------------------------------------------------------------------

    def finish(self, known_ids: Sequence[str] = ()) -> None:
        """Work out unmatched skips entries, write the report, drop the crash journal."""
        names = {i.name for i in torchexec.list_executors()}
        ids = set(known_ids) | self.known_ids
        for name in self.executors:
            ids.update(f"{name}::contract::{c}" for c in contract.CHECKS)
            for op in [*self.report.catalog, *self.report.graph_operators, *self.report.operators]:
                ids.add(f"{name}::generated::{op}")
                ids.add(f"{name}::torchbind::{op}")
            for op, dtypes in self.report.coverage_declared.items():
                ids.update(f"{name}::coverage::{op}::{d}" for d in dtypes)
        for e in self.skips.entries:
            if not e.shipped and e.executor != "*" and e.executor not in names:
                why = f"no executor named {e.executor!r} is installed"
                self.report.unmatched_skips.append(_skip_row(e, why))
        unmatched = self.skips.unmatched(sorted(ids), self.executors, self.tiers_run)
        for e in unmatched:
            why = "matches no conformance id of this run"
            self.report.unmatched_skips.append(_skip_row(e, why))
        for e in self.skips.entries:
            relevant = e.executor == "*" or e.executor in self.executors
            ran = relevant and not e.shipped and e.tier in self.tiers_run
            if ran and e not in self.skips.used and e not in unmatched:
                why = "nothing it covers failed: remove it if the bug is fixed"
                self.report.unused_skips.append(_skip_row(e, why))
        if self.options.report is not None:
            self.report.write(self.options.report)
        self.drop_journal()

    def drop_journal(self) -> None:
        """Remove the crash journal (the run ended without a crash)."""
        if self.journal is not None and self.journal.exists():
            self.journal.unlink()


def _skip_row(entry: SkipEntry, why: str) -> dict[str, str]:
    return {"id": entry.prefix, "reason": entry.reason, "source": entry.source, "why": why}
