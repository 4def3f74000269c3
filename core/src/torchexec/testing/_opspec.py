"""``OpSpec``: one catalog operator and the rule that draws valid arguments for it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchexec.testing._builder import Builder

__all__ = ["Args", "OpSpec", "Rule"]

Args = tuple[Sequence[Any], Mapping[str, Any]]
"""What a rule returns: positional and keyword arguments, with ``Ref`` for program values."""

Rule = Callable[["Builder"], Args]
"""Draws the arguments of one call from a :class:`~torchexec.testing.strategies.Builder`."""


@dataclass(frozen=True)
class OpSpec:
    """A catalog operator.

    Attributes:
        target: the ATen overload the generated FX node calls (``torch.ops.aten.add.Tensor``).
        rule: draws valid arguments (shapes, dtypes, dims, scalars) from the builder.
        group: the family (``unary``, ``binary``, ``comparison``, ``reduction``, ``matmul``,
            ``view``, ``multi-output``, ``indexing``, ``normalization``, ``convolution``, ``cast``,
            ``creation``).
        name: the catalog name; defaults to the overload's name (``aten.add.Tensor``).
    """

    target: Callable[..., Any]
    rule: Rule
    group: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", str(self.target))
