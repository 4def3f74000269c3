"""The valid AOTInductor extern-kernel JSON documents the fuzzer starts from.

Written with torch's own schema dataclasses and JSON encoder (what
``torch._inductor.extern_node_serializer`` writes next to a compiled model), so the corpus has
the exact shape AOTInductor produces. Each document comes with the tensors its nodes name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ExternSpec", "extern_json", "extern_specs"]


@dataclass(frozen=True)
class ExternSpec:
    """One extern-kernel document: its JSON text, the tensors by name, the objects by name."""

    name: str
    text: str
    env: dict[str, torch.Tensor]
    objects: dict[str, torch.Tensor]
    """TorchBind ``Scale`` objects by name, as their weights (re-created per case)."""
    namespaces: tuple[str, ...] = ()


def _schema() -> Any:
    from torch._export.serde import schema

    return schema


def A(**kw: Any) -> Any:
    """``Argument.create`` (an untyped classmethod of torch's schema unions)."""
    return _schema().Argument.create(**kw)


def _arg(name: str, arg: Any, keyword: bool = False) -> Any:
    S = _schema()
    kind = S.ArgumentKind.KEYWORD if keyword else S.ArgumentKind.POSITIONAL
    return S.NamedArgument(name=name, arg=arg, kind=kind)


def _t(name: str) -> Any:
    return A(as_tensor=_schema().TensorArgument(name=name))


def _ts(*names: str) -> Any:
    return A(as_tensors=[_schema().TensorArgument(name=n) for n in names])


def _opt(name: str | None) -> Any:
    S = _schema()
    create: Any = S.OptionalTensorArgument.create
    if name is None:
        return create(as_none=True)
    return create(as_tensor=S.TensorArgument(name=name))


def _node(name: str, target: str, inputs: list[Any], outputs: list[Any]) -> Any:
    S = _schema()
    return S.ExternKernelNode(
        name=name, node=S.Node(target=target, inputs=inputs, outputs=outputs, metadata={})
    )


def extern_json(nodes: list[Any]) -> str:
    """Serialize extern nodes exactly as AOTInductor does."""
    from torch._export.serde import serialize

    to_dict: Any = serialize._dataclass_to_dict  # untyped in torch
    S = _schema()
    return json.dumps(to_dict(S.ExternKernelNodes(nodes=nodes)), cls=serialize.EnumEncoder)


def _fallback_ops() -> ExternSpec:
    S = _schema()
    nodes = [
        _node(
            "buf0",
            "aten::add.Tensor",
            [_arg("self", _t("x")), _arg("other", _t("y")), _arg("alpha", A(as_float=0.5), True)],
            [_t("buf0")],
        ),
        _node(
            "buf1",
            "aten::topk",
            [_arg("self", _t("x")), _arg("k", A(as_int=2))],
            [_t("buf1_0"), _t("buf1_1")],
        ),
        _node(
            "buf2",
            "aten::cat",
            [_arg("tensors", _ts("x", "y", "x")), _arg("dim", A(as_int=0))],
            [_t("buf2")],
        ),
        _node(
            "buf3",
            "aten::sum.dim_IntList",
            [
                _arg("self", _t("m")),
                _arg("dim", A(as_ints=[0, 1])),
                _arg("keepdim", A(as_bool=True)),
                _arg("dtype", A(as_scalar_type=S.ScalarType.DOUBLE), True),
            ],
            [_t("buf3")],
        ),
        _node(
            "buf4",
            "aten::index.Tensor",
            [
                _arg("self", _t("m")),
                _arg("indices", A(as_optional_tensors=[_opt(None), _opt("i")])),
            ],
            [_t("buf4")],
        ),
        _node(
            "buf5",
            "aten::split.Tensor",
            [_arg("self", _t("x")), _arg("split_size", A(as_int=2))],
            [_ts("buf5_0", "buf5_1", "buf5_2")],
        ),
        _node(
            "buf6",
            "aten::native_layer_norm",
            [
                _arg("input", _t("m")),
                _arg("normalized_shape", A(as_ints=[3])),
                _arg("weight", A(as_none=True)),
                _arg("bias", _t("b")),
                _arg("eps", A(as_float=1e-5)),
            ],
            [_t("buf6_0"), _t("buf6_1"), _t("buf6_2")],
        ),
        _node(
            "buf7",
            "aten::full",
            [
                _arg("size", A(as_ints=[2, 3])),
                _arg("fill_value", A(as_float=1.25)),
                _arg("dtype", A(as_scalar_type=S.ScalarType.HALF), True),
                _arg("device", A(as_device=S.Device(type="cpu")), True),
            ],
            [_t("buf7")],
        ),
    ]
    g = torch.Generator().manual_seed(0)
    env = {
        "x": torch.randn(5, generator=g),
        "y": torch.randn(5, generator=g),
        "m": torch.randn(2, 4, 3, generator=g),
        "i": torch.tensor([3, 0]),
        "b": torch.randn(3, generator=g),
    }
    return ExternSpec("fallback_ops", extern_json(nodes), env, {})


def _more_ops() -> ExternSpec:
    S = _schema()
    nodes = [
        _node(
            "buf0",
            "aten::clone",
            [
                _arg("self", _t("c")),
                _arg("memory_format", A(as_memory_format=S.MemoryFormat.ChannelsLast), True),
            ],
            [_t("buf0")],
        ),
        _node(
            "buf1",
            "aten::_to_copy",
            [
                _arg("self", _t("x")),
                _arg("dtype", A(as_scalar_type=S.ScalarType.BFLOAT16), True),
                _arg("layout", A(as_layout=S.Layout.Strided), True),
            ],
            [_t("buf1")],
        ),
        _node(
            "buf2",
            "aten::view",
            [_arg("self", _t("c")), _arg("size", A(as_ints=[2, -1]))],
            [_t("buf2")],
        ),
        _node(
            "buf3",
            "aten::where.self",
            [_arg("condition", _t("mask")), _arg("self", _t("x")), _arg("other", _t("y"))],
            [_t("buf3")],
        ),
        _node(
            "buf4",
            "aten::mul.Scalar",
            [_arg("self", _t("x")), _arg("other", A(as_int=3))],
            [_t("buf4")],
        ),
        _node(
            "buf5",
            "aten::leaky_relu",
            [_arg("self", _t("x")), _arg("negative_slope", A(as_float=0.25))],
            [_t("buf5")],
        ),
        _node(
            "buf6",
            "aten::addmm",
            [
                _arg("self", _t("b")),
                _arg("mat1", _t("p")),
                _arg("mat2", _t("q")),
                _arg("beta", A(as_float=0.5), True),
                _arg("alpha", A(as_int=2), True),
            ],
            [_t("buf6")],
        ),
        _node(
            "buf7",
            "aten::max_pool2d_with_indices",
            [
                _arg("self", _t("c")),
                _arg("kernel_size", A(as_ints=[2, 2])),
                _arg("stride", A(as_ints=[1, 1])),
            ],
            [_t("buf7_0"), _t("buf7_1")],
        ),
    ]
    g = torch.Generator().manual_seed(1)
    env = {
        "c": torch.randn(1, 2, 3, 4, generator=g),
        "x": torch.randn(5, generator=g),
        "y": torch.randn(5, generator=g),
        "mask": torch.tensor([True, False, True, True, False]),
        "b": torch.randn(3, generator=g),
        "p": torch.randn(2, 4, generator=g),
        "q": torch.randn(4, 3, generator=g),
    }
    return ExternSpec("more_ops", extern_json(nodes), env, {})


def _torchbind_calls() -> ExternSpec:
    S = _schema()
    fqn = "__torch__.torch.classes.torchexec_testing.Scale"
    obj = A(as_custom_obj=S.CustomObjArgument("scale0", fqn))
    nodes = [
        _node(
            "buf0",
            "call_torchbind",
            [_arg("_0", obj), _arg("method", A(as_string="apply")), _arg("_1", _t("x"))],
            [_t("buf0")],
        ),
        _node(
            "buf1",
            "torchexec_testing::scale_add",
            [_arg("scale", obj), _arg("x", _t("x")), _arg("alpha", A(as_float=3.0))],
            [_t("buf1")],
        ),
        _node(
            "buf2",
            "call_torchbind",
            [_arg("_0", obj), _arg("method", A(as_string="get_weight"))],
            [_t("buf2")],
        ),
    ]
    env = {"x": torch.tensor([0.5, -1.5, 2.0])}
    return ExternSpec(
        "torchbind_calls",
        extern_json(nodes),
        env,
        {"scale0": torch.tensor([2.0, -1.0, 0.25])},
        namespaces=("torchexec_testing",),
    )


def extern_specs() -> list[ExternSpec]:
    """The extern-kernel corpus (built on demand: it imports torch's serde module)."""
    return [_fallback_ops(), _more_ops(), _torchbind_calls()]
