"""The public API of torchexec, for type checkers; ``__init__.py`` loads each name on first use.

lazy_loader reads this file at import: it may hold only ``from .module import name as name``
lines (and annotations).
"""

from ._api import (
    ExecutorChoice as ExecutorChoice,
    PreparedProgram as PreparedProgram,
    TensorSpec as TensorSpec,
    cache_info as cache_info,
    clear_cache as clear_cache,
    execute as execute,
    explain as explain,
    prepare as prepare,
    set_cache_size as set_cache_size,
)
from ._cache import CacheInfo as CacheInfo
from ._compile import backend as backend
from ._errors import (
    DuplicateExecutorError as DuplicateExecutorError,
    ExecutorError as ExecutorError,
    ExecutorLoadError as ExecutorLoadError,
    ExecutorNotFoundError as ExecutorNotFoundError,
    InputMismatchError as InputMismatchError,
    InvalidOptionsError as InvalidOptionsError,
    ProgramError as ProgramError,
    TorchexecError as TorchexecError,
    UnsupportedOperatorError as UnsupportedOperatorError,
)
from ._executor import (
    Capabilities as Capabilities,
    Executor as Executor,
    OptionSpec as OptionSpec,
    Runner as Runner,
    validate_options as validate_options,
)
from ._placement import PartitionInfo as PartitionInfo, Placement as Placement
from ._program import (
    GraphOutput as GraphOutput,
    Program as Program,
    SerializedProgram as SerializedProgram,
    normalize as normalize,
)
from ._registry import (
    ExecutorInfo as ExecutorInfo,
    ExecutorSpec as ExecutorSpec,
    Registration as Registration,
    get_executor as get_executor,
    list_executors as list_executors,
    register_executor as register_executor,
)
from ._traced import Traced as Traced, make_traced as make_traced
from .hookspecs import PLUGIN_API_VERSION as PLUGIN_API_VERSION, hookimpl as hookimpl

__version__: str

__all__: list[str]
