"""``.pt2`` archives and ``.json`` files run from disk, without ``torch.export.load``."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy
from torchexec._cli import main as cli_main


class Views(nn.Module):
    """State that shares storage and starts at non-zero offsets."""

    top: torch.Tensor
    col: torch.Tensor
    tail: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
        self.register_buffer("top", base[:2])
        self.register_buffer("col", base[:, 3])
        self.register_buffer("tail", base[2:, 1:5])
        self.weight = nn.Parameter(torch.randn(6, 3))
        self.table = torch.arange(10, dtype=torch.int64)[3:8]  # a lifted constant view

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = (x @ self.top.t()).sum() + self.col.sum() + self.tail.mean()
        return x @ self.weight + y, self.table * 2


class Stateful(nn.Module):
    steps: torch.Tensor
    ema: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.register_buffer("ema", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps.add_(1)
        y = torch.nn.functional.gelu(self.lin(x))
        self.ema.mul_(0.5).add_(y.mean(0) * 0.5)
        return y * self.ema


def _model(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(3)
    if name == "views":
        return Views(), (torch.randn(2, 6),)
    if name == "stateful":
        return Stateful(), (torch.randn(3, 4),)
    if name == "cnn":
        m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(2))  # fmt: skip
        m(torch.randn(1, 3, 6, 6))
        return m.eval(), (torch.randn(2, 3, 6, 6),)
    raise AssertionError(name)


@pytest.fixture
def no_export_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every way back to an FX graph fail loudly."""
    import torch._export.serde.serialize as serde

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the proxy path must not deserialize the program")

    monkeypatch.setattr(torch.export, "load", forbidden)
    monkeypatch.setattr(serde, "deserialize", forbidden)


@pytest.mark.parametrize("name", ["views", "stateful", "cnn"])
def test_pt2_matches_torch_export_load(
    name: str, save_pt2: Callable[..., Path], bitwise: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, args = _model(name)
    path = save_pt2(model, *args)
    reference = torch.export.load(path).module()
    with monkeypatch.context() as m:
        m.setattr(torch.export, "load", _forbidden)
        run = torchexec.prepare(path, *args, executor="proxy")
        for _ in range(3):  # stateful programs carry their buffers across calls
            expected = reference(*args)
            bitwise(expected, run(*args))
    plan = run.runner.plan  # type: ignore[attr-defined]
    for name_, buffer in reference.named_buffers():
        if name_ in plan.state_values:
            bitwise(buffer, plan.state_values[name_])


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("torch.export.load must not be called on the proxy path")


def test_storage_sharing_and_offsets_preserved(save_pt2: Callable[..., Path], bitwise: Any) -> None:
    model, args = _model("views")
    path = save_pt2(model, *args)
    plan = torchexec_proxy.load_plan(torchexec.Program.from_path(path))
    state = plan.state_values
    for key in ("top", "col", "tail"):
        bitwise(getattr(model, key), state[key])
    bitwise(model.table, state["table"])
    storages = {state[k].untyped_storage().data_ptr() for k in ("top", "col", "tail")}
    assert len(storages) == 1, "buffers viewing one storage must still share it"
    assert state["col"].storage_offset() == 3 and state["col"].stride() == (6,)
    assert isinstance(state["weight"], nn.Parameter)


def test_cli_run_uses_the_proxy(save_pt2: Callable[..., Path], no_export_load: None) -> None:
    model, args = _model("stateful")
    path = save_pt2(model, *args)
    out = io.StringIO()
    assert cli_main(["run", str(path), "--executor", "proxy", "--repeat", "2"], out=out) == 0
    text = out.getvalue()
    assert "proxy" in text and "float32[3, 4]" in text


def test_json_program_file(tmp_path: Path, bitwise: Any, no_export_load: None) -> None:
    from torch._export.serde.serialize import serialize

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.relu(), y.sigmoid()]).cumsum(0)

    x, y = torch.randn(3), torch.randn(2)
    ep = torch.export.export(_Fn(fn), (x, y), strict=False)
    path = tmp_path / "program.json"
    path.write_bytes(serialize(ep).exported_program)
    run = torchexec.prepare(path, x, y, executor="proxy")
    bitwise(fn(x, y), run(x, y))


class _Fn(nn.Module):
    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


def _mark_pickled(name: str, data: bytes) -> bytes:
    """Rewrite ``lin.weight`` as a pickled payload, as torch.export.save stores subclasses."""
    if name == "data/weights/model_weights_config.json":
        config = json.loads(data)
        config["config"]["lin.weight"]["use_pickle"] = True
        config["config"]["lin.weight"]["path_name"] = "weight_pickled"
        return json.dumps(config).encode()
    return data


def test_pickled_payload_needs_allow_pickle(
    save_pt2: Callable[..., Path], rewrite_pt2: Callable[..., Path], bitwise: Any
) -> None:
    model, args = _model("stateful")
    path = save_pt2(model, *args)
    buf = io.BytesIO()
    weight = model.state_dict()["lin.weight"]
    torch.save(weight.clone(), buf)
    pickled = buf.getvalue()

    edited = rewrite_pt2(path, _mark_pickled)
    with zipfile.ZipFile(edited, "a") as z:  # add the pickled payload itself
        z.writestr(f"{edited.stem}/data/weights/weight_pickled", pickled)

    with pytest.raises(torchexec.ProgramError, match=r"lin\.weight.*allow_pickle=True"):
        torchexec_proxy.load_plan(torchexec.Program.from_path(edited))
    plan = torchexec_proxy.load_plan(torchexec.Program.from_path(edited), allow_pickle=True)
    bitwise(weight, plan.state_values["lin.weight"])
    expected = torch.export.load(path).module()(*args)
    bitwise(expected, torchexec_proxy.ProxyRunner(plan)(*args)[0])


def test_torchbind_constants_from_pt2(
    torchbind_testing: Any, save_pt2: Callable[..., Path], bitwise: Any, no_export_load: None
) -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torchbind_testing.scale(torch.tensor([2.0, -1.0, 0.5]))
            self.acc = torchbind_testing.accumulator(torch.zeros(3))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.scale.apply(x)
            total = self.acc.add(y)
            out = torch.ops.torchexec_testing.scale_add(self.scale, total, 0.5)
            return out, self.scale.get_weight()

    x = torch.randn(3)
    model = Holder()
    path = save_pt2(model, x)
    opts = {"allowed_namespaces": [torchbind_testing.NAMESPACE]}
    run = torchexec.prepare(path, x, executor="proxy", executor_parameters=opts)
    weight = torch.tensor([2.0, -1.0, 0.5])
    total = torch.zeros(3)
    for _ in range(3):  # the accumulator keeps its total between calls
        total = total + x * weight
        bitwise((total + 0.5 * weight, weight), run(x))
    with pytest.raises(torchexec.ProgramError, match="not allowed"):
        torchexec.prepare(path, x, executor="proxy")


def test_custom_objs_option_replaces_archived_objects(
    torchbind_testing: Any, save_pt2: Callable[..., Path], bitwise: Any
) -> None:
    class UsesScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torchbind_testing.scale(torch.tensor([1.0, 1.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.scale.apply(x)
            return out

    x = torch.randn(2)
    path = save_pt2(UsesScale(), x)
    other = torchbind_testing.scale(torch.tensor([3.0, 4.0]))
    run = torchexec.prepare(
        path, x, executor="proxy", executor_parameters={"custom_objs": {"scale": other}}
    )
    bitwise(x * torch.tensor([3.0, 4.0]), run(x))
    with pytest.raises(torchexec.ProgramError, match="no custom object of that name"):
        torchexec.prepare(
            path, x, executor="proxy", executor_parameters={"custom_objs": {"scal": other}}
        )
