"""Which nodes of an ATen graph the proxy's loader runs: what the ``proxy`` and ``torchbind``
executors answer when the core asks ``supports(node, options)``.

A node is claimed when it calls

* an operator of a namespace in :data:`~torchexec_proxy.DEFAULT_NAMESPACES` (``aten``,
  ``prims``);
* ``torch.ops.higher_order.call_torchbind`` (a TorchBind method call);
* the higher-order operators ``cond``, ``while_loop``, ``map_impl``, ``scan`` and
  ``invoke_subgraph`` when every node of their subgraphs is claimed, and
  ``auto_functionalized``, ``auto_functionalized_v2`` and ``with_effects`` when the operator
  they call is (the ``higher_order`` argument narrows these to the ones an executor runs: the
  ``torchbind`` executor's engine runs those with subgraphs only);
* one of the SymInt arithmetic functions the loader accepts (``operator.add``, ``torch.sym_max``,
  ...);
* ``operator.getitem`` on the result of a claimed node (the serialized program folds it into the
  node that produced the tuple).

The ``allowed_namespaces`` option widens the first rule, as it widens what the loader accepts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable
from typing import Any

import torch

from torchexec_proxy._targets import DEFAULT_NAMESPACES, HOP_TARGETS, PYTHON_TARGETS

__all__ = ["supports_node"]

_CALLING = frozenset({"auto_functionalized", "auto_functionalized_v2", "with_effects"})
_PYTHON_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(PYTHON_TARGETS.values())


def supports_node(
    node: torch.fx.Node,
    allowed_namespaces: Iterable[str] = (),
    *,
    higher_order: Collection[str] | None = None,
) -> bool:
    """Whether the proxy's loader runs ``node``, an operator node of a program's ATen graph,
    when it allows ``allowed_namespaces`` besides the default ones.

    Nodes that call nothing (placeholders, outputs, attributes) are not claimed.
    ``higher_order`` limits the higher-order operators claimed (besides ``call_torchbind``) to
    those short names (``"cond"``, ``"map"``, ...: the values of
    :data:`~torchexec_proxy._targets.HOP_TARGETS`), in the node and inside its subgraphs;
    ``None`` claims all the loader plans.
    """
    if node.op != "call_function":
        return False
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return target.namespace in DEFAULT_NAMESPACES or target.namespace in allowed_namespaces
    if target is torch.ops.higher_order.call_torchbind:
        return True
    if isinstance(target, torch._ops.HigherOrderOperator):
        hop = HOP_TARGETS.get(f"torch.ops.higher_order.{target._name}")
        if hop is None or (higher_order is not None and hop not in higher_order):
            return False
        if hop in _CALLING:  # claimed with the operator it calls
            inner = node.args[1 if hop == "with_effects" else 0] if node.args else None
            return isinstance(inner, torch._ops.OpOverload) and (
                inner.namespace in DEFAULT_NAMESPACES or inner.namespace in allowed_namespaces
            )
        return _subgraphs_claimed(node, allowed_namespaces, higher_order)
    if target is operator.getitem:
        source = node.args[0] if node.args else None
        return isinstance(source, torch.fx.Node) and supports_node(
            source, allowed_namespaces, higher_order=higher_order
        )
    try:
        return target in _PYTHON_FUNCTIONS
    except TypeError:  # an unhashable callable is none of the loader's functions
        return False


def _subgraphs_claimed(
    node: torch.fx.Node, allowed_namespaces: Iterable[str], higher_order: Collection[str] | None
) -> bool:
    """Every operator node of the subgraphs ``node`` calls (its ``get_attr`` arguments) is
    claimed."""
    owner = node.graph.owning_module
    for arg in node.args:
        if not (isinstance(arg, torch.fx.Node) and arg.op == "get_attr") or owner is None:
            continue
        try:
            sub = operator.attrgetter(str(arg.target))(owner)
        except AttributeError:
            return False
        if not isinstance(sub, torch.fx.GraphModule):
            return False
        for inner in sub.graph.nodes:
            if inner.op == "call_function" and not supports_node(
                inner, allowed_namespaces, higher_order=higher_order
            ):
                return False
    return True
