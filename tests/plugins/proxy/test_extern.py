"""AOTInductor extern-kernel JSON, written with AOTInductor's own serializer and dataclasses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch._export.serde import schema as S

import torchexec
from torchexec_proxy import ExternKernelProxy

POS, KW = S.ArgumentKind.POSITIONAL, S.ArgumentKind.KEYWORD


def A(**kw: Any) -> Any:
    """``Argument.create`` (an untyped classmethod of torch's schema unions)."""
    return S.Argument.create(**kw)  # type: ignore[no-untyped-call]


def _arg(name: str, arg: S.Argument, kind: S.ArgumentKind = POS) -> S.NamedArgument:
    return S.NamedArgument(name=name, arg=arg, kind=kind)


def _t(name: str) -> Any:
    return A(as_tensor=S.TensorArgument(name=name))


def _ts(*names: str) -> Any:
    return A(as_tensors=[S.TensorArgument(name=n) for n in names])


def _node(name: str, target: str, inputs: list[S.NamedArgument], outputs: list[S.Argument]) -> Any:
    from torch._inductor.ir import ExternKernelNode

    return ExternKernelNode(
        name=name, node=S.Node(target=target, inputs=inputs, outputs=outputs, metadata={})
    )


def _serialize(nodes: list[Any]) -> str:
    """What AOTInductor writes next to its compiled model."""
    from torch._inductor.extern_node_serializer import extern_node_json_serializer

    return extern_node_json_serializer(nodes)


def _optional(name: str | None) -> Any:
    create: Any = S.OptionalTensorArgument.create
    if name is None:
        return create(as_none=True)
    return create(as_tensor=S.TensorArgument(name=name))


@pytest.fixture(scope="module")
def kernels() -> str:
    """Extern nodes covering each argument convention of OSSProxyExecutor."""
    nodes = [
        _node("buf0", "aten::add.Tensor",
              [_arg("self", _t("x")), _arg("other", _t("y")), _arg("alpha", A(as_float=0.5), KW)],
              [_t("buf0")]),
        _node("buf1", "aten::topk", [_arg("self", _t("x")), _arg("k", A(as_int=2))],
              [_t("buf1_0"), _t("buf1_1")]),
        _node("buf2", "aten::cat", [_arg("tensors", _ts("x", "y", "x")), _arg("dim", A(as_int=0))],
              [_t("buf2")]),
        _node("buf3", "aten::sum.dim_IntList",
              [_arg("self", _t("m")), _arg("dim", A(as_ints=[0, 1])),
               _arg("keepdim", A(as_bool=True)),
               _arg("dtype", A(as_scalar_type=S.ScalarType.DOUBLE), KW)],
              [_t("buf3")]),
        _node("buf4", "aten::index.Tensor",
              [_arg("self", _t("m")),
               _arg("indices", A(as_optional_tensors=[_optional(None), _optional("i")]))],
              [_t("buf4")]),
        _node("buf5", "aten::split.Tensor",
              [_arg("self", _t("x")), _arg("split_size", A(as_int=2))],
              [_ts("buf5_0", "buf5_1", "buf5_2")]),
        _node("buf6", "aten::native_layer_norm",
              [_arg("input", _t("m")), _arg("normalized_shape", A(as_ints=[3])),
               _arg("weight", A(as_none=True)), _arg("bias", _t("b")), _arg("eps", A(as_float=1e-5))],
              [_t("buf6_0"), _t("buf6_1"), _t("buf6_2")]),
        _node("buf7", "aten::full",
              [_arg("size", A(as_ints=[2, 3])), _arg("fill_value", A(as_float=1.25)),
               _arg("dtype", A(as_scalar_type=S.ScalarType.HALF), KW),
               _arg("device", A(as_device=S.Device(type="cpu")), KW)],
              [_t("buf7")]),
    ]  # fmt: skip
    return _serialize(nodes)


def _inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "x": torch.randn(5),
        "y": torch.randn(5),
        "m": torch.randn(2, 4, 3),
        "i": torch.tensor([3, 0]),
        "b": torch.randn(3),
    }


def test_kernels_match_eager(kernels: str, bitwise: Any) -> None:
    proxy = ExternKernelProxy(kernels)
    assert proxy.names == [f"buf{i}" for i in range(8)]
    v = _inputs()
    x, y, m, i, b = v["x"], v["y"], v["m"], v["i"], v["b"]
    aten = torch.ops.aten
    bitwise([aten.add.Tensor(x, y, alpha=0.5)], proxy.call_function(0, [], [x, y]))
    bitwise(list(aten.topk(x, 2)), proxy.call_function(1, [2], [x]))
    bitwise([torch.cat([x, y, x])], proxy.call_function(2, [0], [x, y, x]))
    bitwise([m.sum([0, 1], True, dtype=torch.float64)], proxy.call_function(3, [0, 1], [m]))
    bitwise([m[:, i]], proxy.call_function(4, [], [m, i]))
    bitwise(list(torch.split(x, 2)), proxy.call_function(5, [2], [x]))
    bitwise(
        list(aten.native_layer_norm(m, [3], None, b, 1e-5)), proxy.call_function(6, [3], [m, b])
    )
    bitwise([torch.full((2, 3), 1.25, dtype=torch.half)], proxy.call_function(7, [2, 3], []))


def test_dynamic_ints_come_from_the_call(kernels: str, bitwise: Any) -> None:
    """Ints are flattened call arguments, as in AOTInductor's generated code."""
    proxy = ExternKernelProxy(kernels)
    x = _inputs()["x"]
    bitwise(list(torch.topk(x, 4)), proxy.call_function(1, [4], [x]))
    bitwise([torch.zeros(4, 1, dtype=torch.half) + 1.25], proxy.call_function(7, [4, 1], []))


def test_outputs_written_into_trailing_tensor_args(kernels: str, bitwise: Any) -> None:
    proxy = ExternKernelProxy(kernels)
    x = _inputs()["x"]
    handles: list[Any] = [x, None, None]
    returned = proxy.call_function(1, [2], handles)
    bitwise(list(torch.topk(x, 2)), handles[1:])
    assert handles[1] is returned[0] and handles[2] is returned[1]


def test_call_argument_count_checked(kernels: str) -> None:
    proxy = ExternKernelProxy(kernels)
    x = _inputs()["x"]
    with pytest.raises(torchexec.InputMismatchError, match=r"'buf0'.*takes 2 input tensors"):
        proxy.call_function(0, [], [x])
    with pytest.raises(torchexec.InputMismatchError, match=r"'buf1'.*takes 1 ints"):
        proxy.call_function(1, [], [x])
    with pytest.raises(torchexec.InputMismatchError, match="out of range"):
        proxy.call_function(8, [], [])


def test_file_path_and_custom_objs_config(tmp_path: Path, bitwise: Any) -> None:
    """Custom objects load from ``custom_objs_config.json`` beside the file."""
    packed = _packed_linear()
    if packed is None:
        pytest.skip("no quantized engine in this torch build")
    obj, bias = packed
    nodes = [
        _node("buf0", "call_torchbind",
              [_arg("_0", A(as_custom_obj=S.CustomObjArgument("packed", _fqn(obj)))),
               _arg("method", A(as_string="bias"))],
              [A(as_optional_tensor=_optional("buf0"))]),
    ]  # fmt: skip
    path = tmp_path / "extern.json"
    path.write_text(_serialize(nodes))
    (tmp_path / "packed_obj").write_bytes(torch._C._pickle_save(obj))
    (tmp_path / "custom_objs_config.json").write_text(json.dumps({"packed": "packed_obj"}))
    proxy = ExternKernelProxy(path)
    bitwise([bias], proxy.call_function(0, [], []))
    # objects passed by name take precedence over the config file
    other, other_bias = _packed_linear(seed=1)  # type: ignore[misc]
    bitwise(
        [other_bias],
        ExternKernelProxy(path, custom_objs={"packed": other}).call_function(0, [], []),
    )


def test_call_torchbind_with_test_classes(torchbind_testing: Any, bitwise: Any) -> None:
    scale = torchbind_testing.scale(torch.tensor([2.0, -1.0]))
    fqn = _fqn(scale)
    obj_arg = A(as_custom_obj=S.CustomObjArgument("scale0", fqn))
    nodes = [
        _node("buf0", "call_torchbind",
              [_arg("_0", obj_arg), _arg("method", A(as_string="apply")), _arg("_1", _t("x"))],
              [_t("buf0")]),
        _node("buf1", "torchexec_testing::scale_add",
              [_arg("scale", obj_arg), _arg("x", _t("x")), _arg("alpha", A(as_float=3.0))],
              [_t("buf1")]),
    ]  # fmt: skip
    text = _serialize(nodes)
    with pytest.raises(torchexec.ProgramError, match="not allowed"):
        ExternKernelProxy(text, custom_objs={"scale0": scale})
    proxy = ExternKernelProxy(
        text, custom_objs={"scale0": scale}, allowed_namespaces=[torchbind_testing.NAMESPACE]
    )
    x = torch.randn(2)
    weight = torch.tensor([2.0, -1.0])
    bitwise([x * weight], proxy.call_function(0, [], [x]))
    bitwise([x + 3.0 * weight], proxy.call_function(1, [], [x]))


def test_load_errors_name_the_node(kernels: str) -> None:
    doc = json.loads(kernels)
    doc["nodes"][2]["node"]["target"] = "aten::no_such_op"
    with pytest.raises(torchexec.ProgramError, match=r"extern node 2 'buf2'.*unknown operator"):
        ExternKernelProxy(doc)
    doc = json.loads(kernels)
    doc["nodes"][0]["node"]["inputs"][1]["arg"] = {"as_float": 1.0}
    with pytest.raises(torchexec.ProgramError, match=r"'buf0'.*argument 'other'.*as_float"):
        ExternKernelProxy(doc)
    doc = json.loads(kernels)
    doc["nodes"][0]["node"]["target"] = "quantized::add"
    with pytest.raises(torchexec.ProgramError, match=r"namespace 'quantized'.*not allowed"):
        ExternKernelProxy(doc)
    missing = {"nodes": [{"name": "b", "node": {
        "target": "call_torchbind", "outputs": [], "metadata": {}, "inputs": [
            {"name": "_0", "arg": {"as_custom_obj": {"name": "gone", "class_fqn": "x"}}},
            {"name": "method", "arg": {"as_string": "f"}}]}}]}  # fmt: skip
    with pytest.raises(torchexec.ProgramError, match="no custom object named 'gone'"):
        ExternKernelProxy(missing)


def _fqn(obj: Any) -> str:
    name: str = obj._type().qualified_name()
    return name


def _packed_linear(seed: int = 0) -> tuple[Any, torch.Tensor] | None:
    """A built-in TorchBind object (no C++ build needed): quantized linear packed params."""
    torch.manual_seed(seed)
    try:
        w = torch.quantize_per_tensor(torch.randn(3, 4), 0.1, 0, torch.qint8)
        bias = torch.randn(3)
        return torch.ops.quantized.linear_prepack(w, bias), bias
    except (RuntimeError, AttributeError):
        return None
