"""The placement report: which executor runs which operator nodes of a prepared program."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torchexec._table import print_table

if TYPE_CHECKING:
    import torch

    from torchexec._program import Program

__all__ = ["PartitionInfo", "Placement", "format_operator_counts", "operator_name"]


def operator_name(target: object) -> str:
    """A readable operator name: ``aten::embedding``, ``aten::add.Tensor``, ``higher_order::cond``.

    The ``default`` overload is left out, as in PyTorch's own error messages.
    """
    import torch

    if isinstance(target, torch._ops.OpOverload):
        name: str = target.name()  # type: ignore[no-untyped-call]
        return name.removesuffix(".default")
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order::{target.name()}"  # type: ignore[no-untyped-call]
    module = getattr(target, "__module__", None) or ""
    qualname = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{qualname}" if module else qualname


def is_operator_node(node: torch.fx.Node) -> bool:
    """Whether ``node`` computes something: a ``call_function`` other than tuple indexing."""
    import operator

    return node.op == "call_function" and node.target is not operator.getitem


def format_operator_counts(counts: Mapping[str, int], limit: int | None = None) -> str:
    """``aten::embedding x2, aten::native_layer_norm x5``: most frequent first, then by name."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ranked if limit is None else ranked[:limit]
    text = ", ".join(f"{name} x{n}" for name, n in shown)
    if limit is not None and len(ranked) > limit:
        text += f", ... ({len(ranked) - limit} more)"
    return text


@dataclass(frozen=True)
class PartitionInfo:
    """One partition: a connected run of operator nodes prepared as one program by one executor.

    Attributes:
        index: the partition's position in execution order.
        executor: the executor that runs it.
        operators: operator name -> number of nodes of it in the partition.
    """

    index: int
    executor: str
    operators: Mapping[str, int]

    @property
    def nodes(self) -> int:
        """Number of operator nodes in the partition."""
        return sum(self.operators.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "index": self.index,
            "executor": self.executor,
            "nodes": self.nodes,
            "operators": dict(sorted(self.operators.items())),
        }


class Placement:
    """What ran where: ``str(placement)`` is a table with a row per executor.

    Attributes:
        executors: the executors in priority order (those that run nothing included).
        partitions: each partition in execution order.
    """

    def __init__(self, executors: Sequence[str], partitions: Iterable[PartitionInfo]) -> None:
        self.executors = tuple(executors)
        self.partitions = tuple(partitions)

    @classmethod
    def whole(cls, program: Program, executor: str) -> Placement:
        """The placement of a program that runs on one executor as one partition."""
        gm = program.graph_module()
        ops = Counter(operator_name(n.target) for n in gm.graph.nodes if is_operator_node(n))
        return cls([executor], [PartitionInfo(0, executor, dict(ops))])

    def counts(self) -> dict[str, int]:
        """``{executor name: number of operator nodes it runs}``, in priority order."""
        out = dict.fromkeys(self.executors, 0)
        for part in self.partitions:
            out[part.executor] += part.nodes
        return out

    def operators(self, executor: str) -> Counter[str]:
        """Operator name -> count of the nodes ``executor`` runs."""
        total: Counter[str] = Counter()
        for part in self.partitions:
            if part.executor == executor:
                total.update(part.operators)
        return total

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (``torchexec explain --json``)."""
        return {
            "executors": list(self.executors),
            "counts": self.counts(),
            "partitions": [p.as_dict() for p in self.partitions],
        }

    def __str__(self) -> str:
        rows = [["EXECUTOR", "NODES", "PARTITIONS", "TOP OPERATORS"]]
        for name, n in self.counts().items():
            parts = sum(1 for p in self.partitions if p.executor == name)
            top = format_operator_counts(self.operators(name), limit=4) or "-"
            rows.append([name, str(n), str(parts), top])
        buf = io.StringIO()
        print_table(rows, buf)
        return buf.getvalue().rstrip("\n")

    def __repr__(self) -> str:
        return f"Placement({self.counts()!r}, partitions={len(self.partitions)})"
