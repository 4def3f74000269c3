"""The ``torchbind`` executor: plan once (shared with the proxy), run inside the C++ engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchexec import OptionSpec, Program
from torchexec_proxy import options as shared_options
from torchexec_proxy.claims import supports_node
from torchexec_proxy.collectives import bind_process_groups
from torchexec_torchbind._encode import ENGINE_HOPS
from torchexec_torchbind._engine import EngineRunner, build_engine
from torchexec_torchbind._inputs import input_specs_from_document
from torchexec_torchbind._library import load_library
from torchexec_torchbind._meta import CAPABILITIES, DESCRIPTION, NAME

__all__ = ["TorchbindExecutor"]


class TorchbindExecutor:
    """``executor="torchbind"``: each prepared program is one ``torch.classes.torchexec.Engine``.

    It takes the proxy's options (:data:`torchexec_proxy.options.OPTIONS`) and claims the nodes
    the proxy's loader runs: the engine runs every plan the loader builds.
    """

    name = NAME
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = shared_options.OPTIONS

    def __init__(self) -> None:
        load_library()

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Check the options; ``allowed_namespaces`` must hold names, ``custom_objs`` str keys."""
        return shared_options.validate(self.name, options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool:
        """Claim operators of the allow-list (``aten``, ``prims`` and the ``allowed_namespaces``
        option), TorchBind method calls and SymInt arithmetic
        (:func:`torchexec_proxy.claims.supports_node`), and the higher-order operators the
        engine runs (:data:`~torchexec_torchbind.ENGINE_HOPS`)."""
        extra = options.get("allowed_namespaces") or ()
        return supports_node(
            node, extra if isinstance(extra, (tuple, list)) else (), higher_order=ENGINE_HOPS
        )

    def prepare(self, program: Program, options: Mapping[str, object]) -> EngineRunner:
        """Plan the program (``torchexec_proxy.load_plan``) and build its engine."""
        from torchexec_proxy import load_plan, normalize_namespaces

        opts: dict[str, Any] = dict(options)
        extra = tuple(opts.get("allowed_namespaces") or ())
        plan = load_plan(
            program,
            custom_objs=opts.get("custom_objs"),
            allowed_namespaces=extra,
            allow_pickle=bool(opts.get("allow_pickle", False)),
        )
        plan = bind_process_groups(plan, opts["process_groups"])
        specs = input_specs_from_document(program.model_document())
        # The engine enforces the same allow-list as the loader.
        limit = opts.get("max_loop_iterations")
        engine = build_engine(
            plan,
            allowed_namespaces=normalize_namespaces(extra),
            input_specs=specs,
            max_loop_iterations=limit if isinstance(limit, int) else None,
        )
        return EngineRunner(engine)
