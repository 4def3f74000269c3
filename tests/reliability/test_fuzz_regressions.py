"""Every crash, wrong exception or wrong answer the fuzzer found, as a small explicit case.

Each test names what happened before the fix. Programs are tiny and built here; the damage is
the one the fuzzer's mutant carried, applied by hand.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

import torchexec
from fuzzing.externs import A, _arg, _node, _opt, _t, extern_json
from torchexec import ProgramError
from torchexec_proxy import ExternKernelProxy, ProxyRunner, load_plan_from_json


class Tiny(torch.nn.Module):
    """A parameter, a buffer, a keyword argument and two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        self.register_buffer("b", torch.tensor([0.25, 0.5, 1.0]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.add(x * self.w, self.get_buffer("b"), alpha=2), x.relu()


X = torch.tensor([0.5, -1.0, 2.0])


@cache
def _exported() -> Any:
    return torch.export.export(Tiny(), (X,), strict=False)


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        torchexec.Program.from_exported(_exported()).serialized().model_json
    )
    return doc


def _state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    ser = torchexec.Program.from_exported(_exported()).serialized()
    return {k: v.detach().clone() for k, v in ser.weights.items()}, dict(ser.constants)


def _load(doc: dict[str, Any] | bytes) -> Any:
    weights, constants = _state()
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return load_plan_from_json(data, weights, constants)


@pytest.fixture
def pt2(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt2"
    torch.export.save(_exported(), path)
    return path


def _rewrite(
    path: Path,
    edit: Callable[[str, bytes], bytes | None],
    extra: tuple[tuple[str, bytes], ...] = (),
    compression: int = zipfile.ZIP_STORED,
) -> Path:
    """A copy of an archive with each member (name below the root folder) passed through
    ``edit`` (``None`` drops it), then ``extra`` members appended."""
    out = path.with_name(f"edited_{path.name}")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", compression) as dst:
        root = src.namelist()[0].split("/", 1)[0]
        for info in src.infolist():
            rel = info.filename.split("/", 1)[1]
            data = edit(rel, src.read(info))
            if data is not None:
                dst.writestr(f"{root}/{rel}", data)
        for rel, data in extra:
            dst.writestr(f"{root}/{rel}", data)
    return out


def _edit_json(member: str, change: Callable[[Any], None]) -> Callable[[str, bytes], bytes | None]:
    def edit(rel: str, data: bytes) -> bytes:
        if rel != member:
            return data
        doc = json.loads(data)
        change(doc)
        return json.dumps(doc).encode()

    return edit


def _prepare(path: Path) -> Any:
    return torchexec.prepare(path, X.clone(), executor="proxy")


# --- program JSON -------------------------------------------------------------------------


def test_overlong_integer_in_json_is_a_program_error() -> None:
    """Was ``ValueError`` (Python's limit on int conversion) from the proxy's JSON parser."""
    text = json.dumps(_doc()).replace('"major": 8', '"major": ' + "8" * 5000, 1).encode()
    with pytest.raises(ProgramError, match=r"invalid program JSON.*4300 digits"):
        _load(text)
    with pytest.raises(ProgramError, match="invalid program JSON"):
        ExternKernelProxy(b'{"nodes": [' + b"1" * 5000 + b"]}")


def test_graph_outputs_must_be_the_signature_outputs() -> None:
    """Was accepted, returning whatever the signature named (torch refuses such a program)."""
    doc = _doc()
    outputs = doc["graph_module"]["graph"]["outputs"]
    outputs[0], outputs[1] = outputs[1], outputs[0]
    with pytest.raises(
        ProgramError,
        match=r"graph output 0 is a tensor 'relu', but the signature's "
        r"output 0 is a tensor 'add'",
    ):
        _load(doc)
    doc = _doc()
    doc["graph_module"]["graph"]["inputs"][-1] = {"as_tensor": {"name": "elsewhere"}}
    with pytest.raises(ProgramError, match="graph input 2 is a tensor 'elsewhere'"):
        _load(doc)
    assert _load(_doc()) is not None  # the unmutated program still loads


def test_symbolic_output_of_a_tensor_operator_is_rejected() -> None:
    """Was accepted: a tensor stored where the plan expects a SymInt."""
    doc = _doc()
    node = doc["graph_module"]["graph"]["nodes"][-1]  # relu
    node["outputs"][0] = {"as_sym_int": {"as_name": "relu"}}
    with pytest.raises(ProgramError, match="the schema returns TensorType, the node as_sym_int"):
        _load(doc)
    node["outputs"][0] = {"as_optional_tensor": {"as_int": 1}}
    with pytest.raises(ProgramError, match="as_optional_tensor holds as_int"):
        _load(doc)


def test_state_metadata_with_a_non_integer_dtype() -> None:
    """Was ``TypeError: unhashable type: 'dict'`` from the state check."""
    doc = _doc()
    doc["graph_module"]["graph"]["tensor_values"]["p_w"]["dtype"] = {"as_int": 7}
    with pytest.raises(ProgramError, match=r"parameter 'w'.*tensor metadata has the dtype"):
        _load(doc)


def test_tensor_metadata_that_is_no_object() -> None:
    """Was ``AttributeError: 'str' object has no attribute 'get'`` (long run, torchbind case
    94361: ``tensor_values`` replaced by a string)."""
    doc = _doc()
    doc["graph_module"]["graph"]["tensor_values"] = "aaaa"
    with pytest.raises(ProgramError, match="tensor_values must be a JSON object, got str"):
        _load(doc)


def test_number_where_the_operator_takes_a_tensor() -> None:
    """Was loaded and failed only when run (long run, ep_json case 51115: ``aten.linear`` given
    ``as_int`` for its bias): torch.ops refuses a number for a tensor except for a few
    arithmetic operators, which keep taking them."""
    doc = _doc()
    nodes = doc["graph_module"]["graph"]["nodes"]
    add = next(n for n in nodes if n["target"] == "torch.ops.aten.add.Tensor")
    add["inputs"][1]["arg"] = {"as_int": 3}  # aten.add takes numbers as tensors: still loads
    runner = ProxyRunner(_load(doc))
    assert torch.equal(runner(X.clone())[0], torch.add(X * Tiny().w, 3, alpha=2))
    relu = next(n for n in nodes if n["target"] == "torch.ops.aten.relu.default")
    relu["inputs"][0]["arg"] = {"as_float": 1.5}
    with pytest.raises(ProgramError, match=r"argument 'self': wrong argument type.*got as_float"):
        _load(doc)


# --- .pt2 archives ------------------------------------------------------------------------


def test_output_spec_must_count_the_signature_outputs(pt2: Path) -> None:
    """Was ``ExecutorError`` at the first call ("returned 1 outputs ... which has 2")."""

    def drop_output(doc: Any) -> None:
        doc["graph_module"]["signature"]["output_specs"].pop()
        doc["graph_module"]["graph"]["outputs"].pop()

    edited = _rewrite(pt2, _edit_json("models/model.json", drop_output))
    with pytest.raises(
        ProgramError, match="output spec has 2 values, but its graph signature returns 1"
    ):
        _prepare(edited)


def test_member_with_unsupported_zip_feature(pt2: Path) -> None:
    """Was ``NotImplementedError`` (zip flag bit 5, "compressed patched data") from zipfile."""
    data = bytearray(pt2.read_bytes())
    name = b"data/weights/weight_0"
    at = data.find(b"PK\x01\x02", 0)
    while at >= 0 and name not in data[at + 46 : at + 46 + 200].split(b"PK")[0]:
        at = data.find(b"PK\x01\x02", at + 4)
    assert at >= 0
    flags = struct.unpack_from("<H", data, at + 8)[0]
    struct.pack_into("<H", data, at + 8, flags | 0x20)
    edited = pt2.with_name("flagged.pt2")
    edited.write_bytes(bytes(data))
    with pytest.raises(ProgramError, match=r"weight_0.*cannot be read.*flag bit 5"):
        _prepare(edited)


def test_corrupt_deflate_stream(pt2: Path) -> None:
    """A damaged compressed member fails inside zlib; it must be a ``ProgramError``."""
    deflated = _rewrite(pt2, lambda rel, data: data, compression=zipfile.ZIP_DEFLATED)
    raw = bytearray(deflated.read_bytes())
    with zipfile.ZipFile(deflated) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("weights/weight_0"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start : start + 4] = b"\xff\xff\xff\xff"
    deflated.write_bytes(bytes(raw))
    with pytest.raises(ProgramError, match="weight_0"):
        _prepare(deflated)


def test_overlong_integer_in_weights_config(pt2: Path) -> None:
    """Was ``ValueError`` from the archive's JSON reader."""

    def edit(rel: str, data: bytes) -> bytes:
        if rel == "data/weights/model_weights_config.json":
            return data.replace(b'"config"', b'"x": ' + b"1" * 5000 + b', "config"', 1)
        return data

    with pytest.raises(ProgramError, match=r"model_weights_config\.json.*4300 digits"):
        _prepare(_rewrite(pt2, edit))


def test_integer_parameter_requiring_grad(pt2: Path) -> None:
    """Was ``RuntimeError: Only Tensors of floating point and complex dtype can require
    gradients`` from building the parameter."""

    def to_int8(doc: Any) -> None:
        meta = doc["config"]["w"]["tensor_meta"]
        meta["dtype"] = 2  # int8: the 12 payload bytes still fit
        meta["requires_grad"] = True

    edited = _rewrite(pt2, _edit_json("data/weights/model_weights_config.json", to_int8))
    with pytest.raises(ProgramError, match="int8 cannot require gradients"):
        _prepare(edited)


def test_two_members_of_one_name(pt2: Path) -> None:
    """Was accepted, reading the last copy, while ``torch.export.load`` reads the first: the
    two loaders ran different weights."""
    with zipfile.ZipFile(pt2) as z:
        weight = next(n for n in z.namelist() if n.endswith("data/weights/weight_0"))
    extra = ((weight.split("/", 1)[1], struct.pack("<3f", 9.0, 9.0, 9.0)),)
    with pytest.warns(UserWarning, match="Duplicate name"):
        edited = _rewrite(pt2, lambda rel, data: data, extra)
    with pytest.raises(ProgramError, match=r"several members named .*weight_0"):
        _prepare(edited)


# --- extern-kernel JSON ---------------------------------------------------------------------


def _layer_norm(bias: Any) -> str:
    return extern_json(
        [
            _node(
                "buf0",
                "aten::native_layer_norm",
                [
                    _arg("input", _t("x")),
                    _arg("normalized_shape", A(as_ints=[3])),
                    _arg("weight", A(as_none=True)),
                    _arg("bias", bias),
                    _arg("eps", A(as_float=1e-5)),
                ],
                [_t("y"), _t("mean"), _t("rstd")],
            ),
        ]
    )


def test_extern_absent_optional_tensor_takes_no_tensor() -> None:
    """Was ``InputMismatchError`` at the call: an ``as_optional_tensor`` holding ``as_none``
    counted as a tensor the call must pass."""
    proxy = ExternKernelProxy(_layer_norm(A(as_optional_tensor=_opt(None))))
    x = torch.randn(2, 3)
    got = proxy.call_function(0, [3], [x])
    want = torch.ops.aten.native_layer_norm(x, [3], None, None, 1e-5)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


def test_extern_malformed_arguments_rejected_at_load() -> None:
    """Were accepted (the values come from the call, so they were never read)."""
    doc = json.loads(_layer_norm(A(as_optional_tensor=_opt(None))))
    inputs = doc["nodes"][0]["node"]["inputs"]
    inputs[0]["arg"] = {"as_tensor": "x"}
    with pytest.raises(ProgramError, match=r"argument 'input'.*expected a JSON object"):
        ExternKernelProxy(doc)
    doc = json.loads(_layer_norm(A(as_optional_tensor=_opt(None))))
    doc["nodes"][0]["node"]["inputs"][1]["arg"] = {"as_ints": [3, {"as_int_lists": -1}]}
    with pytest.raises(ProgramError, match=r"normalized_shape'\[1\]: expected an integer"):
        ExternKernelProxy(doc)
    doc = json.loads(_layer_norm(A(as_optional_tensor=_opt(None))))
    doc["nodes"][0]["node"]["inputs"][1]["arg"] = {"as_ints": [True]}
    with pytest.raises(ProgramError, match="expected an integer, got True"):
        ExternKernelProxy(doc)


def test_extern_tensor_list_output_that_is_no_list() -> None:
    """Was ``TypeError: object of type 'int' has no len()`` (long run, extern cases 32565 and
    38175: ``as_tensors`` of a split's output replaced by 2147483648, and by ``false``)."""
    doc = json.loads(
        extern_json(
            [
                _node(
                    "buf0",
                    "aten::split.Tensor",
                    [_arg("self", _t("x")), _arg("split_size", A(as_int=2))],
                    [A(as_tensors=[{"name": "a"}, {"name": "b"}])],
                )
            ]
        )
    )
    x = torch.arange(4.0)
    got = ExternKernelProxy(doc).call_function(0, [2], [x])
    assert all(torch.equal(g, w) for g, w in zip(got, torch.split(x, 2), strict=True))
    for bad in (2147483648, False):
        doc["nodes"][0]["node"]["outputs"][0]["as_tensors"] = bad
        with pytest.raises(ProgramError, match="as_tensors must be a list"):
            ExternKernelProxy(doc)


# --- torchbind executor and engine -----------------------------------------------------------


def test_torchbind_executor_ignores_unusable_input_metadata(tmp_path: Path) -> None:
    """Was ``ValueError`` (device index overflow) and ``AttributeError`` (tensor metadata not an
    object) from reading what to check of each input; the proxy never reads that metadata."""
    pytest.importorskip("torchexec_torchbind")

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.add(x, y, alpha=2)

    doc = json.loads(torchexec.normalize(f, (X, X)).serialized().model_json)
    first = doc["graph_module"]["signature"]["input_specs"][0]["user_input"]["arg"]
    metas = doc["graph_module"]["graph"]["tensor_values"]
    metas[first["as_tensor"]["name"]]["device"] = {"type": "cpu", "index": 2**70}
    path = tmp_path / "odd_device.json"
    path.write_text(json.dumps(doc))
    run = torchexec.prepare(path, X, X, executor="torchbind")
    assert torch.equal(run(X, X), torch.add(X, X, alpha=2))
    doc["graph_module"]["graph"]["tensor_values"] = []
    path.write_text(json.dumps(doc))
    run = torchexec.prepare(path, X, X, executor="torchbind")
    assert torch.equal(run(X, X), torch.add(X, X, alpha=2))


def _encoded(fn: Callable[..., Any], *args: torch.Tensor) -> tuple[Any, ...]:
    """The torchbind engine's encoded plan of ``fn`` traced on ``args``."""
    from torchexec_proxy import normalize_namespaces
    from torchexec_torchbind import encode_plan

    ser = torchexec.normalize(fn, args).serialized()
    plan = load_plan_from_json(ser.model_json, ser.weights, ser.constants)
    return encode_plan(plan, allowed_namespaces=normalize_namespaces(()))


def _with_args(encoded: tuple[Any, ...], target: str, change: Callable[[list[Any]], None]) -> Any:
    """``encoded`` with the argument rows of its ``target`` node passed through ``change``."""
    nodes = list(encoded[6])
    index = next(i for i, n in enumerate(nodes) if n[2] == target)
    row = list(nodes[index])
    args = [list(a) for a in row[4]]
    change(args)
    row[4] = [tuple(a) for a in args]
    nodes[index] = tuple(row)
    return (*encoded[:6], nodes, *encoded[7:])


def _engine(encoded: tuple[Any, ...]) -> Any:
    from torchexec_torchbind import engine_from_plan_state

    return engine_from_plan_state(encoded)


def test_engine_keyword_only_argument_by_position() -> None:
    """Was built and run, binding ``alpha`` by position (eager PyTorch refuses the call)."""
    from torchexec_torchbind import engine_from_plan_state

    encoded = _encoded(lambda x, y: torch.add(x, y, alpha=2), X, X)
    assert torch.equal(_engine(encoded).run([X, X])[0], X + 2 * X)

    def positional_alpha(args: list[Any]) -> None:
        for a in args:
            if a[0] == "alpha":
                a[0] = ""

    with pytest.raises(ProgramError, match="argument 'alpha' is keyword-only"):
        engine_from_plan_state(_with_args(encoded, "aten::add", positional_alpha))


def test_engine_argument_by_keyword_then_by_position() -> None:
    """Was built and run with ``slice(x, start, end, dim=d)`` read as ``slice(x, dim=start,
    start=end, end=step)``: a positional argument silently replaced the keyword one."""
    from torchexec_torchbind import engine_from_plan_state

    x = torch.arange(12.0).reshape(3, 4)
    encoded = _encoded(lambda t: t[:, 1:3] * 1, x)
    assert torch.equal(_engine(encoded).run([x])[0], x[:, 1:3])

    def dim_by_keyword(args: list[Any]) -> None:
        args[1][0] = "dim"  # (self, dim, start, end): dim now named, start and end still not

    with pytest.raises(ProgramError, match="argument 'dim' is given twice"):
        engine_from_plan_state(_with_args(encoded, "aten::slice", dim_by_keyword))


def test_engine_number_where_a_tensor_belongs() -> None:
    """Were built and run (``aten::gt.Tensor(x, True)``, ``torchexec_testing::scale_add`` with an
    int for its tensor): the engine wrapped any number into a tensor, where torch.ops, and so the
    ``aten`` reference, does that only for prims and a few ATen arithmetic operators."""
    from torchexec_torchbind import encode_static, engine_from_plan_state

    encoded = _encoded(lambda x, y: torch.gt(x, y) & torch.gt(x * 1.5, y), X, X)

    def number_for_other(args: list[Any]) -> None:
        args[1] = [args[1][0], *encode_static(True)[1:]]

    with pytest.raises(
        ProgramError, match=r"argument 'other' expects Tensor but the plan gives a constant"
    ):
        engine_from_plan_state(_with_args(encoded, "aten::gt", number_for_other))
    # mul is one of the operators that take numbers as tensors, as in torch.ops.aten.mul.Tensor
    doubled = _with_args(encoded, "aten::mul", number_for_other)
    assert torch.equal(_engine(doubled).run([X, X])[0], torch.gt(X, X) & torch.gt(X * True, X))


def test_plan_from_program_json_still_runs() -> None:
    """The fixes above leave valid programs alone."""
    runner = ProxyRunner(_load(_doc()))
    expected = Tiny()(X)
    got = runner(X.clone())
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def test_graph_value_kinds_must_be_the_signature_kinds() -> None:
    """Was accepted: a graph output listed as a TorchBind object where the signature returns a
    tensor of that name (torch refuses the program)."""
    doc = _doc()
    doc["graph_module"]["graph"]["outputs"][1] = {
        "as_custom_obj": {"name": "relu", "class_fqn": "__torch__.torch.classes.x.Y"}
    }
    with pytest.raises(ProgramError, match="graph output 1 is a TorchBind object 'relu', but "
                       "the signature's output 1 is a tensor 'relu'"):  # fmt: skip
        _load(doc)


def test_torchbind_method_name_that_is_not_text() -> None:
    """Was ``TypeError`` from torch looking up a method named by a lone surrogate (valid JSON:
    ``"\\udc80"``)."""
    testing = pytest.importorskip("torchexec_torchbind.testing")
    testing.load()
    scale = testing.scale(torch.tensor([2.0]))
    fqn = "__torch__.torch.classes.torchexec_testing.Scale"
    text = json.dumps(
        {"nodes": [{"name": "buf0", "node": {"target": "call_torchbind", "outputs": [],
                    "metadata": {}, "inputs": [
                        {"name": "_0", "arg": {"as_custom_obj": {"name": "s", "class_fqn": fqn}}},
                        {"name": "method", "arg": {"as_string": "\udc80"}}]}}]}
    )  # fmt: skip
    with pytest.raises(ProgramError, match="has no method"):
        ExternKernelProxy(text, custom_objs={"s": scale}, allowed_namespaces=[testing.NAMESPACE])
