"""torchexec: run PyTorch programs on interchangeable, pip-installable executors.

>>> import torch, torchexec
>>> from torch.fx.experimental.proxy_tensor import make_fx
>>> gm = make_fx(lambda a, b: torch.relu(a + b))(torch.randn(3), torch.randn(3))
>>> out = torchexec.execute(gm, torch.randn(3), torch.randn(3), executor="aten")
"""

import lazy_loader

__version__ = "0.1.0"

# Importing torchexec is cheap (no torch): the names listed in __init__.pyi load on first use, so
# that the pytest plugin, the CLI's `list` and plugin registration stay fast.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
