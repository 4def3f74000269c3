"""The public API of torchexec, for type checkers; ``__init__.py`` loads each name on first use.

lazy_loader reads this file at import: it may hold only ``from .module import name as name``
lines (and annotations).
"""

from ._api import (
    PreparedProgram as PreparedProgram,
)
from ._api import (
    TensorSpec as TensorSpec,
)
from ._api import (
    cache_info as cache_info,
)
from ._api import (
    clear_cache as clear_cache,
)
from ._api import (
    execute as execute,
)
from ._api import (
    prepare as prepare,
)
from ._api import (
    set_cache_size as set_cache_size,
)
from ._cache import CacheInfo as CacheInfo
from ._errors import (
    DuplicateExecutorError as DuplicateExecutorError,
)
from ._errors import (
    ExecutorError as ExecutorError,
)
from ._errors import (
    ExecutorLoadError as ExecutorLoadError,
)
from ._errors import (
    ExecutorNotFoundError as ExecutorNotFoundError,
)
from ._errors import (
    InputMismatchError as InputMismatchError,
)
from ._errors import (
    InvalidOptionsError as InvalidOptionsError,
)
from ._errors import (
    ProgramError as ProgramError,
)
from ._errors import (
    TorchexecError as TorchexecError,
)
from ._executor import (
    Capabilities as Capabilities,
)
from ._executor import (
    Executor as Executor,
)
from ._executor import (
    OptionSpec as OptionSpec,
)
from ._executor import (
    Runner as Runner,
)
from ._executor import (
    validate_options as validate_options,
)
from ._program import (
    Program as Program,
)
from ._program import (
    SerializedProgram as SerializedProgram,
)
from ._program import (
    normalize as normalize,
)
from ._registry import (
    ExecutorInfo as ExecutorInfo,
)
from ._registry import (
    ExecutorSpec as ExecutorSpec,
)
from ._registry import (
    Registration as Registration,
)
from ._registry import (
    get_executor as get_executor,
)
from ._registry import (
    list_executors as list_executors,
)
from ._registry import (
    register_executor as register_executor,
)
from ._traced import Traced as Traced
from ._traced import make_traced as make_traced
from .hookspecs import PLUGIN_API_VERSION as PLUGIN_API_VERSION
from .hookspecs import hookimpl as hookimpl

__version__: str

__all__: list[str]
