"""The kit's public names, for type checkers; ``__init__.py`` loads each on first use.

lazy_loader reads this file at import: it may hold only ``from .module import name as name``
lines.
"""

from ._main import main as main
from ._values import InputSpec as InputSpec
from ._values import make_input as make_input
from .catalog import CATALOG as CATALOG
from .catalog import OpSpec as OpSpec
from .compare import Comparison as Comparison
from .compare import Tolerances as Tolerances
from .compare import compare_outputs as compare_outputs
from .report import Report as Report
from .runner import Case as Case
from .runner import Checker as Checker
from .runner import Outcome as Outcome
from .skips import SkipList as SkipList
from .strategies import GeneratedProgram as GeneratedProgram
from .strategies import GenerationConfig as GenerationConfig
from .strategies import input_specs as input_specs
from .strategies import programs as programs
from .strategies import torchbind_programs as torchbind_programs

__all__: list[str]
