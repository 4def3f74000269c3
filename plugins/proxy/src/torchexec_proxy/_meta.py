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
    unsupported_ops=frozenset(
        {
            "higher_order::auto_functionalized",
            "higher_order::auto_functionalized_v2",
            "higher_order::with_effects",
            "higher_order::invoke_subgraph",
        }
    ),
)
"""Higher-order operators: ``call_torchbind``, ``cond``, ``while_loop``, ``map_impl`` and
``scan`` run; ``unsupported_ops`` lists the other ones torch.export produces."""
