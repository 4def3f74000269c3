"""Running one normalised program on the reference and on executors, and judging the results.

>>> import torch, torchexec
>>> from torchexec.testing.runner import Case, Checker
>>> gm = torch.fx.symbolic_trace(lambda x: torch.relu(x) + 1)
>>> x = torch.randn(3)
>>> case = Case.of(gm, lambda: (x.clone(),), case_id="relu")
>>> Checker(["aten"]).run(case)["aten"].status
'passed'

The program is exported once (:meth:`Case.of` calls ``torchexec.normalize``) and every executor
prepares that same :class:`~torchexec.Program`, each with fresh copies of the inputs. A result
is *passed*, *mismatched* (the outputs or the inputs after the run differ), *raised* (prepare
or the call raised), *unsupported* (the executor declares an operator or dtype of the program
unsupported; it is not run), or *xfailed* (a failure the skips file lists). *crashed* is recorded
by ``torchexec check`` when the process dies inside an executor (see ``journal``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.utils._pytree as pytree

import torchexec
from torchexec._program import Program
from torchexec.testing import _lists
from torchexec.testing.compare import Comparison, Tolerances, compare_outputs
from torchexec.testing.report import Failure
from torchexec.testing.skips import SkipEntry, SkipList, id_matches

__all__ = [
    "Case",
    "Checker",
    "Outcome",
    "ReferenceFailure",
    "Status",
    "node_operator",
    "program_operators",
]

Status = Literal["passed", "mismatched", "raised", "crashed", "unsupported", "xfailed"]
FAILED: frozenset[str] = frozenset({"mismatched", "raised", "crashed"})


class ReferenceFailure(Exception):
    """The reference executor itself failed on a case (the case is invalid, not a failure)."""


class _PrepareFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def node_operator(node: torch.fx.Node) -> str:
    """A node's operator as reports name it: ``aten.add.Tensor``, ``call_torchbind.apply``,
    ``higher_order.cond``."""
    target = node.target
    if target is torch.ops.higher_order.call_torchbind:
        return f"call_torchbind.{node.args[1]}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target}"
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return getattr(target, "__name__", str(target))


def program_operators(program: Program) -> list[str]:
    """The distinct operators of a normalised program's graph, in graph order."""
    graph = program.graph_module().graph
    names = [
        node_operator(n)
        for n in graph.nodes
        if n.op == "call_function" and node_operator(n) != "getitem"
    ]
    return list(dict.fromkeys(names))


@dataclass
class Case:
    """One normalised program, its inputs, and how it is called.

    Attributes:
        case_id: the id without the executor (``generated``, ``opinfo::add::0``).
        tier: ``generated``, ``torchbind``, ``opinfo`` or ``contract``.
        program: the normalised program every executor prepares.
        make_inputs: fresh inputs, equal every call.
        operators: the operators the case exercises (used for skips, unsupported checks and
            tolerances).
        calls: how many times the prepared program is called (stateful programs: 2).
        reproduction: makes the Python reproduction for an executor (``None``: no code).
        make_program: re-makes the program (for programs holding stateful objects, which
            must not be shared between executors).
    """

    case_id: str
    tier: str
    program: Program
    make_inputs: Callable[[], tuple[Any, ...]]
    operators: list[str] = field(default_factory=list)
    calls: int = 1
    reproduction: Callable[[str, Comparison | None], str] | None = None
    make_program: Callable[[], Program] | None = None

    @classmethod
    def of(
        cls,
        program: object,
        make_inputs: Callable[[], tuple[Any, ...]],
        *,
        case_id: str,
        tier: str = "generated",
        operators: Iterable[str] = (),
        calls: int = 1,
    ) -> Case:
        """Normalise ``program`` once (``torchexec.normalize``) and wrap it."""
        prog = torchexec.normalize(program, make_inputs())
        ops = list(dict.fromkeys([*operators, *program_operators(prog)]))
        return cls(case_id, tier, prog, make_inputs, ops, calls)

    def ids(self, executor: str) -> list[str]:
        """The conformance ids of this case for ``executor`` (one per operator for programs)."""
        base = f"{executor}::{self.tier}"
        if self.tier in ("generated", "torchbind", "distributed", "control_flow"):
            return [base, *(f"{base}::{op}" for op in self.operators)]
        return [f"{base}::{self.case_id}"]


@dataclass
class Outcome:
    """What happened to one case on one executor."""

    executor: str
    status: Status
    message: str = ""
    comparison: Comparison | None = None
    phase: str = ""
    skip: SkipEntry | None = None
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        """Mismatched, raised or crashed (and not listed in a skips file)."""
        return self.status in FAILED

    def failure(
        self,
        case_id: str,
        tier: str,
        operator: str | None,
        operators: Sequence[str],
        reproduction: str,
        seed: str = "",
    ) -> Failure:
        """This outcome as a report entry (``case_id`` without the executor)."""
        cmp = self.comparison
        return Failure(
            id=f"{self.executor}::{case_id}",
            executor=self.executor,
            tier=tier,
            status=self.status,
            operator=operator,
            message=self.message,
            max_abs_error=cmp.max_abs if cmp is not None else None,
            max_rel_error=cmp.max_rel if cmp is not None else None,
            operators=list(operators),
            seed=seed,
            reproduction=reproduction,
        )


def _flat(out: Any) -> list[Any]:
    return list(pytree.tree_leaves(out))


def _snapshot(values: Sequence[Any]) -> list[Any]:
    return [v.detach().clone() if isinstance(v, torch.Tensor) else v for v in values]


def _unsupported_name(name: str) -> str:
    return name.replace("::", ".")


class Checker:
    """Runs cases on the reference and on executors (see the module docstring).

    Args:
        executors: executor names under test.
        reference: the reference executor (``aten``).
        tolerances: for executors that are not bitwise (default: the shipped ones).
        skips: the skips list; failures it covers become *xfailed*.
        journal: a file written before each executor call, so that a crash can be attributed
            (``torchexec check`` reads it when the process dies).
        options: ``executor_parameters`` per executor name.

    Programs that call operators outside ``aten`` and ``prims`` (the torchbind tier's
    ``torchexec_testing::scale_add``) are prepared with those namespaces added to the
    ``allowed_namespaces`` option of executors that declare one.
    """

    def __init__(
        self,
        executors: Sequence[str],
        reference: str = "aten",
        *,
        tolerances: Tolerances | None = None,
        skips: SkipList | None = None,
        journal: Path | None = None,
        options: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        self.executors = list(executors)
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self.reference = reference
        self.tolerances = tolerances or Tolerances.shipped()
        self.skips = skips or SkipList()
        self.journal = journal
        self._caps = {name: _lists.capabilities(name) for name in self.executors}

    def bitwise(self, executor: str) -> bool:
        """Whether ``executor`` must match the reference bit for bit."""
        caps = self._caps.get(executor) or _lists.capabilities(executor)
        return bool(caps.bitwise)

    # --- running ---------------------------------------------------------------------------

    def _note(self, case: Case, executor: str) -> None:
        if self.journal is None:
            return
        code = case.reproduction(executor, None) if case.reproduction is not None else ""
        entry = {"executor": executor, "case": case.case_id, "tier": case.tier, "code": code,
                 "operators": case.operators}  # fmt: skip
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, self.journal)

    def execute(self, case: Case, executor: str) -> list[list[Any]]:
        """Prepare and call the case on ``executor``: per call, flat outputs + inputs after."""
        program = case.make_program() if case.make_program is not None else case.program
        inputs = case.make_inputs()
        try:
            prepared = torchexec.prepare(
                program, *inputs, executor=_lists.choice(executor),
                executor_parameters=self.parameters(case, executor),
            )  # fmt: skip
        except Exception as exc:
            raise _PrepareFailed(exc) from exc
        results = []
        for _ in range(case.calls):
            torch.manual_seed(0)
            out = prepared(*inputs)
            results.append(_snapshot(_flat(out)) + _snapshot(list(inputs)))
        return results

    def parameters(self, case: Case, executor: str) -> dict[str, object] | None:
        """The ``executor_parameters`` for running ``case`` on ``executor`` (for a priority
        list, each member's keyed by its name)."""
        names = _lists.members(executor)
        if len(names) == 1:
            return self._member_parameters(case, executor)
        per = {name: self._member_parameters(case, name) for name in names}
        return {name: opts for name, opts in per.items() if opts} or None

    def _member_parameters(self, case: Case, executor: str) -> dict[str, object] | None:
        given = dict(self.options.get(executor, {}))
        namespaces = sorted(
            {op.split(".", 1)[0] for op in case.operators if "." in op}
            - {"aten", "prims", "call_torchbind"}
        )
        if namespaces:
            impl = torchexec.get_executor(executor)
            declared = {getattr(s, "name", None) for s in getattr(impl, "options", ())}
            if "allowed_namespaces" in declared:
                current = list(given.get("allowed_namespaces", ()))  # type: ignore[call-overload]
                given["allowed_namespaces"] = current + [n for n in namespaces if n not in current]
        return given or None

    def reference_results(self, case: Case) -> list[list[Any]]:
        """The reference's results; raises :class:`ReferenceFailure` if the reference fails."""
        self._note(case, self.reference)
        try:
            return self.execute(case, self.reference)
        except Exception as exc:
            if isinstance(exc, _PrepareFailed):
                exc = exc.error
            raise ReferenceFailure(
                f"the reference executor {self.reference!r} failed on {case.case_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def unsupported(self, case: Case, executor: str) -> str | None:
        """Why ``executor`` declares the case unsupported, or ``None``."""
        caps = self._caps[executor]
        declared = [_unsupported_name(o) for o in caps.unsupported_ops]
        for op in case.operators:
            for d in declared:
                if id_matches(d, op):
                    return f"{executor} declares {op} unsupported"
        if case.tier == "torchbind" and not caps.torchbind:
            return f"{executor} declares no TorchBind support (capabilities.torchbind is false)"
        bad_dtypes = {str(d).removeprefix("torch.") for d in caps.unsupported_dtypes}
        if bad_dtypes:
            for x in case.make_inputs():
                if (
                    isinstance(x, torch.Tensor)
                    and str(x.dtype).removeprefix("torch.") in bad_dtypes
                ):
                    return f"{executor} declares dtype {x.dtype} unsupported"
        return None

    def check(self, case: Case, executor: str, expected: list[list[Any]]) -> Outcome:
        """Run ``case`` on ``executor`` and judge it against the reference's ``expected``."""
        why = self.unsupported(case, executor)
        if why is not None:
            return Outcome(executor, "unsupported", why)
        self._note(case, executor)
        outcome = self.judge(case, executor, expected)
        if outcome.failed:
            entry = self.skips.match(case.ids(executor))
            if entry is not None:
                self.skips.mark_used(entry)
                outcome.status = "xfailed"
                outcome.skip = entry
        return outcome

    def judge(self, case: Case, executor: str, expected: list[list[Any]]) -> Outcome:
        """Run and compare, ignoring skips and declared unsupported operators."""
        try:
            actual = self.execute(case, executor)
        except _PrepareFailed as wrapped:
            exc = wrapped.error
            if isinstance(exc, torchexec.UnsupportedOperatorError):
                # The executor does not claim an operator (supports() said so): not a failure.
                return Outcome(executor, "unsupported", f"not claimed: {exc}")
            return Outcome(
                executor,
                "raised",
                f"prepare: {type(exc).__name__}: {exc}",
                phase="prepare",
                error=exc,
            )
        except Exception as exc:
            return Outcome(
                executor, "raised", f"{type(exc).__name__}: {exc}", phase="run", error=exc
            )
        bitwise = self.bitwise(executor)
        for call, (a, e) in enumerate(zip(actual, expected, strict=True)):
            cmp = compare_outputs(
                a, e, bitwise=bitwise, tolerances=self.tolerances, operators=case.operators
            )
            if not cmp.ok:
                n_out = len(e) - len(case.make_inputs())
                what = cmp.reason
                if cmp.output is not None and cmp.output >= n_out:
                    what = (
                        f"input {cmp.output - n_out} after the call: "
                        + cmp.reason.split(": ", 1)[-1]
                    )
                prefix = f"call {call + 1}: " if case.calls > 1 else ""
                return Outcome(
                    executor, "mismatched", prefix + what, comparison=cmp, phase="compare"
                )
        return Outcome(executor, "passed")

    def run(self, case: Case) -> dict[str, Outcome]:
        """The reference then every executor on ``case``."""
        expected = self.reference_results(case)
        return {name: self.check(case, name, expected) for name in self.executors}
