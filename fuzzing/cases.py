"""One case: one mutated program through one loader, classified (see :mod:`.outcome`).

Loaders:

- ``ep_json``: ``torchexec_proxy.load_plan_from_json`` + ``ProxyRunner``; reference: torch's
  serde ``deserialize`` + ``.module()`` (or the unmutated results, for semantics-preserving
  mutations);
- ``pt2``: ``torchexec.prepare(path, executor="proxy")``; reference: ``torch.export.load``;
- ``extern``: ``torchexec_proxy.ExternKernelProxy`` + ``call_function`` on every node;
  reference: each node called through ``torch.ops`` with its arguments by name;
- ``torchbind``: two thirds of the cases mutate the engine's encoded plan and build
  ``torch.classes.torchexec.Engine`` from it (reference: :mod:`.planref`); one third run mutated
  ``.pt2`` archives through ``torchexec.prepare(path, executor="torchbind")`` (reference: the
  ``proxy`` executor on the same file, which plans it with the same loader).

``report(phase)`` is called as a case moves from loading to running to the reference, so that
the worker can say where a crash or a hang happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

import torchexec
from torchexec import InputMismatchError, ProgramError

from .chooser import Chooser, RandomChooser, seed_for
from .corpus import Corpus, ExternItem, ProgramItem, make_scale
from .externcall import plan_call, reference_call
from .jsonmut import Mutant, mutate_document
from .outcome import Outcome, RunResult, classify, wrong_exception
from .planmut import PlanMutant, mutate_plan
from .planref import copy_plan, run_plan
from .reference import RefResult, compare, describe, ep_json_reference, pt2_reference
from .skeleton import same_program
from .zipmut import mutate_archive

__all__ = [
    "LOADERS",
    "Report",
    "check_ep_json",
    "check_extern",
    "check_pt2",
    "run_case",
    "run_with",
]

Report = Callable[[str], None]
LOADERS = ("ep_json", "pt2", "extern", "torchbind")
_EXTERN_REGIONS = ((("nodes",), 90), ((), 10))
_ENGINE_RUN_ERROR = "torchexec.Engine.run: "


def _quiet(_: str) -> None:
    return None


def _base_ref(item: ProgramItem) -> RefResult:
    return RefResult("ok", item.expected, item.expected_state, item.expected_inputs)


LOOP_LIMIT = 1000
"""``while_loop`` iterations a case may run: a mutated loop may never end (in torch too), and
the executors stop it with ``LoopLimitError`` (counted as ``rejected``, in the run)."""


def _options(namespaces: tuple[str, ...]) -> dict[str, Any]:
    return {"allowed_namespaces": list(namespaces), "max_loop_iterations": LOOP_LIMIT}


# --- ExportedProgram JSON -------------------------------------------------------------------


def check_ep_json(
    item: ProgramItem, mutant: Mutant, report: Report = _quiet
) -> tuple[str, str, str]:
    """Load ``mutant`` as ExportedProgram JSON with the proxy; returns (outcome, detail, phase)."""
    from torchexec_proxy import LoopLimitError, ProxyRunner, load_plan_from_json

    weights, constants = item.fresh_state()
    inputs = item.fresh_inputs()
    report("load")
    try:
        plan = load_plan_from_json(
            mutant.data, weights, constants, allowed_namespaces=item.namespaces
        )
        runner = ProxyRunner(plan, max_loop_iterations=LOOP_LIMIT)
    except ProgramError as exc:
        return "rejected", describe(exc), "load"
    except Exception as exc:
        return "wrong_exception", wrong_exception(exc), "load"
    report("run")
    run = RunResult(state=weights, inputs=inputs)
    try:
        run.outputs = runner(*inputs)
    except InputMismatchError as exc:
        return "rejected_inputs", describe(exc), "run"
    except LoopLimitError as exc:
        return "rejected", describe(exc), "run"
    except Exception as exc:
        run.error = exc
    report("reference")
    if mutant.preserving or same_program(item.doc, mutant.data):
        ref = _base_ref(item)
    else:
        ref_weights, ref_constants = item.fresh_state()
        ref = ep_json_reference(
            mutant.data, ref_weights, ref_constants, item.fresh_inputs(), item.doc
        )
    outcome, detail = classify(run, ref)
    return outcome, detail, "run"


# --- .pt2 -----------------------------------------------------------------------------------


def _state_of(runner: Any) -> dict[str, Any]:
    """The state a runner loaded (the proxy's plan), copied; TorchBind objects as weights."""
    plan = getattr(runner, "plan", None)
    if plan is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in plan.state_values.items():
        if isinstance(value, torch.Tensor):
            out[name] = value.detach().clone()
        elif hasattr(value, "get_weight"):
            out[name] = value.get_weight().clone()
    return out


def _same_state(item: ProgramItem, loaded: Mapping[str, Any]) -> bool:
    want = {**item.weights, **item.tensor_constants, **item.objects}
    if set(want) != set(loaded):
        return False
    return all(compare([want[k]], [loaded[k]]) is None for k in want)


def _prepare_and_run(
    path: Path, item: ProgramItem, executor: str
) -> tuple[str | None, str, RunResult, dict[str, Any]]:
    """``prepare`` + one call: (rejection outcome or None, detail, run result, the state the
    program loaded, as it was before the call)."""
    from torchexec_proxy import LoopLimitError

    inputs = item.fresh_inputs()
    try:
        prepared = torchexec.prepare(
            path, *inputs, executor=executor, executor_parameters=_options(item.namespaces)
        )
    except ProgramError as exc:
        return "rejected", describe(exc), RunResult(), {}
    except InputMismatchError as exc:
        return "rejected_inputs", describe(exc), RunResult(), {}
    except Exception as exc:
        return "wrong_exception", wrong_exception(exc), RunResult(), {}
    loaded = _state_of(prepared.runner)
    run = RunResult(inputs=inputs)
    try:
        run.outputs = pytree.tree_leaves(prepared(*inputs))
    except InputMismatchError as exc:
        return "rejected_inputs", describe(exc), RunResult(), {}
    except LoopLimitError as exc:
        return "rejected", describe(exc), RunResult(), {}
    except Exception as exc:
        run.error = exc
    run.state = {k: v for k, v in _state_of(prepared.runner).items() if k in item.weights}
    return None, "", run, loaded


def _archive_program(path: Path) -> bytes:
    from torchexec.archive import Pt2Archive

    with Pt2Archive(path) as archive:
        return archive.model_json()


def check_pt2(
    item: ProgramItem, mutant: Mutant, path: Path, report: Report = _quiet
) -> tuple[str, str, str]:
    """Run the archive ``mutant`` (written to ``path``) on the proxy executor."""
    path.write_bytes(mutant.data)
    report("load")
    early, detail, run, loaded = _prepare_and_run(path, item, "proxy")
    if early is not None:
        return early, detail, "load"
    report("reference")
    if mutant.preserving or (
        _same_state(item, loaded) and same_program(item.doc, _archive_program(path))
    ):
        ref = _base_ref(item)  # the program and state the proxy loaded are the corpus's
    else:
        ref = pt2_reference(path, item.fresh_inputs(), item.doc, item.pt2)
    outcome, detail = classify(run, ref)
    return outcome, detail, "run"


# --- extern-kernel JSON ---------------------------------------------------------------------


def check_extern(item: ExternItem, mutant: Mutant, report: Report = _quiet) -> tuple[str, str, str]:
    """Build an ``ExternKernelProxy`` from ``mutant`` and call every node it holds."""
    from torchexec_proxy import ExternKernelProxy

    objects = item.fresh_objects()
    report("load")
    try:
        proxy = ExternKernelProxy(
            mutant.data, custom_objs=objects, allowed_namespaces=item.namespaces
        )
    except ProgramError as exc:
        return "rejected", describe(exc), "load"
    except Exception as exc:
        return "wrong_exception", wrong_exception(exc), "load"
    report("run")
    try:
        nodes = [entry["node"] for entry in json.loads(mutant.data)["nodes"]]
    except Exception as exc:
        return (
            "unverified",
            f"the harness cannot read the accepted document: {describe(exc)}",
            "run",
        )
    worst = ("agreed", "")
    for index, node in enumerate(nodes):
        env = {k: v.clone() for k, v in item.env.items()}
        try:
            call = plan_call(node, env)
        except Exception as exc:
            worst = _worse(worst, ("unverified", f"node {index}: no call: {describe(exc)}"))
            continue
        run = RunResult()
        try:
            run.outputs = list(proxy.call_function(index, call.int_args, call.tensor_args))
        except Exception as exc:
            run.error = exc
        ref = reference_call(node, {k: v.clone() for k, v in item.env.items()}, objects)
        outcome, detail = classify(run, ref)
        worst = _worse(worst, (outcome, f"node {index}: {detail}" if detail else ""))
    return worst[0], worst[1], "run"


_RANK = {"agreed": 0, "failed_like_reference": 1, "unverified": 2}


def _worse(a: tuple[str, str], b: tuple[str, str]) -> tuple[str, str]:
    return a if _RANK.get(a[0], 9) >= _RANK.get(b[0], 9) else b


# --- torchbind engine -------------------------------------------------------------------------


def encoded_plan(item: ProgramItem) -> tuple[Any, ...]:
    """The unmutated program's encoded plan, with fresh state (what the executor builds)."""
    from torchexec_proxy import load_plan_from_json, normalize_namespaces
    from torchexec_torchbind import encode_plan
    from torchexec_torchbind._inputs import input_specs_from_document

    weights, constants = item.fresh_state()
    plan = load_plan_from_json(
        item.model_json, weights, constants, allowed_namespaces=item.namespaces
    )
    return encode_plan(
        plan,
        allowed_namespaces=normalize_namespaces(item.namespaces),
        input_specs=input_specs_from_document(item.doc),
    )


def _copy_object(obj: Any) -> Any:
    return make_scale(obj.get_weight()) if hasattr(obj, "get_weight") else obj


def check_engine_plan(
    item: ProgramItem, mutant: PlanMutant, report: Report = _quiet
) -> tuple[str, str, str]:
    """Build an engine from a (mutated) encoded plan and run it; the reference is the plan
    interpreted in Python (:mod:`.planref`)."""
    from torchexec_torchbind import engine_from_plan_state

    ref_plan = copy_plan(mutant.plan, _copy_object)
    report("load")
    try:
        engine: Any = engine_from_plan_state(mutant.plan)
    except ProgramError as exc:
        return "rejected", describe(exc), "load"
    except Exception as exc:
        return "wrong_exception", wrong_exception(exc), "load"
    report("run")
    inputs = item.fresh_inputs()
    run = RunResult(inputs=inputs)
    try:
        run.outputs = list(engine.run(list(inputs)))
    except ValueError as exc:
        if str(exc).startswith(_ENGINE_RUN_ERROR):
            return "rejected_inputs", describe(exc), "run"
        run.error = exc
    except Exception as exc:
        run.error = exc
    run.state = {row[2]: row[3] for row in mutant.plan[5] if isinstance(row[3], torch.Tensor)}
    report("reference")
    ref = run_plan(ref_plan, item.fresh_inputs())
    outcome, detail = classify(run, ref)
    return outcome, detail, "run"


def check_engine_pt2(
    item: ProgramItem, mutant: Mutant, path: Path, report: Report = _quiet
) -> tuple[str, str, str]:
    """Run a mutated archive on the torchbind executor; the proxy on the same file is the
    reference (both plan with ``torchexec_proxy.load_plan``)."""
    path.write_bytes(mutant.data)
    report("load")
    early, detail, run, _ = _prepare_and_run(path, item, "torchbind")
    if early is not None:
        return early, detail, "load"
    report("reference")
    proxy_early, proxy_detail, proxy_run, _ = _prepare_and_run(path, item, "proxy")
    if proxy_early is not None:
        ref = RefResult("rejected", message=f"proxy: {proxy_early}: {proxy_detail}")
    elif proxy_run.error is not None:
        ref = RefResult("run_error", message=describe(proxy_run.error))
    else:
        ref = RefResult("ok", proxy_run.outputs, {}, proxy_run.inputs)
    outcome, detail = classify(run, ref)
    return outcome, detail, "run"


# --- dispatch ---------------------------------------------------------------------------------


def run_case(
    loader: str, corpus: Corpus, case: int, seed: int, tmp: Path, report: Report = _quiet
) -> Outcome:
    """Case ``case`` of ``loader`` (reproducible from ``(loader, case, seed)`` alone): program
    ``case`` modulo the corpus size, mutated with decisions seeded by the case."""
    ch = RandomChooser(seed_for(loader, case, seed))
    return run_with(loader, corpus, ch, tmp, case=case, pick=case, report=report)


def run_with(
    loader: str,
    corpus: Corpus,
    ch: Chooser,
    tmp: Path,
    *,
    case: int,
    pick: int,
    report: Report = _quiet,
) -> Outcome:
    """One case of ``loader`` on program ``pick`` (modulo the corpus size), every decision
    taken by ``ch``; ``case`` only labels the outcome."""
    programs = corpus.programs
    if loader == "extern":
        ext = corpus.externs[pick % len(corpus.externs)]
        mutant = mutate_document(ext.text.encode(), ch, _EXTERN_REGIONS)
        outcome, detail, phase = check_extern(ext, mutant, report)
        return Outcome(
            loader, case, ext.name, outcome, detail, mutant.description, mutant.preserving, phase
        )
    if loader == "torchbind":  # the plan mutator and interpreter do not model subgraphs
        programs = [p for p in programs if p.engine]
    item = programs[pick % len(programs)]
    path = tmp / f"{loader}_{case}.pt2"
    try:
        if loader == "ep_json":
            mutant = mutate_document(item.model_json, ch)
            outcome, detail, phase = check_ep_json(item, mutant, report)
        elif loader == "pt2":
            mutant = mutate_archive(item.pt2, ch)
            outcome, detail, phase = check_pt2(item, mutant, path, report)
        elif loader == "torchbind":
            if ch.integer(0, 2) < 2:
                mutant = mutate_plan(encoded_plan(item), ch)
                outcome, detail, phase = check_engine_plan(item, mutant, report)
            else:
                mutant = mutate_archive(item.pt2, ch)
                outcome, detail, phase = check_engine_pt2(item, mutant, path, report)
        else:
            raise ValueError(f"unknown loader {loader!r}; expected one of {LOADERS}")
    finally:
        path.unlink(missing_ok=True)
    return Outcome(
        loader, case, item.name, outcome, detail, mutant.description, mutant.preserving, phase
    )
