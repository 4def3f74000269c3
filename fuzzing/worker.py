"""A fuzzing worker: runs cases of one loader and reports each as a JSON line on stdout.

Lines: ``{"e": "ready"}`` once set up; per case ``{"e": "begin", "case": n}``, then
``{"e": "phase", "case": n, "phase": "load" | "run" | "reference"}`` as it moves on, then
``{"e": "result", "outcome": {...}}``. A parent (:mod:`.harness`) that sees the stream end, or
stop for too long, after a ``begin`` without its ``result`` knows which case crashed or hung,
and in which phase.

Two ways of choosing cases:

- ``--cases 0:2000`` (or ``-``: read from stdin): seeded cases, each reproducible alone;
- ``--hypothesis N``: hypothesis draws up to ``N`` mutated programs (derandomized, so the run is
  the same every time); a case that breaks the property is shrunk to a minimal mutation, whose
  outcome is the last ``result`` line before a final ``{"e": "falsified", ...}``.

Reproduce one seeded case by hand (builds the corpus first when ``--corpus`` is not given)::

    .venv/bin/python -m fuzzing.worker --loader pt2 --cases 1234 --human

The worker limits its address space (``--memory-gib`` above what it uses once set up), so that a
program asking for a huge tensor fails fast instead of exhausting the machine, and bounds each
case's time (``--time-limit``, by ``SIGALRM``; the parent kills a worker stuck in native code).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["CaseTimeout", "main", "parse_cases"]

Report = Callable[[str], None]


class CaseTimeout(BaseException):
    """Raised by the alarm when a case overruns its time (a BaseException: loaders' ``except
    Exception`` clauses must not swallow it)."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise CaseTimeout


def parse_cases(text: str) -> list[int]:
    """``"5"``, ``"0:100"``, ``"1,4,9"`` or a mix (``"0:10,20"``) -> case numbers."""
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            lo, hi = part.split(":")
            out.extend(range(int(lo), int(hi)))
        elif part:
            out.append(int(part))
    return out


def _limit_memory(extra_gib: float) -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
                break
        else:  # pragma: no cover - Linux always has it
            return
    limit = used + int(extra_gib * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _quiet() -> None:
    warnings.simplefilter("ignore")
    for name in ("torch", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _selftest(case: int, report: Report) -> dict[str, Any]:
    """Cases that misbehave on purpose, for testing the harness: 0 agrees, 1 crashes (SIGSEGV),
    2 overruns (caught by the alarm), 3 hangs in a way only the parent can stop, 4 exits."""
    kind = case % 5
    report("load")
    if kind == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == 2:
        time.sleep(3600)
    elif kind == 3:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    elif kind == 4:
        os._exit(0)
    return {"loader": "selftest", "case": case, "program": "-", "outcome": "agreed"}


class _Runner:
    """Runs one case at a time under the time bound, writing the protocol lines."""

    def __init__(self, loader: str, time_limit: float, human: bool) -> None:
        self.loader = loader
        self.time_limit = time_limit
        self.human = human
        self.out = sys.stdout

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def run(self, case: int, body: Callable[[Report], dict[str, Any]]) -> dict[str, Any]:
        phase = ["begin"]

        def report(name: str) -> None:
            phase[0] = name
            if not self.human:
                self.emit({"e": "phase", "case": case, "phase": name})

        if not self.human:
            self.emit({"e": "begin", "case": case})
        signal.setitimer(signal.ITIMER_REAL, self.time_limit)
        try:
            result = body(report)
        except CaseTimeout:
            result = {
                "loader": self.loader,
                "case": case,
                "program": "?",
                "outcome": "hang",
                "detail": f"over {self.time_limit} s",
                "phase": phase[0],
            }
        except Exception as exc:  # a bug of the harness itself: reported, never hidden
            result = {
                "loader": self.loader,
                "case": case,
                "program": "?",
                "outcome": "harness_error",
                "detail": f"{type(exc).__name__}: {exc}",
                "phase": phase[0],
            }
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if self.human:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            self.emit({"e": "result", "outcome": result})
        return result


def _cases_from(text: str) -> Iterator[int]:
    if text == "-":
        for line in sys.stdin:
            yield from parse_cases(line.strip())
    else:
        yield from parse_cases(text)


def _hypothesis(runner: _Runner, examples: int, corpus: Any, tmp: Path) -> None:
    """Let hypothesis choose the mutations (see the module docstring)."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from .cases import run_with
    from .chooser import HypothesisChooser
    from .outcome import BAD

    counter = [0]
    size = len(corpus.externs if runner.loader == "extern" else corpus.programs)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def property_holds(data: Any) -> None:
        ch = HypothesisChooser(data)
        pick = ch.integer(0, size - 1)
        case = counter[0]
        counter[0] += 1

        def body(report: Report) -> dict[str, Any]:
            outcome = run_with(runner.loader, corpus, ch, tmp, case=case, pick=pick, report=report)
            return outcome.to_json()

        result = runner.run(case, body)
        if result["outcome"] in BAD:
            raise AssertionError(f"{result['outcome']}: {result.get('detail', '')}")

    try:
        property_holds()
    except AssertionError as exc:
        runner.emit({"e": "falsified", "detail": str(exc)[:2000]})


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loader", required=True)
    parser.add_argument("--cases", help="e.g. 0:2000, 5,9 or - (from stdin)")
    parser.add_argument("--hypothesis", type=int, metavar="N", help="let hypothesis choose N")
    parser.add_argument("--corpus", type=Path, help="a corpus folder (built if not given)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=3.0)
    parser.add_argument("--human", action="store_true", help="readable lines, not JSON")
    parser.add_argument("--tmp", type=Path, help="scratch folder (a new one if not given)")
    args = parser.parse_args(argv)
    if (args.cases is None) == (args.hypothesis is None):
        parser.error("give exactly one of --cases and --hypothesis")

    _quiet()
    import torch

    from .cases import run_case
    from .corpus import build, load

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="torchexec-fuzz-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        corpus = None
        if args.loader != "selftest":
            corpus = load(args.corpus if args.corpus else build(tmp / "corpus"))
        _limit_memory(args.memory_gib)
        signal.signal(signal.SIGALRM, _alarm)
        runner = _Runner(args.loader, args.time_limit, args.human)
        runner.emit({"e": "ready"})
        if args.hypothesis is not None:
            _hypothesis(runner, args.hypothesis, corpus, tmp)
            return 0
        for case in _cases_from(args.cases):

            def body(report: Report, case: int = case) -> dict[str, Any]:
                if corpus is None:
                    return _selftest(case, report)
                return run_case(args.loader, corpus, case, args.seed, tmp, report).to_json()

            runner.run(case, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
