"""What the registry shows of the ``proxy`` executor, stated once for the plugin module and the
executor class (imported by the plugin module, so kept free of torch)."""

from __future__ import annotations

from torchexec import Capabilities

__all__ = ["CAPABILITIES", "DESCRIPTION", "NAME"]

NAME = "proxy"
DESCRIPTION = "Runs serialized ExportedProgram JSON node by node through the dispatcher"
CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    torchbind=True,
    bitwise=True,
    capture_safe=True,
)
"""The higher-order operators the proxy runs: ``call_torchbind``, ``cond``, ``while_loop``,
``map_impl``, ``scan``, ``invoke_subgraph``, ``auto_functionalized``, ``auto_functionalized_v2``
and ``with_effects``; it refuses any other at load, naming it."""
