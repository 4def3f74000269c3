"""The distributed tier: programs with collectives, run on N gloo ranks (``--distributed N``).

The kit's process starts N rank processes (``python -m torchexec.testing._distributed_tier``),
each with a gloo process group over a file store and a collective timeout. Every rank draws the
same programs (:func:`~torchexec.testing._collectives.collective_programs`, no shrinking, so
that the ranks never part ways), runs each on the reference and on every executor, and writes
what it saw as JSON. The kit's process then counts a program as passed on an executor when it
passed on every rank, and records the first failing rank's failure with its program as code.

A rank that does not finish in time (a hung collective) or dies is a *crashed* failure; the
other ranks are then stopped, so a broken executor never hangs the run.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from torchexec.testing._quiet import quiet
from torchexec.testing.report import Failure
from torchexec.testing.runner import Case, Outcome, program_operators

if TYPE_CHECKING:
    from torchexec.testing._ir import ProgramIR
    from torchexec.testing._kit import Kit

__all__ = ["TIER", "run_distributed_tier"]

TIER = "distributed"
COLLECTIVE_TIMEOUT_S = 60
"""A rank waits at most this long for its peers in one collective before it fails."""

_WAIT = "_c10d_functional.wait_tensor.default"
_RANK_ORDER = {"crashed": 5, "raised": 4, "mismatched": 3, "xfailed": 2, "unsupported": 1}


def examples(kit: Kit) -> int:
    """How many programs the tier runs: ``--max-examples`` / 15 (at least 4), else the
    profile's (8 quick, 20 ci)."""
    if kit.options.max_examples:
        return max(4, kit.options.max_examples // 15)
    return 20 if kit.profile.derandomize else 8


def run_distributed_tier(kit: Kit, world: int) -> None:
    """Run the tier on ``world`` ranks and record it in ``kit``'s report.

    Raises:
        ConformanceFailure: an executor failed on some program (listing every failure), or a
            rank hung or died.
    """
    __tracebackhide__ = True  # pytest shows the failure, not the kit
    from torchexec.testing._programs import ConformanceFailure

    kit.tiers_run.add(TIER)
    n = examples(kit)
    limit = kit.options.distributed_timeout or 120 + 15 * n
    with tempfile.TemporaryDirectory(prefix="torchexec-ranks-") as tmp:
        folder = Path(tmp)
        config = {
            "executors": kit.executors, "reference": kit.reference, "profile": kit.options.profile,
            "seed": kit.seed, "examples": n, "skips": [str(p) for p in kit.options.skips],
            "tolerances": str(kit.options.tolerances) if kit.options.tolerances else None,
            "executor_options": kit.options.executor_options,
            "setup": kit.options.distributed_setup,
            "collective_timeout": min(COLLECTIVE_TIMEOUT_S, limit / 2),
        }  # fmt: skip
        (folder / "config.json").write_text(json.dumps(config))
        ranks, problems = _launch(folder, world, limit)
    if problems:
        for name in kit.executors:
            kit.report.executor(name).tier(TIER).add("crashed")
            kit.add_failure(Failure(f"{name}::{TIER}", name, TIER, "crashed", None, problems))
        raise ConformanceFailure(f"distributed tier on {world} ranks: {problems}")
    messages = _record(kit, ranks)
    if messages:
        raise ConformanceFailure("\n\n".join(messages))


def _launch(folder: Path, world: int, limit: float) -> tuple[list[dict[str, Any]], str]:
    """Start the ranks and wait; returns their results, or why some rank failed."""
    store = folder / "store"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                "--rank",
                str(r),
                "--world",
                str(world),
                "--store",
                str(store),
                "--folder",
                str(folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    outputs: list[str] = []
    problems: list[str] = []
    for r, p in enumerate(procs):
        try:
            out, _ = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            out, _ = p.communicate()
            problems.append(f"rank {r} did not finish within {limit:.0f} s (a hung collective?)")
        else:
            if p.returncode != 0:
                problems.append(f"rank {r} exited with code {p.returncode}")
        outputs.append(out)
    if problems:
        tails = "\n".join(f"--- rank {r} ---\n{o[-2000:]}" for r, o in enumerate(outputs))
        return [], "; ".join(problems) + "\n" + tails
    results = [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world)]
    signatures = {tuple(p["signature"] for p in res["programs"]) for res in results}
    if len(signatures) != 1:
        return [], "the ranks drew different programs (the kit's generation is not deterministic)"
    return results, ""


def _record(kit: Kit, ranks: list[dict[str, Any]]) -> list[str]:
    """Count each program once per executor (its worst outcome over the ranks)."""
    messages: list[str] = []
    for i, first in enumerate(ranks[0]["programs"]):
        if first["outcomes"] is None:
            kit.report.warnings.append(f"{TIER}: {first['warning']}"[:300])
            continue
        kit.report.examples[TIER] += 1
        kit.report.operators.update(first["operators"])
        kit.report.graph_operators.update(first["graph_operators"])
        outcomes: dict[str, Outcome] = {}
        for name in kit.executors:
            per_rank = [(r, res["programs"][i]["outcomes"][name]) for r, res in enumerate(ranks)]
            rank, worst = max(per_rank, key=lambda item: _RANK_ORDER.get(item[1]["status"], 0))
            outcomes[name] = Outcome(name, worst["status"], worst["message"])
            if worst["skip"] is not None:
                entry = kit.skips.entries[worst["skip"]]
                kit.skips.mark_used(entry)
                outcomes[name].skip = entry
            if worst["failure"] is not None:
                failure = Failure(**worst["failure"])
                failure.message = f"rank {rank} of {len(ranks)}: {failure.message}"
                kit.add_failure(failure)
                messages.append(
                    f"executor {name!r} {failure.status} on {failure.operator} "
                    f"({failure.message})\nreproduction (rank {rank}):\n{failure.reproduction}"
                )
        kit.record(TIER, outcomes)
    for res in ranks:
        kit.known_ids.update(res["known_ids"])
    return messages


# --- one rank ---------------------------------------------------------------------------------


def _rank_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="one rank of the kit's distributed tier")
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args(argv)
    import torch.distributed as dist
    from torch.distributed import FileStore  # type: ignore[attr-defined]

    from torchexec.testing._kit import Kit, KitOptions

    config = json.loads((args.folder / "config.json").read_text())
    for module in config["setup"]:
        importlib.import_module(module)
    dist.init_process_group(
        "gloo",
        store=FileStore(args.store, args.world),
        rank=args.rank,
        world_size=args.world,
        timeout=datetime.timedelta(seconds=config["collective_timeout"]),
    )
    try:
        kit = Kit(
            KitOptions(
                executors=config["executors"],
                reference=config["reference"],
                profile=config["profile"],
                seed=config["seed"],
                skips=[Path(p) for p in config["skips"]],
                tolerances=Path(config["tolerances"]) if config["tolerances"] else None,
                executor_options=config["executor_options"],
            )
        )
        group = dist.group.WORLD
        assert group is not None  # init_process_group made it
        found = _rank_programs(kit, args.rank, args.world, group.group_name, config["examples"])
        result = {"programs": found, "known_ids": sorted(kit.known_ids)}
        (args.folder / f"rank{args.rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()
    return 0


def _rank_programs(kit: Kit, rank: int, world: int, group: str, n: int) -> list[dict[str, Any]]:
    """Draw ``n`` programs (the same on every rank) and run each; no shrinking."""
    from hypothesis import HealthCheck, Phase, given, reject, seed, settings

    from torchexec.testing._collectives import COLLECTIVES, collective_programs
    from torchexec.testing._programs import _operator_of as operator_of
    from torchexec.testing.strategies import GeneratedProgram

    found: list[dict[str, Any]] = []

    def body(program: GeneratedProgram) -> None:
        ir = program.ir
        # what every rank must have drawn alike (the rank's constant aside)
        shape = repr([(c.name, c.op, [r.code() for r in c.refs()]) for c in ir.calls])
        shape += repr(ir.inputs) + repr(ir.outputs)
        row: dict[str, Any] = {
            "signature": hashlib.sha256(shape.encode()).hexdigest()[:16],
            "operators": ir.operators, "graph_operators": [], "outcomes": None, "warning": "",
        }  # fmt: skip
        with quiet():
            try:
                case = Case.of(
                    ir.graph_module(), ir.make_inputs, case_id=TIER, tier=TIER,
                    operators=ir.operators,
                )  # fmt: skip
            except Exception as exc:
                row["warning"] = f"a generated program failed to export: {exc}"
                found.append(row)
                reject()
            row["graph_operators"] = program_operators(case.program)
            expected = kit.reference_or_none(case)
            if expected is None:
                row["warning"] = kit.report.warnings[-1]
                found.append(row)
                reject()
            outcomes = {}
            for name in kit.executors:  # the last line a hung rank printed says where it hung
                print(f"rank {rank}: program {len(found)} on {name}: {ir.operators}", flush=True)
                outcomes[name] = kit.checker.check(case, name, expected)
        kit.known_ids.update(i for name in kit.executors for i in case.ids(name))
        row["outcomes"] = {
            name: _outcome_row(kit, o, ir, rank, world, _collective_of(ir, operator_of(ir, o), o))
            for name, o in outcomes.items()
        }
        found.append(row)

    def draw(count: int, kinds: tuple[str, ...]) -> None:
        strategy = collective_programs(rank=rank, world=world, group=group, kinds=kinds)
        test = settings(
            max_examples=count,
            database=None,
            derandomize=kit.profile.derandomize,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(body))
        if not kit.profile.derandomize:
            test = seed(kit.seed)(test)
        test()

    draw(n, COLLECTIVES)
    # every collective runs in every run: those the draw missed get two programs of their own
    for kind in COLLECTIVES:
        if not any(f"_c10d_functional.{kind}.default" in row["operators"] for row in found):
            draw(2, (kind,))
    return found


def _collective_of(ir: ProgramIR, operator: str | None, o: Outcome) -> str | None:
    """For a mismatch in a ``wait_tensor`` output, the collective it waited for."""
    cmp = o.comparison
    if operator != _WAIT or cmp is None or cmp.output is None:
        return operator
    wait = ir.call_of(ir.outputs[cmp.output])
    source = ir.call_of(wait.args[0]) if wait is not None else None
    return source.op if source is not None else operator


def _outcome_row(
    kit: Kit, o: Outcome, ir: ProgramIR, rank: int, world: int, operator: str | None
) -> dict[str, Any]:
    from torchexec.testing._ir import reproduction

    skip = kit.skips.entries.index(o.skip) if o.skip is not None else None
    failure = None
    if o.failed:
        tol = kit.checker.tolerances.for_dtype(torch.float32, ir.operators)
        code = reproduction(
            ir, o.executor, kit.reference, exact=kit.checker.bitwise(o.executor),
            rtol=tol.rtol, atol=tol.atol,
            header=[f"torchexec conformance: {o.executor!r} against {kit.reference!r} "
                    f"({TIER} tier), rank {rank} of {world}"],
        )  # fmt: skip
        case_id = f"{TIER}::{operator}"
        failure = asdict(o.failure(case_id, TIER, operator, ir.operators, code, kit.seed_text))
    return {"status": o.status, "message": o.message, "skip": skip, "failure": failure}


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
