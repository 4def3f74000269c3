"""What the registry shows of the executor (imported by the plugin module, so kept tiny)."""

from __future__ import annotations

from torchexec import Capabilities

__all__ = ["CAPABILITIES", "DESCRIPTION"]

DESCRIPTION = "Runs the program inside a C++ TorchBind engine (torch.classes.torchexec.Engine)"
CAPABILITIES = Capabilities(devices=("cpu", "cuda"), torchbind=True, bitwise=True)
