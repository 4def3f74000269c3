"""What the registry shows of the ``aten`` executor, stated once for the plugin module and the
executor class (imported by the plugin module, so kept free of torch)."""

from __future__ import annotations

from torchexec import Capabilities

__all__ = ["CAPABILITIES", "DESCRIPTION", "NAME"]

NAME = "aten"
DESCRIPTION = "Reference: runs the ATen graph forward in eager PyTorch"
CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"), torchbind=True, bitwise=True, capture_safe=True
)
