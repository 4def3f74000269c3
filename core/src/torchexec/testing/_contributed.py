"""The operators installed plugins contribute to the kit (hook ``torchexec_conformance_ops``)."""

from __future__ import annotations

from torchexec._errors import TorchexecError
from torchexec._registry import REGISTRY
from torchexec.testing._builder import OpSpec

__all__ = ["contributed_ops"]


def contributed_ops() -> list[OpSpec]:
    """Every operator the installed plugins register through ``torchexec_conformance_ops``, in
    discovery order.

    Raises:
        torchexec.ExecutorLoadError: a plugin cannot load what its operators need (raised by
            the plugin's hook).
        torchexec.TorchexecError: a plugin registered something that is not an ``OpSpec``.
    """
    ops: list[OpSpec] = []
    for distribution, hooks in REGISTRY.plugin_hooks():

        def register(spec: OpSpec, distribution: str = distribution) -> None:
            if not isinstance(spec, OpSpec):
                raise TorchexecError(
                    f"distribution {distribution} registered a {type(spec).__name__} through "
                    "torchexec_conformance_ops; expected a torchexec.testing.OpSpec"
                )
            ops.append(spec)

        hooks.torchexec_conformance_ops(register=register)
    return ops
