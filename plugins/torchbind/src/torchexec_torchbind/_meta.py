"""What the registry shows of the ``torchbind`` executor, stated once for the plugin module and
the executor class (imported by the plugin module, so kept free of torch)."""

from __future__ import annotations

from torchexec import Capabilities

__all__ = ["CAPABILITIES", "DESCRIPTION", "NAME"]

NAME = "torchbind"
DESCRIPTION = "Runs the program inside a C++ TorchBind engine (torch.classes.torchexec.Engine)"
CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    torchbind=True,
    bitwise=True,
    capture_safe=True,
    unsupported_ops=frozenset(
        {
            "higher_order::auto_functionalized",
            "higher_order::auto_functionalized_v2",
            "higher_order::with_effects",
        }
    ),
)
"""The engine runs the higher-order operators ``call_torchbind``, ``cond``, ``while_loop``,
``map_impl``, ``scan`` and ``invoke_subgraph``; ``unsupported_ops`` lists the others the
proxy runs."""
