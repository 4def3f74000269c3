"""Which ATen nodes the ``onnxruntime`` executor claims: those the torch.onnx exporter translates.

The answer comes from the exporter itself, never from a list kept here:

- the exporter's registry of ONNX translations
  (``ONNXRegistry.from_torchlib().is_registered``);
- the operators it decomposes before translating (its ONNX-friendly decomposition table, and
  CompositeImplicitAutograd operators, which ``ExportedProgram.run_decompositions`` always
  decomposes);
- in-place variants, which functionalisation turns into their functional operator.

One rule is ONNX Runtime's rather than the exporter's: batch normalisation in training mode
(batch statistics, running statistics updated) is not claimed. The exporter writes it as ONNX
``BatchNormalization`` with ``training_mode=1``, and ONNX Runtime's inference sessions compute it
in inference mode (checked with onnxruntime 1.31: running statistics as they were, outputs
normalised with them).

Group normalisation of an empty tensor is not claimed either: ONNX Runtime 1.31 crashes the
process running it.

Both tables are built once, on the first question or export (1.5 to 3 s: the registry compiles
every onnxscript translation), and every export reuses the registry.
"""

from __future__ import annotations

import functools
import operator
import threading
from typing import Any

import torch

__all__ = ["crashes_runtime", "registry", "supports", "training_batch_norm"]

_LOCK = threading.Lock()


@functools.cache
def _tables() -> tuple[Any, frozenset[Any]]:
    from torch.onnx._constants import ONNX_DEFAULT_OPSET
    from torch.onnx._internal.exporter import _decomp, _registration

    from torchexec_onnxruntime._quiet import quiet_exporter

    with quiet_exporter():
        onnx_registry = _registration.ONNXRegistry.from_torchlib(opset_version=ONNX_DEFAULT_OPSET)
    implemented = set(_decomp.get_onnx_implemented_overloads(onnx_registry))
    decomposed = frozenset(_decomp.create_onnx_friendly_decomposition_table(implemented))
    return onnx_registry, decomposed


def registry() -> Any:
    """The exporter's registry for its default opset, built once (exports reuse it)."""
    with _LOCK:
        return _tables()[0]


def _functional_variant(op: torch._ops.OpOverload) -> torch._ops.OpOverload | None:
    """``aten.add.Tensor`` for the in-place ``aten.add_.Tensor``, when it exists."""
    base = op.overloadpacket.__name__
    if not base.endswith("_") or base.startswith("_"):
        return None
    packet = getattr(getattr(torch.ops, op.namespace), base[:-1], None)
    candidate = getattr(packet, op._overloadname, None)
    if isinstance(candidate, torch._ops.OpOverload) and not candidate._schema.is_mutable:
        return candidate
    return None


def _claims(target: Any) -> bool:
    with _LOCK:
        registry, decomposed = _tables()
    if registry.is_registered(target):
        return True
    if not isinstance(target, torch._ops.OpOverload):
        return False
    if target in decomposed:
        return True
    if target.has_kernel_for_dispatch_key(torch._C.DispatchKey.CompositeImplicitAutograd):
        return True
    if target._schema.is_mutable:
        functional = _functional_variant(target)
        return functional is not None and _claims(functional)
    return False


_BATCH_NORMS = frozenset(
    {
        "batch_norm",
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_functional",
        "cudnn_batch_norm",
        "miopen_batch_norm",
    }
)


def training_batch_norm(node: torch.fx.Node) -> bool:
    """Whether ``node`` is a batch normalisation in training mode (see the module docstring)."""
    target = node.target
    if not isinstance(target, torch._ops.OpOverload):
        return False
    name = target.overloadpacket.__name__
    if name.startswith("_batch_norm_with_update"):
        return True
    if name not in _BATCH_NORMS:
        return False
    training = node.kwargs.get("training", node.args[5] if len(node.args) > 5 else False)
    return bool(training)


@functools.cache
def _assertions() -> frozenset[Any]:
    """Checks the exporter deletes before translating (``_fx_passes.remove_assertion_nodes``
    keeps them in a local set, so they are named here)."""
    aten = torch.ops.aten
    return frozenset(
        {
            aten.sym_constrain_range_for_size.default,
            aten._assert_async.default,
            aten._assert_async.msg,
            aten._assert_scalar.default,
            aten._assert_tensor_metadata.default,
        }
    )


def crashes_runtime(node: torch.fx.Node) -> bool:
    """Whether ``node`` is a group normalisation of an empty tensor: ONNX Runtime 1.31 crashes
    the process (segmentation fault) running the exported model, so it is never claimed."""
    target = node.target
    if not isinstance(target, torch._ops.OpOverload):
        return False
    if target.overloadpacket.__name__ not in ("group_norm", "native_group_norm"):
        return False
    val = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    numel = val.numel() if isinstance(val, torch.Tensor) else 1
    return isinstance(numel, int) and numel == 0


def supports(node: torch.fx.Node) -> bool:
    """Whether the torch.onnx exporter can translate ``node``.

    Nodes that are not operator calls (placeholders, outputs, ``getitem`` of a multi-output
    operator) and the runtime checks the exporter deletes (``_assert_scalar``...) are claimed:
    they go wherever their producer goes.
    """
    if node.op != "call_function":
        return True
    if node.target is operator.getitem or node.target in _assertions():
        return True
    if training_batch_norm(node) or crashes_runtime(node):
        return False
    return _claims(node.target)
