"""torchexec's conformance kit: proves an executor computes what the ``aten`` reference does.

Run it on an installed executor::

    pytest --pyargs torchexec.testing --executor my_executor [--conformance-profile ci]
    torchexec check my_executor                     # the same, through torchexec.testing.main

Its parts are reusable: hypothesis strategies that build valid random ATen programs
(:mod:`torchexec.testing.strategies`, over the operator catalog in
:mod:`torchexec.testing.catalog`), the comparison rules (:mod:`torchexec.testing.compare`), the
runner that judges one program on several executors (:mod:`torchexec.testing.runner`), the
skips file (:mod:`torchexec.testing.skips`), contract checks (:mod:`torchexec.testing.contract`),
the OpInfo tier (:mod:`torchexec.testing.opinfo`) and the report
(:mod:`torchexec.testing.report`).

Importing this package is cheap (pytest imports its plugin in every run); the names below load
their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchexec.testing._main import main
    from torchexec.testing._values import InputSpec, make_input
    from torchexec.testing.catalog import CATALOG, OpSpec
    from torchexec.testing.compare import Comparison, Tolerances, compare_outputs
    from torchexec.testing.report import Report
    from torchexec.testing.runner import Case, Checker, Outcome
    from torchexec.testing.skips import SkipList
    from torchexec.testing.strategies import (
        GeneratedProgram,
        GenerationConfig,
        input_specs,
        programs,
        torchbind_programs,
    )

__all__ = [
    "CATALOG",
    "Case",
    "Checker",
    "Comparison",
    "GeneratedProgram",
    "GenerationConfig",
    "InputSpec",
    "OpSpec",
    "Outcome",
    "Report",
    "SkipList",
    "Tolerances",
    "compare_outputs",
    "input_specs",
    "main",
    "make_input",
    "programs",
    "torchbind_programs",
]

_WHERE = {
    "CATALOG": "catalog",
    "Case": "runner",
    "Checker": "runner",
    "Comparison": "compare",
    "GeneratedProgram": "strategies",
    "GenerationConfig": "strategies",
    "InputSpec": "_values",
    "OpSpec": "catalog",
    "Outcome": "runner",
    "Report": "report",
    "SkipList": "skips",
    "Tolerances": "compare",
    "compare_outputs": "compare",
    "input_specs": "strategies",
    "main": "_main",
    "make_input": "_values",
    "programs": "strategies",
    "torchbind_programs": "strategies",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'torchexec.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"torchexec.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
