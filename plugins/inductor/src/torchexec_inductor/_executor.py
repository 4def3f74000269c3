"""The ``inductor`` executor: AOTInductor packages, compiled once per program and cached on disk."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.utils._pytree as pytree

from torchexec import OptionSpec, Program, validate_options
from torchexec_inductor import CAPABILITIES, DESCRIPTION
from torchexec_inductor._cache import PackageCache, cache_root, canonical_program, program_key
from torchexec_inductor._compile import compile_package, load_package
from torchexec_inductor._inputs import InputChecker, user_inputs
from torchexec_inductor._lift import LiftedState, compile_program, written_placeholders
from torchexec_inductor._runner import InductorRunner

__all__ = ["InductorExecutor"]


class InductorExecutor:
    """Compiles programs with AOTInductor (``executor="inductor"``)."""

    name = "inductor"
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = (
        OptionSpec("max_autotune", (bool,), False, "benchmark kernel choices while compiling"),
        OptionSpec("cache", (bool,), True, "keep compiled packages in $TORCHEXEC_CACHE_DIR"),
    )

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """``max_autotune`` and ``cache``, both booleans."""
        return validate_options(self.name, self.options, options)

    def prepare(self, program: Program, options: Mapping[str, object]) -> InductorRunner:
        """Load the program's package from the disk cache, compiling it on a miss."""
        ep = program.exported_program()
        written = written_placeholders(ep)
        checker = InputChecker(ep, user_inputs(ep, written))
        lifted = LiftedState.of(ep, written)

        def build(path: Path) -> None:
            compile_package(compile_program(ep, lifted, _examples(ep, checker)), path, options)

        if not options["cache"]:
            with tempfile.TemporaryDirectory(prefix="torchexec-inductor-") as tmp:
                path = Path(tmp) / "model.pt2"
                build(path)
                model = load_package(path)
        else:
            serialized = program.serialized()
            # Buffers are inputs of the package, not part of it: their values are not hashed.
            tensors = [*serialized.weights.items(), *serialized.constants.items()]
            key = program_key(
                canonical_program(serialized.model_json),
                [(k, v) for k, v in tensors if k not in lifted.names],
                {k: v for k, v in options.items() if k != "cache"},
                {"lifted": lifted.names},
            )
            model = PackageCache(cache_root()).get_or_build(
                key, build, load_package, {"program": program.name}
            )
        return InductorRunner(model, checker, lifted.tensors)


def _examples(ep: Any, checker: InputChecker) -> list[object]:
    """The program's stored example inputs, or made-up ones that fit its input spec."""
    if ep.example_inputs is not None:
        leaves, spec = pytree.tree_flatten(ep.example_inputs)
        if spec == ep.call_spec.in_spec:
            return list(leaves)
    return checker.example()
