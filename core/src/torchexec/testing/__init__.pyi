"""The kit's public names, for type checkers; ``__init__.py`` loads each on first use.

lazy_loader reads this file at import: it may hold only ``from .module import name as name``
lines.
"""

from ._main import main as main
from ._values import InputSpec as InputSpec, make_input as make_input
from .catalog import CATALOG as CATALOG, OpSpec as OpSpec
from .compare import (
    Comparison as Comparison,
    Tolerances as Tolerances,
    compare_outputs as compare_outputs,
)
from .report import Report as Report
from .runner import Case as Case, Checker as Checker, Outcome as Outcome
from .skips import SkipList as SkipList
from .strategies import (
    GeneratedProgram as GeneratedProgram,
    GenerationConfig as GenerationConfig,
    input_specs as input_specs,
    programs as programs,
    torchbind_programs as torchbind_programs,
)

__all__: list[str]
