"""What the registry shows of the ``torchbind`` executor, stated once for the plugin module and
the executor class (imported by the plugin module, so kept free of torch)."""

from __future__ import annotations

from torchexec import Capabilities

__all__ = ["CAPABILITIES", "DESCRIPTION", "NAME"]

NAME = "torchbind"
DESCRIPTION = "Runs the program inside a C++ TorchBind engine (torch.classes.torchexec.Engine)"
CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"), torchbind=True, bitwise=True, capture_safe=True
)
