"""The operator catalog: the ATen operators generated programs call, with their argument rules.

Each :class:`OpSpec` names an ATen overload and a *rule*: a function that draws arguments that
are valid for it (shapes that broadcast or multiply, dims in range, index values in bounds,
dtypes the CPU kernel supports) from the :class:`~torchexec.testing.strategies.Builder` of the
program being generated. The builder runs every call on real example tensors while it builds, so
a call the eager kernel rejects never reaches a program.

Plugins add operators of their own (TorchBind methods, custom operators) through the hook
``torchexec_conformance_ops`` (:mod:`torchexec.hookspecs`): their rules use the same builder,
:class:`Ref` for values of the program and :class:`ObjectSpec` for the TorchBind objects it holds.

>>> from torchexec.testing.catalog import CATALOG, by_name
>>> len(CATALOG) >= 60
True
>>> by_name("aten.add.Tensor").group
'binary'
"""

from __future__ import annotations

from collections.abc import Iterable

from torchexec.testing._builder import Args, OpSpec, Rule
from torchexec.testing._ir import ObjectSpec, Ref
from torchexec.testing._ops_compute import COMPUTE_OPS
from torchexec.testing._ops_elementwise import ELEMENTWISE_OPS
from torchexec.testing._ops_structure import STRUCTURE_OPS

__all__ = [
    "CATALOG",
    "GROUPS",
    "Args",
    "ObjectSpec",
    "OpSpec",
    "Ref",
    "Rule",
    "by_name",
    "select",
]

CATALOG: tuple[OpSpec, ...] = (*ELEMENTWISE_OPS, *STRUCTURE_OPS, *COMPUTE_OPS)
"""Every operator generated programs call, in a fixed order."""

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(op.group for op in CATALOG))
"""The operator families, in catalog order."""

_BY_NAME = {op.name: op for op in CATALOG}


def by_name(name: str) -> OpSpec:
    """The catalog entry called ``name`` (``aten.add.Tensor``).

    Raises:
        KeyError: naming the closest catalog entries.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
        raise KeyError(f"no operator {name!r} in the catalog; close: {close}") from None


def select(names: Iterable[str] | None = None, groups: Iterable[str] | None = None) -> list[OpSpec]:
    """Catalog entries by name and/or group (all of them when both are ``None``)."""
    ops = list(CATALOG)
    if names is not None:
        ops = [by_name(n) for n in names]
    if groups is not None:
        wanted = set(groups)
        unknown = wanted - set(GROUPS)
        if unknown:
            raise KeyError(f"unknown operator groups {sorted(unknown)}; known: {list(GROUPS)}")
        ops = [op for op in ops if op.group in wanted]
    return ops
