"""How one case ends, and the rules that decide it.

The property: a mutated program is either rejected when it is loaded, with ``ProgramError``,
or it loads, runs and agrees with the reference. Outcomes:

======================== =====================================================================
``agreed``               loaded, ran, and agreed bit for bit with the reference
``rejected``             refused at load with ``ProgramError``
``rejected_inputs``      loaded, but the (mutated) program takes other inputs than the
                         corpus's: ``InputMismatchError`` before any node ran
``failed_like_reference`` loaded, then failed while running, and so does the reference
``unverified``           loaded and ran, but the reference refuses the program or fails on it,
                         so there is nothing to compare with (counted, listed, looked at)
``wrong_exception``      load raised something other than ``ProgramError``          (a bug)
``run_error``            loaded, then failed while running where the reference runs (a bug)
``late_error``           loaded, then failed while running a program the reference refuses
                         to load: it should have been rejected at load               (a bug)
``mismatch``             ran, but the results differ from the reference             (a bug)
``crash``                the process died (signal, abort)                           (a bug)
``hang``                 the case overran its time bound                            (a bug)
``harness_error``        the fuzzing harness itself failed on the case        (a bug, of ours)
======================== =====================================================================
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from .reference import RefResult, compare, describe

__all__ = ["BAD", "OUTCOMES", "Outcome", "RunResult", "classify", "wrong_exception"]

OUTCOMES = (
    "agreed",
    "rejected",
    "rejected_inputs",
    "failed_like_reference",
    "unverified",
    "wrong_exception",
    "run_error",
    "late_error",
    "mismatch",
    "crash",
    "hang",
    "harness_error",
)
BAD = frozenset(
    {"wrong_exception", "run_error", "late_error", "mismatch", "crash", "hang", "harness_error"}
)


@dataclass
class Outcome:
    """The verdict on one case (one JSON line of a worker's report)."""

    loader: str
    case: int
    program: str
    outcome: str
    detail: str = ""
    mutation: list[str] = field(default_factory=list)
    preserving: bool = False
    phase: str = ""

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return asdict(self)


@dataclass
class RunResult:
    """What the loader under test did once it accepted the program."""

    outputs: list[Any] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)
    error: BaseException | None = None


def wrong_exception(exc: BaseException) -> str:
    """The exception and where it came from, for a ``wrong_exception`` report."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[::-1]
    )
    return f"{describe(exc)} [at {where}]"


def classify(run: RunResult, ref: RefResult) -> tuple[str, str]:
    """Compare an accepted program's run with the reference's; returns (outcome, detail)."""
    if run.error is None:
        if ref.status != "ok":
            return "unverified", f"reference {ref.status}: {ref.message}"
        diff = compare(ref.outputs, run.outputs)
        if diff is None:
            diff = _compare_named(ref.state, run.state, "state")
        if diff is None and ref.inputs:
            diff = compare(ref.inputs, run.inputs)
            diff = None if diff is None else f"inputs after the run: {diff}"
        if diff is not None:
            return "mismatch", diff
        return "agreed", ""
    message = describe(run.error)
    if ref.status == "ok":
        return "run_error", message
    if ref.status == "run_error":
        return "failed_like_reference", f"{message} || reference: {ref.message}"
    return "late_error", f"{message} || reference rejects: {ref.message}"


def _compare_named(expected: dict[str, Any], actual: dict[str, Any], what: str) -> str | None:
    for name in sorted(set(expected) & set(actual), key=repr):  # names may be str or bytes
        diff = compare([expected[name]], [actual[name]])
        if diff is not None:
            return f"{what} {name!r}: {diff}"
    return None
