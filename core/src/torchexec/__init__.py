"""torchexec: run PyTorch programs on interchangeable, pip-installable executors.

>>> import torch, torchexec
>>> from torch.fx.experimental.proxy_tensor import make_fx
>>> gm = make_fx(lambda a, b: torch.relu(a + b))(torch.randn(3), torch.randn(3))
>>> out = torchexec.execute(gm, torch.randn(3), torch.randn(3), executor="aten")
"""

from torchexec._api import (
    PreparedProgram,
    TensorSpec,
    cache_info,
    clear_cache,
    execute,
    prepare,
    set_cache_size,
)
from torchexec._cache import CacheInfo
from torchexec._errors import (
    DuplicateExecutorError,
    ExecutorError,
    ExecutorLoadError,
    ExecutorNotFoundError,
    InputMismatchError,
    InvalidOptionsError,
    ProgramError,
    TorchexecError,
)
from torchexec._executor import Capabilities, Executor, OptionSpec, Runner, validate_options
from torchexec._program import Program, SerializedProgram, normalize
from torchexec._registry import (
    ExecutorInfo,
    ExecutorSpec,
    Registration,
    get_executor,
    list_executors,
    register_executor,
)
from torchexec._traced import Traced, make_traced
from torchexec.hookspecs import PLUGIN_API_VERSION, hookimpl

__version__ = "0.1.0"

__all__ = [
    "PLUGIN_API_VERSION",
    "CacheInfo",
    "Capabilities",
    "DuplicateExecutorError",
    "Executor",
    "ExecutorError",
    "ExecutorInfo",
    "ExecutorLoadError",
    "ExecutorNotFoundError",
    "ExecutorSpec",
    "InputMismatchError",
    "InvalidOptionsError",
    "OptionSpec",
    "PreparedProgram",
    "Program",
    "ProgramError",
    "Registration",
    "Runner",
    "SerializedProgram",
    "TensorSpec",
    "TorchexecError",
    "Traced",
    "cache_info",
    "clear_cache",
    "execute",
    "get_executor",
    "hookimpl",
    "list_executors",
    "make_traced",
    "normalize",
    "prepare",
    "register_executor",
    "set_cache_size",
    "validate_options",
]
