"""The long fuzzing run of the program loaders (the CI run is ``tests/reliability/test_fuzz_*``).

Usage::

    python benchmarks/fuzz_long.py [--programs 50000] [--loaders ep_json,pt2,extern,torchbind]
                                   [--jobs N] [--seed 0] [--start 0] [--hypothesis 2000]
                                   [--atheris SECONDS] [--json benchmarks/results/fuzz_long.json]

For each loader: ``--programs`` seeded mutants of the corpus (cases ``start .. start+N-1``, each
reproducible alone with ``python -m fuzzing.worker --loader L --cases K --human``), then ``--hypothesis`` more chosen by hypothesis. Cases run in worker subprocesses
(``--jobs`` at a time), so crashes and hangs are counted and named. With ``--atheris`` and the
``atheris`` package installed, the JSON loaders are also fuzzed coverage-guided for that many
seconds. Prints a table (programs per loader; accepted and agreed; rejected with
``ProgramError``; wrong exceptions; crashes; hangs; ...) and writes the figures, and every case
that broke the property or could not be verified, to JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the fuzzing package lives at the repository root
    sys.path.insert(0, str(REPO))

from fuzzing.cases import LOADERS  # noqa: E402
from fuzzing.corpus import shared_corpus_dir  # noqa: E402
from fuzzing.harness import (  # noqa: E402
    LoaderRun,
    run_hypothesis,
    run_loader,
    summary_table,
)

RESULTS = Path(__file__).parent / "results"
LISTED = 100  # cases listed per loader and kind in the JSON


def _run_json(run: LoaderRun) -> dict[str, Any]:
    return {
        "programs": len(run.outcomes),
        "seconds": round(run.seconds, 1),
        "programs_per_second": round(len(run.outcomes) / max(run.seconds, 1e-9), 1),
        "workers_started": run.workers_started,
        "counts": run.counts(),
        "bad": [o.to_json() for o in run.bad()[:LISTED]],
        "unverified": [o.to_json() for o in run.outcomes if o.outcome == "unverified"][:LISTED],
    }


def _atheris(seconds: int, corpus: Path) -> dict[str, Any]:
    if importlib.util.find_spec("atheris") is None:
        print("atheris is not installed: coverage-guided run skipped (pip install atheris)")
        return {"skipped": "atheris is not installed"}
    cmd = [
        sys.executable,
        "-m",
        "fuzzing.atheris_target",
        "--corpus",
        str(corpus),
        "--",
        f"-max_total_time={seconds}",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    log = proc.stderr
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"\bcov: (\d+)", log)
    finding = proc.returncode != 0
    result = {
        "seconds": round(time.monotonic() - t0, 1),
        "inputs": int(runs[-1]) if runs else None,
        "coverage_edges": int(cov[-1]) if cov else None,
        "exit_status": proc.returncode,
        "finding": log[-3000:] if finding else None,
    }
    status = "a finding (see the JSON)" if finding else "nothing found"
    print(f"atheris: {result['inputs']} inputs in {result['seconds']} s, {status}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--programs", type=int, default=50_000, help="seeded mutants per loader")
    parser.add_argument("--loaders", default=",".join(LOADERS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case number")
    parser.add_argument("--hypothesis", type=int, default=0, help="examples per loader")
    parser.add_argument("--atheris", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--json", type=Path, default=RESULTS / "fuzz_long.json")
    args = parser.parse_args(argv)
    loaders = [name for name in args.loaders.split(",") if name]
    unknown = sorted(set(loaders) - set(LOADERS))
    if unknown:
        parser.error(f"unknown loaders {unknown}; choose from {list(LOADERS)}")

    corpus = shared_corpus_dir()
    import torch

    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/fuzz_long.py", *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "seed": args.seed,
        "jobs": args.jobs,
        "seeded": {},
        "hypothesis": {},
    }
    seeded: list[LoaderRun] = []
    for loader in loaders:
        run = run_loader(
            loader,
            args.programs,
            corpus,
            seed=args.seed,
            jobs=args.jobs,
            start=args.start,
            time_limit=args.time_limit,
        )
        seeded.append(run)
        report["seeded"][loader] = _run_json(run)
        print(summary_table([run]).splitlines()[-1], flush=True)
    print("\nSeeded mutants:\n" + summary_table(seeded))
    if args.hypothesis:
        chosen = []
        for loader in loaders:
            hyp = run_hypothesis(loader, args.hypothesis, corpus, time_limit=args.time_limit)
            chosen.append(hyp)
            report["hypothesis"][loader] = {**_run_json(hyp), "falsified": hyp.falsified}
        print("\nChosen by hypothesis:\n" + summary_table(chosen))
    if args.atheris:
        report["atheris"] = _atheris(args.atheris, corpus)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    bad = sum(len(r.bad()) for r in seeded)
    bad += sum(len(v["bad"]) for v in report["hypothesis"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
