"""The ``proxy`` executor: load the program's JSON into a plan once, then run the plan."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torchexec import Capabilities, InvalidOptionsError, OptionSpec, Program, validate_options
from torchexec_proxy._api import load_plan
from torchexec_proxy._runner import ProxyRunner

__all__ = ["CAPABILITIES", "DESCRIPTION", "ProxyExecutor"]

DESCRIPTION = "Runs serialized ExportedProgram JSON node by node through the dispatcher"
CAPABILITIES = Capabilities(devices=("cpu", "cuda"), torchbind=True, bitwise=True)


class ProxyExecutor:
    """The proxy executor (``executor="proxy"``).

    Options:
        allowed_namespaces: operator namespaces allowed besides ``aten`` and ``prims``.
        custom_objs: TorchBind objects by the names the program gives them.
        allow_pickle: read ``.pt2`` payloads stored with Python pickle.
    """

    name = "proxy"
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = (
        OptionSpec(
            "allowed_namespaces",
            (list, tuple),
            (),
            "operator namespaces allowed besides aten and prims (list of str)",
        ),
        OptionSpec(
            "custom_objs",
            (Mapping,),
            MappingProxyType({}),
            "TorchBind objects by the names the program gives them (mapping)",
        ),
        OptionSpec(
            "allow_pickle",
            (bool,),
            False,
            "read .pt2 payloads stored with Python pickle (can run arbitrary code)",
        ),
    )

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Check option names and types; namespaces must be strings, object names strings."""
        out = validate_options(self.name, self.options, options)
        namespaces = out["allowed_namespaces"]
        assert isinstance(namespaces, (list, tuple))
        for ns in namespaces:
            if not isinstance(ns, str):
                raise InvalidOptionsError(
                    f"Option 'allowed_namespaces' of executor 'proxy' must hold strings, got "
                    f"{type(ns).__name__} ({ns!r})."
                )
        objs = out["custom_objs"]
        assert isinstance(objs, Mapping)
        for key in objs:
            if not isinstance(key, str):
                raise InvalidOptionsError(
                    f"Option 'custom_objs' of executor 'proxy' must map names (str) to "
                    f"objects, got the key {key!r}."
                )
        return out

    def prepare(self, program: Program, options: Mapping[str, object]) -> ProxyRunner:
        """Load and validate the program's JSON, then build its runner."""
        opts: dict[str, Any] = dict(options)
        plan = load_plan(
            program,
            custom_objs=opts.get("custom_objs"),
            allowed_namespaces=tuple(opts.get("allowed_namespaces") or ()),
            allow_pickle=bool(opts.get("allow_pickle", False)),
        )
        return ProxyRunner(plan)
