"""Coverage-guided fuzzing of the JSON loaders with atheris (libFuzzer), when it is installed.

atheris mutates raw bytes, guided by which branches of the (instrumented) proxy loader each
input reaches; the seeds are the corpus's program JSON documents and extern-kernel documents.
Each input is loaded as ExportedProgram JSON (``load_plan_from_json``) and as extern-kernel JSON
(``ExternKernelProxy``); an accepted program is run once. The property checked here is the
load-time half: anything but ``ProgramError`` at load is a finding, and libFuzzer stops on it
(a crash stops it too). Run errors of accepted programs are left to the seeded and hypothesis
runs, which have references to judge them.

    .venv/bin/python -m fuzzing.atheris_target --corpus DIR -- -max_total_time=60
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; arguments after ``--`` go to libFuzzer."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra = args[args.index("--") + 1 :] if "--" in args else []
    ours = args[: args.index("--")] if "--" in args else args
    parser = argparse.ArgumentParser(description="atheris fuzzing of the JSON loaders")
    parser.add_argument("--corpus", type=Path, required=True)
    options = parser.parse_args(ours)

    atheris: Any = importlib.import_module("atheris")  # the caller checked it is installed

    with atheris.instrument_imports():
        import torchexec_proxy._convert
        import torchexec_proxy._extern
        import torchexec_proxy._json
        import torchexec_proxy._loader
        import torchexec_proxy._nodes  # noqa: F401

    import torch

    from torchexec import InputMismatchError, ProgramError
    from torchexec_proxy import ExternKernelProxy, ProxyRunner, load_plan_from_json

    from .corpus import load

    torch.set_num_threads(1)
    corpus = load(options.corpus)
    seeds = Path(tempfile.mkdtemp(prefix="torchexec-atheris-seeds-"))
    for item in corpus.programs:
        (seeds / f"{item.name}.json").write_bytes(item.model_json)
    for ext in corpus.externs:
        (seeds / f"extern_{ext.name}.json").write_text(ext.text)
    program = corpus.programs[0]

    def one_input(data: bytes) -> None:
        weights, constants = program.fresh_state()
        try:
            plan = load_plan_from_json(data, weights, constants)
        except ProgramError:
            plan = None
        if plan is not None:
            try:
                ProxyRunner(plan)(*program.fresh_inputs())
            except InputMismatchError:
                pass
            except Exception:  # judged by the runs that have a reference
                pass
        with contextlib.suppress(ProgramError):
            ExternKernelProxy(data, custom_objs={})

    fuzz_args: list[Any] = [sys.argv[0], *extra, str(seeds)]
    atheris.Setup(fuzz_args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
