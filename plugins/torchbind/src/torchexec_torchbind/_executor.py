"""The ``torchbind`` executor: plan once (shared with the proxy), run inside the C++ engine."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torchexec import InvalidOptionsError, OptionSpec, Program, validate_options
from torchexec_torchbind._engine import EngineRunner, build_engine
from torchexec_torchbind._inputs import input_specs_from_document
from torchexec_torchbind._library import load_library
from torchexec_torchbind._meta import CAPABILITIES, DESCRIPTION

__all__ = ["TorchbindExecutor"]


class TorchbindExecutor:
    """``executor="torchbind"``: each prepared program is one ``torch.classes.torchexec.Engine``."""

    name = "torchbind"
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = (
        OptionSpec(
            "allowed_namespaces",
            (list, tuple),
            (),
            "operator namespaces allowed besides aten and prims (names, e.g. ['my_ops'])",
        ),
        OptionSpec(
            "custom_objs",
            (Mapping,),
            MappingProxyType({}),
            "TorchBind objects by the program's custom-object names (replace or supply them)",
        ),
        OptionSpec(
            "allow_pickle",
            (bool,),
            False,
            "allow program payloads that need Python pickle (only for trusted files)",
        ),
    )

    def __init__(self) -> None:
        load_library()

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Check the options; ``allowed_namespaces`` must hold names, ``custom_objs`` str keys."""
        out = validate_options(self.name, self.options, options)
        namespaces = out["allowed_namespaces"]
        assert isinstance(namespaces, (list, tuple))
        for ns in namespaces:
            if not isinstance(ns, str) or not ns.isidentifier():
                raise InvalidOptionsError(
                    f"Option 'allowed_namespaces' of executor 'torchbind' must hold namespace "
                    f"names such as 'my_ops', got {ns!r}."
                )
        out["allowed_namespaces"] = tuple(namespaces)
        objs = out["custom_objs"]
        assert isinstance(objs, Mapping)
        for key in objs:
            if not isinstance(key, str):
                raise InvalidOptionsError(
                    "Option 'custom_objs' of executor 'torchbind' must map custom-object "
                    f"names (str) to TorchBind objects, got the key {key!r}."
                )
        return out

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
        specs = input_specs_from_document(program.model_document())
        # The engine enforces the same allow-list as the loader.
        engine = build_engine(
            plan, allowed_namespaces=normalize_namespaces(extra), input_specs=specs
        )
        return EngineRunner(engine)
