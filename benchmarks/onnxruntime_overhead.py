"""The onnxruntime executor side by side with a raw ``InferenceSession`` and with eager PyTorch.

Usage::

    python benchmarks/onnxruntime_overhead.py [--quick] [--json PATH]

For each workload, on one thread (``torch.set_num_threads(1)``, ONNX Runtime's intra- and
inter-op threads 1), the same exported ONNX model is called four ways:

* ``runner``: the executor's runner (``executor.prepare(program, options)``), the hot path;
* ``prepared``: ``torchexec.prepare(...)`` called as users do (adds the core's input checks);
* ``raw``: an ``onnxruntime.InferenceSession`` opened by hand on the same model bytes, called as
  ``session.run(None, {name: x.numpy()})`` (numpy views of the inputs, numpy outputs);
* ``eager``: the workload's eager forward (``model(x)``; ``gm.forward`` for the chain).

Workloads: ``demo_mlp`` (``torchexec._demo.DemoModel``, input [32, 64]) and ``chain200`` (a
200-node chain of small elementwise operators on 16 elements). Targets: runner <= 1.10x of raw,
and the demo MLP on onnxruntime <= 0.5x of eager.

Each ratio is the median of per-round ratios of alternating rounds, so that load that comes and
goes on the machine hits both sides alike. Results go to the terminal and, with ``--json``, to a
file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort  # type: ignore[import-untyped]
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # for the benchmarks package (shared workloads)
    sys.path.insert(0, str(REPO))

import torchexec  # noqa: E402
from benchmarks.programs import chain_program  # noqa: E402
from torchexec._demo import DemoModel  # noqa: E402
from torchexec._timing import side_by_side  # noqa: E402

OPTIONS = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


def raw_session(program: torchexec.Program) -> ort.InferenceSession:
    """A session opened by hand on the model the executor exports for ``program``."""
    from torchexec_onnxruntime._export import export_program

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(
        export_program(program).model, so, providers=["CPUExecutionProvider"]
    )


def measure(
    name: str, program_source: object, eager: Callable[[], object], x: torch.Tensor, quick: bool
) -> dict[str, Any]:
    """The four ways of calling one workload, side by side."""
    program = torchexec.normalize(program_source, (x,))
    executor = torchexec.get_executor("onnxruntime")
    t0 = time.perf_counter()
    runner = executor.prepare(program, executor.validate_options(OPTIONS))
    prepare_s = time.perf_counter() - t0
    prepared = torchexec.prepare(program, x, executor="onnxruntime", executor_parameters=OPTIONS)
    session = raw_session(program)
    input_name = session.get_inputs()[0].name

    def raw() -> object:
        return session.run(None, {input_name: x.numpy()})

    expected = torch.as_tensor(eager())
    got = torch.as_tensor(runner(x)[0])
    max_diff = float((got.double() - expected.double()).abs().max())
    number, rounds = (200, 3) if quick else (2000, 9)
    run_s, raw_s, run_vs_raw = side_by_side(lambda: runner(x), raw, number, rounds)
    prep_s, _, prep_vs_raw = side_by_side(lambda: prepared(x), raw, number, rounds)
    _, eager_s, run_vs_eager = side_by_side(lambda: runner(x), eager, number, rounds)
    _, _, raw_vs_eager = side_by_side(raw, eager, number, rounds)
    return {
        "workload": name,
        "prepare_s": prepare_s,
        "max_abs_diff_vs_eager": max_diff,
        "us_per_call": {
            "runner": run_s * 1e6,
            "prepared": prep_s * 1e6,
            "raw": raw_s * 1e6,
            "eager": eager_s * 1e6,
        },
        "runner_vs_raw": run_vs_raw,
        "prepared_vs_raw": prep_vs_raw,
        "runner_vs_eager": run_vs_eager,
        "raw_vs_eager": raw_vs_eager,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="fewer calls and rounds (smoke run)")
    p.add_argument("--json", type=Path, default=None, help="where to write the JSON results")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = DemoModel().eval()
    x = torch.randn(32, 64)
    gm, (cx,) = chain_program(200)
    with torch.no_grad():
        rows = [
            measure("demo_mlp", model, lambda: model(x), x, args.quick),
            measure("chain200", gm, lambda: gm(cx), cx, args.quick),
        ]
    results = {
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "threads": 1,
        "workloads": rows,
    }
    header = ("WORKLOAD", "RUNNER US", "PREPARED US", "RAW US", "EAGER US", "RUNNER/RAW",
              "PREPARED/RAW", "RUNNER/EAGER", "RAW/EAGER")  # fmt: skip
    print("  ".join(f"{h:>12}" for h in header))
    for r in rows:
        us = r["us_per_call"]
        cells = [r["workload"], *(f"{us[k]:.1f}" for k in ("runner", "prepared", "raw", "eager"))]
        cells += [f"{r[k]:.2f}x" for k in ("runner_vs_raw", "prepared_vs_raw")]
        cells += [f"{r[k]:.2f}x" for k in ("runner_vs_eager", "raw_vs_eager")]
        print("  ".join(f"{c:>12}" for c in cells))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
