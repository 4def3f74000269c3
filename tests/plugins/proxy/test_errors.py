"""Bad programs fail at load with a ProgramError naming the node and what was expected."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy
from torchexec_proxy import load_plan_from_json

Doc = dict[str, Any]


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x + y, x * self.w]).sum(0)


@pytest.fixture
def program(export_json: Callable[..., Any]) -> tuple[Doc, dict[str, torch.Tensor]]:
    """The JSON document of ``Small`` and its weights; nodes: add, mul, cat, sum_1."""
    doc, ep = export_json(Small(), torch.randn(3), torch.randn(3))
    names = [n["name"] for n in _nodes(doc)]
    assert names == ["add", "mul", "cat", "sum_1"], names
    return doc, dict(ep.state_dict)


def _nodes(doc: Doc) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = doc["graph_module"]["graph"]["nodes"]
    return nodes


def _node(doc: Doc, name: str) -> dict[str, Any]:
    return next(n for n in _nodes(doc) if n["name"] == name)


def _load(doc: Doc | bytes, weights: dict[str, torch.Tensor], **kw: Any) -> Any:
    return load_plan_from_json(doc, weights, {}, **kw)


def _expect(doc: Doc, weights: dict[str, torch.Tensor], *patterns: str) -> str:
    with pytest.raises(torchexec.ProgramError) as info:
        _load(doc, weights)
    message = str(info.value)
    for p in patterns:
        assert re.search(p, message), f"{p!r} not in {message!r}"
    return message


def test_the_unmodified_program_loads(program: tuple[Doc, Any], bitwise: Any) -> None:
    doc, weights = program
    plan = _load(doc, weights)
    x, y = torch.randn(3), torch.randn(3)
    bitwise([torch.cat([x + y, x]).sum(0)], torchexec_proxy.ProxyRunner(plan)(x, y))


def test_malformed_json(program: tuple[Doc, Any]) -> None:
    _, weights = program
    with pytest.raises(torchexec.ProgramError, match="invalid program JSON"):
        _load(b'{"graph_module": {', weights)
    with pytest.raises(torchexec.ProgramError, match="not an object"):
        _load(b"[1, 2]", weights)


def test_json_only_the_standard_library_reads_still_loads(program: tuple[Doc, Any]) -> None:
    """msgspec, the loader's decoder, refuses ``NaN`` literals and escaped lone surrogates,
    which ``json.loads`` reads; such a document is decoded by ``json.loads`` instead."""
    doc, weights = program
    _node(doc, "add")["metadata"] = {"stack_trace": "\ud800", "seen": float("nan")}
    text = json.dumps(doc).encode()
    assert b"NaN" in text and b"\\ud800" in text
    plan = _load(text, weights)
    assert [n.name for n in plan.nodes] == ["add", "mul", "cat", "sum_1"]


def test_wrong_schema_version(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    doc["schema_version"]["major"] = 7
    _expect(doc, weights, r"unsupported schema version 7\.")
    del doc["schema_version"]
    _expect(doc, weights, "no schema_version")


def test_unknown_operator(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "mul")["target"] = "torch.ops.aten.not_an_op.default"
    _expect(doc, weights, r"node 'mul'", "unknown operator", "not_an_op")


def test_unknown_overload(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "add")["target"] = "torch.ops.aten.add.NoSuchOverload"
    _expect(doc, weights, r"node 'add'", "no overload 'NoSuchOverload'")


@pytest.mark.parametrize(
    "target",
    ["builtins.eval", "os.system", "torch.load", "_operator.getitem", "torch.ops.aten.add"],
)
def test_targets_outside_the_allow_list(program: tuple[Doc, Any], target: str) -> None:
    doc, weights = program
    _node(doc, "add")["target"] = target
    _expect(doc, weights, r"node 'add'", "unknown target")


def test_namespace_not_allowed(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "add")["target"] = "torch.ops.quantized.add.default"
    message = _expect(doc, weights, r"node 'add'", "namespace 'quantized'", "not allowed")
    assert "allowed_namespaces" in message
    # allowing it moves the check on to the operator's schema
    with pytest.raises(torchexec.ProgramError, match=r"node 'add'.*has no argument 'self'"):
        _load(doc, weights, allowed_namespaces=["quantized"])


def test_unsupported_higher_order_operators(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "add")["target"] = "torch.ops.higher_order.flex_attention"
    _expect(doc, weights, r"node 'add'", "'torch.ops.higher_order.flex_attention' is not supported")


def test_value_used_before_definition(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    nodes = _nodes(doc)
    nodes[0], nodes[2] = nodes[2], nodes[0]  # cat now runs before add
    _expect(doc, weights, r"node 'cat'", r"'add' is used before it is defined")


def test_value_never_defined(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "mul")["inputs"][0]["arg"] = {"as_tensor": {"name": "ghost"}}
    _expect(doc, weights, r"node 'mul'", r"argument 'self'", "'ghost' is used but never defined")


def test_renamed_argument(program: tuple[Doc, Any]) -> None:
    """torch.export.load silently drops such an input; the proxy rejects it."""
    doc, weights = program
    _node(doc, "add")["inputs"][1]["name"] = "othr"
    _expect(doc, weights, r"node 'add'", "has no argument 'othr'", "self, other, alpha")


def test_missing_required_argument(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    del _node(doc, "mul")["inputs"][0]
    _expect(doc, weights, r"node 'mul'", "missing argument 'self'")


@pytest.mark.parametrize(
    ("node", "index", "arg", "pattern"),
    [
        (
            "cat",
            0,
            {"as_int": 3},
            r"argument 'tensors'.*List\[Tensor\] takes as_tensors; got as_int 3",
        ),
        ("sum_1", 1, {"as_string": "0"}, r"argument 'dim'.*got as_string"),
        ("sum_1", 1, {"as_ints": [0, "1"]}, r"argument 'dim'.*expected an integer"),
        ("add", 1, {"as_scalar_type": 99}, r"argument 'other'.*got as_scalar_type"),
        ("add", 0, {"as_tensor": {"name": 3}}, r"argument 'self'.*'name' must be str"),
        ("add", 0, {"as_tensor": {}, "as_int": 1}, r"argument 'self'.*exactly one field"),
    ],
)
def test_wrong_argument_type(
    program: tuple[Doc, Any], node: str, index: int, arg: Any, pattern: str
) -> None:
    doc, weights = program
    _node(doc, node)["inputs"][index]["arg"] = arg
    _expect(doc, weights, rf"node '{node}'", pattern)


def test_symint_where_tensor_expected() -> None:
    class Reshape(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0] * 2, -1)

    from torch._export.serde.serialize import serialize

    batch = torch.export.Dim("b", min=2, max=8)
    ep = torch.export.export(
        Reshape(), (torch.randn(4, 2),), dynamic_shapes=({0: batch},), strict=False
    )
    doc = json.loads(serialize(ep).exported_program)
    reshape = next(n for n in _nodes(doc) if n["target"] == "torch.ops.aten.reshape.default")
    sym = next(n for n in _nodes(doc) if n["target"] == "_operator.mul")
    reshape["inputs"][0]["arg"] = {"as_tensor": {"name": sym["name"]}}
    _expect(doc, {}, rf"node '{reshape['name']}'", "expected a tensor", "is a SymInt")


def test_wrong_output_count(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "add")["outputs"].append({"as_tensor": {"name": "extra"}})
    _expect(doc, weights, r"node 'add'", "lists 2 outputs but the operator returns 1")


def test_value_defined_twice(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    _node(doc, "mul")["outputs"] = [{"as_tensor": {"name": "add"}}]
    _expect(doc, weights, r"node 'mul'", "'add' is defined twice")


def test_undefined_program_output(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    spec = doc["graph_module"]["signature"]["output_specs"][0]
    spec["user_output"]["arg"] = {"as_tensor": {"name": "nowhere"}}
    _expect(doc, weights, "output 0", "'nowhere' is used but never defined")


def test_missing_or_mismatched_weights(program: tuple[Doc, Any]) -> None:
    doc, _ = program
    _expect(doc, {}, r"parameter 'w'", "has no value")
    _expect(doc, {"w": torch.ones(4)}, r"parameter 'w'", r"expects shape \[3\]")
    _expect(doc, {"w": torch.ones(3, dtype=torch.float64)}, "expects dtype float32")
    _expect(doc, {"w": [1.0, 1.0, 1.0]}, "expected a tensor")  # type: ignore[dict-item]


def test_unsupported_signature_kinds(program: tuple[Doc, Any]) -> None:
    doc, weights = program
    broken = copy.deepcopy(doc)
    broken["graph_module"]["signature"]["output_specs"].append(
        {"gradient_to_parameter": {"arg": {"name": "sum_1"}, "parameter_name": "w"}}
    )
    _expect(broken, weights, "output 1", "gradient_to_parameter outputs are not supported")


def test_json_file_errors_name_the_file(export_json: Callable[..., Any], tmp_path: Path) -> None:
    doc, _ = export_json(lambda x, y: torch.cat([x, y]), torch.randn(2), torch.randn(2))
    _node(doc, "cat")["inputs"][0]["arg"] = {"as_int": 3}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(torchexec.ProgramError, match=r"bad\.json.*node 'cat'"):
        torchexec_proxy.load_plan(torchexec.Program.from_path(path))


def test_truncated_archive(save_pt2: Callable[..., Path], tmp_path: Path) -> None:
    path = save_pt2(Small(), torch.randn(3), torch.randn(3))
    data = path.read_bytes()
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(torchexec.ProgramError, match=r"not a readable \.pt2 archive"):
        torchexec_proxy.load_plan(torchexec.Program(path=cut, name="cut"))
    with pytest.raises(torchexec.ProgramError, match=r"cut\.pt2"):
        torchexec.prepare(cut, torch.randn(3), torch.randn(3), executor="proxy")


def test_archive_payload_too_small(
    save_pt2: Callable[..., Path], rewrite_pt2: Callable[..., Path]
) -> None:
    path = save_pt2(Small(), torch.randn(3), torch.randn(3))

    def shrink(name: str, data: bytes) -> bytes:
        return data[:4] if name == "data/weights/weight_0" else data

    edited = rewrite_pt2(path, shrink)
    with pytest.raises(torchexec.ProgramError, match=r"'w'.*needs 3 elements.*holds 1"):
        torchexec_proxy.load_plan(torchexec.Program.from_path(edited))


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"allowed_namespace": ["x"]}, "Did you mean 'allowed_namespaces'"),
        ({"allowed_namespaces": "quantized"}, "must be list or tuple"),
        ({"allowed_namespaces": [1]}, "must hold strings"),
        ({"allow_pickle": 1}, "must be bool"),
        ({"custom_objs": {1: object()}}, "must map names"),
    ],
)
def test_invalid_options(options: dict[str, Any], pattern: str) -> None:
    with pytest.raises(torchexec.InvalidOptionsError, match=pattern):
        torchexec.execute(lambda x: x + 1, torch.ones(2), executor="proxy",
                          executor_parameters=options)  # fmt: skip
