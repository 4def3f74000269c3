"""Run fuzz cases in worker subprocesses; detect, count and name crashes and hangs.

:func:`run_cases` starts a worker (:mod:`.worker`) on a list of cases and reads its JSON lines.
When the stream ends after a ``begin`` with no ``result``, that case crashed (the exit status
or signal and the end of the worker's stderr are recorded); when no line comes for
``hard_limit`` seconds, the worker is killed and the case recorded as a hang. Either way a new
worker carries on with the next case, so one bad case never hides the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .outcome import BAD, OUTCOMES, Outcome

__all__ = [
    "HarnessError",
    "HypothesisRun",
    "LoaderRun",
    "run_cases",
    "run_hypothesis",
    "run_loader",
    "summary_table",
]

REPO = Path(__file__).resolve().parents[1]
STARTUP_LIMIT = 180.0


class HarnessError(RuntimeError):
    """A worker could not be started (not a finding about a loader)."""


@dataclass
class LoaderRun:
    """The outcomes of one loader's cases and what running them took."""

    loader: str
    outcomes: list[Outcome]
    seconds: float
    workers_started: int = 0

    def counts(self) -> dict[str, int]:
        """Outcome -> number of cases (every outcome listed, zeros included)."""
        out = dict.fromkeys(OUTCOMES, 0)
        for o in self.outcomes:
            out[o.outcome] = out.get(o.outcome, 0) + 1
        return out

    def bad(self) -> list[Outcome]:
        """The cases that break the property."""
        return [o for o in self.outcomes if o.outcome in BAD]


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    stderr: Path
    started: float = field(default_factory=time.monotonic)


def _start(
    loader: str,
    cases: Sequence[int] | int,
    corpus: Path,
    seed: int,
    time_limit: float,
    scratch: Path,
) -> _Worker:
    """A worker on ``cases`` (a list), or on that many hypothesis examples (an int)."""
    stderr = scratch / f"stderr-{loader}-{time.monotonic_ns()}.txt"
    which = ["--hypothesis", str(cases)] if isinstance(cases, int) else ["--cases", "-"]
    cmd = [
        sys.executable,
        "-m",
        "fuzzing.worker",
        "--loader",
        loader,
        *which,
        "--corpus",
        str(corpus),
        "--seed",
        str(seed),
        "--time-limit",
        str(time_limit),
        "--tmp",
        str(scratch),
    ]
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    if not isinstance(cases, int):
        proc.stdin.write(",".join(map(str, cases)) + "\n")
    proc.stdin.close()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    return _Worker(proc, lines, stderr)


def _pump(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill(worker: _Worker) -> None:
    if worker.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
            os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _exit_words(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def run_cases(
    loader: str,
    cases: Sequence[int],
    corpus: Path,
    *,
    seed: int = 0,
    time_limit: float = 20.0,
    hard_limit: float = 60.0,
) -> LoaderRun:
    """Run ``cases`` of ``loader`` in as many workers as crashes require.

    Raises:
        HarnessError: a worker died or stalled before it was ready (a broken environment,
            not a finding).
    """
    t0 = time.monotonic()
    results: dict[int, Outcome] = {}
    pending = list(cases)
    started = 0
    with tempfile.TemporaryDirectory(prefix="torchexec-fuzz-harness-") as scratch_name:
        scratch = Path(scratch_name)
        while pending:
            worker = _start(loader, pending, corpus, seed, time_limit, scratch)
            started += 1
            try:
                _drain(worker, loader, results, hard_limit)
            finally:
                _kill(worker)
            pending = [c for c in pending if c not in results]
    ordered = [results[c] for c in cases]
    return LoaderRun(loader, ordered, time.monotonic() - t0, started)


def _drain(
    worker: _Worker,
    loader: str,
    results: dict[int, Outcome],
    hard_limit: float,
    notes: list[str] | None = None,
) -> None:
    """Read one worker's lines until it ends, crashes or stalls (``notes`` collects what a
    hypothesis worker says about a shrunk counterexample)."""
    ready = False
    current: int | None = None
    phase = ""
    while True:
        limit = hard_limit if ready else STARTUP_LIMIT
        try:
            line = worker.lines.get(timeout=limit)
        except queue.Empty:
            if current is None:
                raise HarnessError(
                    f"fuzz worker for {loader!r} stalled before a case: {_tail(worker.stderr)}"
                ) from None
            results[current] = Outcome(
                loader, current, "?", "hang", f"no progress for {hard_limit} s; killed", phase=phase
            )
            return
        if line is None:
            code = worker.proc.wait()
            if current is not None:
                detail = f"{_exit_words(code)}; stderr: {_tail(worker.stderr)}"
                results[current] = Outcome(loader, current, "?", "crash", detail, phase=phase)
            elif not ready or code != 0:
                raise HarnessError(
                    f"fuzz worker for {loader!r} ended ({_exit_words(code)}) "
                    f"outside a case: {_tail(worker.stderr)}"
                )
            return
        message: Mapping[str, Any] = json.loads(line)
        event = message.get("e")
        if event == "ready":
            ready = True
        elif event == "begin":
            current, phase = int(message["case"]), "begin"
        elif event == "phase":
            phase = str(message["phase"])
        elif event == "result":
            outcome = Outcome(**message["outcome"])
            results[outcome.case] = outcome
            current = None
        elif event == "falsified" and notes is not None:
            notes.append(str(message.get("detail", "")))


@dataclass
class HypothesisRun(LoaderRun):
    """A hypothesis-driven run: ``falsified`` holds the shrunk counterexample, if any (its
    outcome is the last one listed)."""

    falsified: list[str] = field(default_factory=list)


def run_hypothesis(
    loader: str, examples: int, corpus: Path, *, time_limit: float = 20.0, hard_limit: float = 60.0
) -> HypothesisRun:
    """Let hypothesis choose up to ``examples`` mutated programs of ``loader`` in one worker.

    A crash or hang ends the run (hypothesis cannot resume); it is recorded like any other.
    """
    t0 = time.monotonic()
    results: dict[int, Outcome] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="torchexec-fuzz-harness-") as scratch_name:
        worker = _start(loader, examples, corpus, 0, time_limit, Path(scratch_name))
        try:
            _drain(worker, loader, results, hard_limit, notes)
        finally:
            _kill(worker)
    ordered = [results[k] for k in sorted(results)]
    return HypothesisRun(loader, ordered, time.monotonic() - t0, 1, notes)


def run_loader(
    loader: str,
    count: int,
    corpus: Path,
    *,
    seed: int = 0,
    jobs: int = 1,
    start: int = 0,
    time_limit: float = 20.0,
    hard_limit: float = 60.0,
) -> LoaderRun:
    """Cases ``start .. start+count-1`` of ``loader``, split over ``jobs`` parallel workers."""
    cases = list(range(start, start + count))
    chunks = [cases[i::jobs] for i in range(jobs) if cases[i::jobs]]
    runs: list[LoaderRun] = []
    errors: list[BaseException] = []
    t0 = time.monotonic()

    def one(chunk: list[int]) -> None:
        try:
            runs.append(
                run_cases(
                    loader, chunk, corpus, seed=seed, time_limit=time_limit, hard_limit=hard_limit
                )
            )
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    outcomes = sorted((o for r in runs for o in r.outcomes), key=lambda o: o.case)
    return LoaderRun(loader, outcomes, time.monotonic() - t0, sum(r.workers_started for r in runs))


COLUMNS = (
    ("programs", None),
    ("accepted, agreed", ("agreed",)),
    ("rejected (ProgramError)", ("rejected",)),
    ("other inputs", ("rejected_inputs",)),
    ("failed like reference", ("failed_like_reference",)),
    ("unverified", ("unverified",)),
    ("wrong exception", ("wrong_exception",)),
    ("run error", ("run_error", "late_error", "harness_error")),
    ("mismatch", ("mismatch",)),
    ("crashes", ("crash",)),
    ("hangs", ("hang",)),
)


def summary_table(runs: Iterable[LoaderRun]) -> str:
    """A Markdown table: one row per loader, one column per kind of outcome, and the time."""
    head = ["loader", *(name for name, _ in COLUMNS), "seconds"]
    rows = [head, ["---"] * len(head)]
    for run in runs:
        counts = run.counts()
        cells = [run.loader]
        for _, keys in COLUMNS:
            value = len(run.outcomes) if keys is None else sum(counts.get(k, 0) for k in keys)
            cells.append(str(value))
        cells.append(f"{run.seconds:.0f}")
        rows.append(cells)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)
