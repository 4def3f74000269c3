"""The onnxruntime executor: agreement with aten on real models, dynamic shapes, mutations,
options, operator claims, zero-copy I/O and errors."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.export import Dim

import torchexec

pytest.importorskip("torchexec_onnxruntime", reason="torchexec-onnxruntime is not installed")
pytest.importorskip("onnxruntime")


def _close(actual: Any, expected: Any) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def _ort() -> Any:
    return torchexec.get_executor("onnxruntime")


def _prepare(program: object, *args: Any, **options: object) -> Callable[..., Any]:
    """The executor's own runner (no input-spec check: dynamic shapes reach the session)."""
    ex = _ort()
    prog = torchexec.normalize(program, args)
    return ex.prepare(prog, ex.validate_options({"intra_op_num_threads": 1, **options}))  # type: ignore[no-any-return]


class _CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        out: torch.Tensor = self.fc(h.flatten(1)).log_softmax(-1)
        return out


class _Accumulate(torch.nn.Module):
    """Mutates a persistent buffer, a non-persistent one and a user input."""

    total: torch.Tensor
    calls: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.register_buffer("total", torch.zeros(4))
        self.register_buffer("calls", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.total.add_(x.sum(0))
        self.calls.add_(1)
        seen.mul_(2)
        return self.lin(x) + self.total, seen


def _models() -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    from torchexec._demo import DemoModel

    encoder = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True)
    return [
        ("mlp", DemoModel(), torch.randn(8, 64)),
        ("cnn", _CNN(), torch.randn(2, 3, 8, 8)),
        ("encoder", encoder, torch.randn(2, 5, 32)),
    ]


@pytest.mark.parametrize("case", _models(), ids=lambda c: c[0])
def test_models_agree_with_aten(case: tuple[str, torch.nn.Module, torch.Tensor]) -> None:
    _, model, x = case
    model.eval()
    ep = torch.export.export(model, (x,))
    expected = torchexec.execute(ep, x, executor="aten")
    got = torchexec.execute(ep, x, executor="onnxruntime")
    assert got.device == x.device and got.dtype == expected.dtype
    _close(got, expected)


def test_dynamic_batch_is_a_dynamic_onnx_axis() -> None:
    from torchexec._demo import DemoModel

    model = DemoModel().eval()
    x = torch.randn(4, 64)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: Dim("batch")},))
    run = _prepare(ep, x)
    for batch in (1, 4, 17):
        xb = torch.randn(batch, 64)
        (out,) = run(xb)
        assert out.shape == (batch, 64)
        _close(out, model(xb).detach())


def test_buffer_and_input_mutations_are_applied() -> None:
    torch.manual_seed(0)
    ref_model = _Accumulate()
    model = copy.deepcopy(ref_model)
    x = torch.randn(3, 4)
    seen = torch.ones(4)
    ref = torchexec.prepare(torch.export.export(ref_model, (x, seen)), x, seen, executor="aten")
    run = torchexec.prepare(torch.export.export(model, (x, seen)), x, seen, executor="onnxruntime")
    ep = run.program.exported_program()
    ref_ep = ref.program.exported_program()
    for step in range(2):  # the second call reads the buffers the first one wrote
        xs = torch.randn(3, 4)
        seen_ref, seen_ort = torch.ones(4), torch.ones(4)
        expected = ref(xs, seen_ref)
        got = run(xs, seen_ort)
        _close(got[0], expected[0].detach())
        assert torch.equal(seen_ort, torch.full((4,), 2.0)), step
        assert torch.equal(got[1], seen_ort)
        _close(ep.state_dict["total"], ref_ep.state_dict["total"])
        assert float(ep.constants["calls"]) == float(ref_ep.constants["calls"]) == step + 1


def test_outputs_that_the_graph_does_not_compute() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
        return x.sin(), 3, x, x > 0

    x = torch.randn(5)
    sin, three, same, positive = torchexec.execute(f, x, executor="onnxruntime")
    _close(sin, x.sin())
    assert three == 3 and same is x
    assert positive.dtype == torch.bool and torch.equal(positive, x > 0)


def test_bool_and_integer_inputs() -> None:
    def f(mask: torch.Tensor, a: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, a, -a) * n

    mask, a, n = torch.tensor([True, False, True]), torch.randn(3), torch.tensor([1, 2, 3])
    got = torchexec.execute(f, mask, a, n, executor="onnxruntime")
    assert torch.equal(got, f(mask, a, n))


def test_training_batch_norm_is_refused() -> None:
    bn = torch.nn.BatchNorm1d(4).train()
    x = torch.randn(3, 4)
    ep = torch.export.export(bn, (x,))
    with pytest.raises(torchexec.ProgramError, match="batch_norm"):
        torchexec.prepare(ep, x, executor="onnxruntime")
    ex = _ort()
    with pytest.raises(torchexec.ProgramError, match=r"training mode.*aten::batch_norm"):
        ex.prepare(torchexec.normalize(ep, (x,)), ex.validate_options(None))
    out = torchexec.execute(ep, x, executor=["onnxruntime", "aten"])
    assert out.shape == (3, 4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": 1}, "no option 'threads'"),
        ({"intra_op_num_threads": "2"}, "must be int"),
        ({"inter_op_num_threads": -1}, "must be >= 0"),
        ({"graph_optimization_level": "max"}, "must be one of disable_all, basic"),
        ({"providers": "CPUExecutionProvider"}, "must be list or tuple"),
        ({"providers": []}, "non-empty list"),
        ({"providers": [1]}, "provider names"),
    ],
)
def test_option_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(torchexec.InvalidOptionsError, match=message):
        _ort().validate_options(options)


def test_unavailable_provider_is_refused_at_prepare() -> None:
    x = torch.randn(2)
    with pytest.raises(torchexec.InvalidOptionsError, match="NoSuchExecutionProvider"):
        torchexec.prepare(
            torch.sin, x, executor="onnxruntime",
            executor_parameters={"providers": ["NoSuchExecutionProvider"]},
        )  # fmt: skip


def test_options_reach_the_session() -> None:
    x = torch.randn(3, 3)
    options = {"graph_optimization_level": "disable_all", "inter_op_num_threads": 1}
    run = _prepare(lambda a: (a @ a).relu(), x, **options)
    so = run._sess.session_options  # type: ignore[attr-defined]
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (1, 1)
    assert so.graph_optimization_level.name == "ORT_DISABLE_ALL"
    _close(run(x)[0], (x @ x).relu())


def _nodes() -> dict[str, torch.fx.Node]:
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Any:
        mm = torch.addmm(c, a, b)
        pos = torch.searchsorted(torch.sort(c).values, a)
        u, s, v = torch.linalg.svd(a)
        return mm, pos, u, s, v, a.max(dim=0)

    gm = make_fx(f)(torch.randn(3, 3), torch.randn(3, 3), torch.randn(3))
    return {n.name: n for n in gm.graph.nodes}


def test_supports_asks_the_exporter_registry() -> None:
    nodes = _nodes()
    ex = _ort()
    by_target = {str(n.target): ex.supports(n) for n in nodes.values() if n.op == "call_function"}
    assert by_target["aten.addmm.default"] is True
    assert by_target["aten.sort.default"] is True
    assert by_target["aten.searchsorted.Tensor"] is False
    assert by_target["aten._linalg_svd.default"] is False
    # not operator nodes: claimed, they follow their producer
    assert ex.supports(nodes["a_1"]) and ex.supports(nodes["output"])
    assert any(
        ex.supports(n)
        for n in nodes.values()
        if n.target.__class__.__name__ == "builtin_function_or_method"
    )


def test_unclaimed_operator_errors_name_it() -> None:
    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(a, b) + 1

    a, b = torch.arange(5.0), torch.randn(3)
    with pytest.raises(torchexec.ProgramError, match=r"aten::searchsorted"):
        torchexec.prepare(f, a, b, executor="onnxruntime")
    ex = _ort()
    with pytest.raises(torchexec.ProgramError, match=r"cannot translate aten::searchsorted"):
        ex.prepare(torchexec.normalize(f, (a, b)), ex.validate_options(None))
    got = torchexec.execute(f, a, b, executor=["onnxruntime", "aten"])
    assert torch.equal(got, torch.searchsorted(a, b) + 1)


def test_inputs_and_outputs_share_memory_with_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchexec_onnxruntime._runner import to_ortvalue, to_torch

    x = torch.randn(4, 5)
    value = to_ortvalue(x)
    assert value.data_ptr() == x.data_ptr()
    back = to_torch(value)
    assert back.data_ptr() == x.data_ptr() and torch.equal(back, x)
    assert to_ortvalue(x.t()).data_ptr() != x.data_ptr()  # not contiguous: a contiguous copy

    run = _prepare(lambda a: a * 2 + 1, x)
    import numpy as np
    import onnxruntime  # type: ignore[import-untyped]

    def no_numpy(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy was used")

    monkeypatch.setattr(torch.Tensor, "numpy", no_numpy)
    monkeypatch.setattr(torch, "from_numpy", no_numpy)
    monkeypatch.setattr(onnxruntime.OrtValue, "numpy", no_numpy)
    monkeypatch.setattr(np, "asarray", no_numpy)
    (out,) = run(x)
    torch.testing.assert_close(out, x * 2 + 1)
    (again,) = run(x)
    assert again.data_ptr() != out.data_ptr()  # each call returns its own tensor


def test_plugin_module_imports_cheaply() -> None:
    code = (
        "import sys, torchexec_onnxruntime as m; "
        "m.torchexec_register_executors(lambda spec: None); "
        "heavy = [n for n in ('torch', 'onnx', 'onnxruntime', 'onnxscript') if n in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_kit_files_ship_with_the_plugin() -> None:
    import torchexec_onnxruntime as m
    from torchexec.testing.compare import Tolerances
    from torchexec.testing.skips import SkipList

    shipped = Tolerances.shipped()
    merged = shipped.merged(Tolerances.load(m.tolerances_file()))
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        ours, theirs = merged.for_dtype(dtype), shipped.for_dtype(dtype)
        assert ours.rtol >= theirs.rtol and ours.atol >= theirs.atol, dtype
    entries = SkipList.load([m.skips_file()], shipped=False).entries
    assert entries and all(e.executor == "onnxruntime" and e.reason for e in entries)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs() -> None:
    import onnxruntime

    x = torch.randn(4, 4, device="cuda")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(torchexec.ExecutorError, match="CUDA provider"):
            torchexec.prepare(torch.sin, x, executor="onnxruntime")
        return
    out = torchexec.execute(lambda a: (a @ a).relu(), x, executor="onnxruntime")
    assert out.device == x.device
    _close(out, (x @ x).relu())
