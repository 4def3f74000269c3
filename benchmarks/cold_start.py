"""Cold start: a fresh process that runs a ``.pt2`` archive on each executor, against one that
only imports torch.

Usage::

    python benchmarks/cold_start.py [--rounds 7] [--executors aten,proxy,torchbind]
                                    [--model PATH] [--json benchmarks/results/cold_start.json]

Each round starts, in a rotating order, one fresh ``python -c "import torch"`` and, per executor,
one fresh ``torchexec run MODEL --executor E --repeat 1`` (which imports torch and torchexec,
reads the archive and its sample inputs, prepares the program and calls it twice). The figure
per executor is the median over rounds of its wall time minus that round's ``import torch``, and
the same for the CPU time (user + system) of the process, which a busy machine disturbs less
than the wall time; the ``prepare`` column is what the command itself reports. Without
``--model`` a two-node model with a buffer is exported to a temporary archive. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
GOAL_S = 0.3
"""What proxy and torchbind may add over ``import torch`` (issue 17)."""

_PREPARE = re.compile(r"^prepare\s+([0-9.]+) ms$", re.MULTILINE)


def build_model(path: Path) -> None:
    """Export a two-node model (``relu(x + buffer)``) with its sample inputs to ``path``."""
    import torch

    class TwoNodes(torch.nn.Module):
        shift: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("shift", torch.full((8,), 0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + self.shift).relu()

    ep = torch.export.export(TwoNodes(), (torch.randn(8),), strict=False)
    torch.export.save(ep, path)


def torchexec_command() -> list[str]:
    """The installed ``torchexec`` script beside this interpreter, else ``python -m``."""
    script = shutil.which("torchexec", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "torchexec._cli"]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds of a fresh process running ``cmd``, and its output."""
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    cpu = _children_cpu_s() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall, cpu, proc.stdout


def measure(model: Path, executors: list[str], rounds: int) -> dict[str, Any]:
    """Alternate the baseline and the executors for ``rounds`` rounds; medians per executor."""
    baseline = [sys.executable, "-c", "import torch"]
    run = [*torchexec_command(), "run", str(model), "--repeat", "1", "--executor"]
    names = ["import torch", *executors]
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    prepares: dict[str, list[float]] = {e: [] for e in executors}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            wall, cpu, out = timed(baseline if name == "import torch" else [*run, name])
            walls[name].append(wall)
            cpus[name].append(cpu)
            found = _PREPARE.search(out)
            if name in prepares and found:
                prepares[name].append(float(found.group(1)))
    base, base_cpu = walls["import torch"], cpus["import torch"]
    rows: dict[str, Any] = {
        "import torch": {"wall_s": statistics.median(base), "cpu_s": statistics.median(base_cpu)}
    }
    for e in executors:
        rows[e] = {
            "wall_s": statistics.median(walls[e]),
            "over_import_torch_s": statistics.median(
                w - b for w, b in zip(walls[e], base, strict=True)
            ),
            "cpu_s": statistics.median(cpus[e]),
            "cpu_over_import_torch_s": statistics.median(
                c - b for c, b in zip(cpus[e], base_cpu, strict=True)
            ),
            "prepare_ms": statistics.median(prepares[e]) if prepares[e] else None,
        }
    return {
        "rows": rows,
        "walls": walls,
        "cpus": cpus,
        "command": [*run, "E"],
        "baseline": baseline,
    }


def print_table(result: dict[str, Any], rounds: int) -> None:
    print(f"cold start, {rounds} alternating rounds, medians (fresh process each)")
    print(f"  baseline: {' '.join(result['baseline'])}")
    print(f"  executor: {' '.join(result['command'])}")
    print(
        f"{'process':<14} {'wall s':>8} {'+ over torch':>13} {'cpu s':>8} {'+ over torch':>13} "
        f"{'prepare ms':>11}"
    )
    for name, row in result["rows"].items():
        over, cpu_over, prep = (
            row.get("over_import_torch_s"),
            row.get("cpu_over_import_torch_s"),
            row.get("prepare_ms"),
        )
        print(
            f"{name:<14} {row['wall_s']:>8.3f} {'' if over is None else f'{over:+.3f}':>13} "
            f"{row['cpu_s']:>8.3f} {'' if cpu_over is None else f'{cpu_over:+.3f}':>13} "
            f"{'' if prep is None else f'{prep:.1f}':>11}"
        )


def _installed_executors() -> list[str]:
    import torchexec

    return [i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    p.add_argument("--executors", help="comma-separated names (default: every installed one)")
    p.add_argument("--model", type=Path, help="a .pt2 archive with sample inputs")
    p.add_argument(
        "--json", type=Path, default=RESULTS / "cold_start.json", help="where to write JSON"
    )
    args = p.parse_args(argv)
    executors = args.executors.split(",") if args.executors else _installed_executors()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "two_nodes.pt2"
            build_model(model)
        result = measure(model, executors, args.rounds)
    print_table(result, args.rounds)
    for e in ("proxy", "torchbind"):
        row = result["rows"].get(e)
        if row is not None:
            verdict = "meets" if row["over_import_torch_s"] <= GOAL_S else "misses"
            print(f"{e} {verdict} the goal of <= {GOAL_S} s (wall) over import torch")
    import torch

    result["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    result["rounds"] = args.rounds
    result["model"] = str(args.model) if args.model else "two-node model (relu(x + buffer))"
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
