"""The ``proxy`` executor: load the program's JSON into a plan once, then run the plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchexec import OptionSpec, Program
from torchexec_proxy import options as shared_options
from torchexec_proxy._api import load_plan
from torchexec_proxy._meta import CAPABILITIES, DESCRIPTION, NAME
from torchexec_proxy._runner import ProxyRunner
from torchexec_proxy.claims import supports_node
from torchexec_proxy.collectives import bind_process_groups

__all__ = ["ProxyExecutor"]


class ProxyExecutor:
    """The proxy executor (``executor="proxy"``).

    Options (:data:`torchexec_proxy.options.OPTIONS`):
        allowed_namespaces: operator namespaces allowed besides ``aten`` and ``prims``.
        custom_objs: TorchBind objects by the names the program gives them.
        allow_pickle: read ``.pt2`` payloads stored with Python pickle.
        process_groups: process groups by the names the program's collectives use.
        max_loop_iterations: bound on the iterations of each ``while_loop`` (``None``: none).
    """

    name = NAME
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = shared_options.OPTIONS

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Check option names and types; namespaces must be names, object names strings."""
        return shared_options.validate(self.name, options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool:
        """Claim operators of the allow-list (``aten``, ``prims`` and the ``allowed_namespaces``
        option), TorchBind method calls and SymInt arithmetic
        (:func:`torchexec_proxy.claims.supports_node`)."""
        extra = options.get("allowed_namespaces") or ()
        return supports_node(node, extra if isinstance(extra, (tuple, list)) else ())

    def prepare(self, program: Program, options: Mapping[str, object]) -> ProxyRunner:
        """Load and validate the program's JSON, then build its runner."""
        opts: dict[str, Any] = dict(options)
        plan = load_plan(
            program,
            custom_objs=opts.get("custom_objs"),
            allowed_namespaces=tuple(opts.get("allowed_namespaces") or ()),
            allow_pickle=bool(opts.get("allow_pickle", False)),
        )
        plan = bind_process_groups(plan, opts["process_groups"])
        limit = opts.get("max_loop_iterations")
        return ProxyRunner(plan, max_loop_iterations=limit if isinstance(limit, int) else None)
