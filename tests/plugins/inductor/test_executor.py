"""The inductor executor on real models: agreement with aten, input checks, mutations, the cache.

Two programs are compiled for the whole module: an MLP with a dynamic batch (saved as a .pt2
archive, so that a child process can prepare the very same program) and a small CNN in training
mode whose batch norm updates its running statistics and which adds into a user input.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.export import Dim, ExportedProgram

import torchexec
from torchexec_inductor import _executor
from torchexec_inductor._compile import compile_package

RTOL, ATOL = 1e-4, 1e-5


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(torch.nn.functional.gelu(self.fc1(x)))
        return out


class CNN(torch.nn.Module):
    """Conv, batch norm in training mode (updates its buffers), pooling, a linear head; adds the
    batch's logits into ``acc`` (a user-input mutation)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))
        out: torch.Tensor = self.head(torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))
        acc.add_(out.detach().sum(0))
        return out


@dataclass
class Compiled:
    model: torch.nn.Module
    program: object
    prepared: torchexec.PreparedProgram


@pytest.fixture(scope="module")
def mlp(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(4, 16)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: Dim("batch", min=2, max=32)},))
    path = tmp_path_factory.mktemp("programs") / "mlp.pt2"
    torch.export.save(ep, path)
    return Compiled(model, str(path), torchexec.prepare(str(path), x, executor="inductor"))


@pytest.fixture(scope="module")
def cnn(cache_dir: Path) -> Compiled:
    torch.manual_seed(0)
    model = CNN().train()
    x, acc = torch.randn(2, 3, 8, 8), torch.zeros(4)
    ep = torch.export.export(copy.deepcopy(model), (x, acc))
    return Compiled(model, ep, torchexec.prepare(ep, x, acc, executor="inductor"))


def _refuse_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the package is cached")

    monkeypatch.setattr(_executor, "compile_package", refuse)


def test_mlp_agrees_with_aten(mlp: Compiled) -> None:
    x = torch.randn(4, 16)
    reference = torchexec.prepare(mlp.program, x, executor="aten")(x)
    got = mlp.prepared(x)
    torch.testing.assert_close(got, reference, rtol=RTOL, atol=ATOL)
    assert not torch.equal(got, torch.zeros_like(got))


def test_dynamic_batch_reuses_the_package(mlp: Compiled, monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_compile(monkeypatch)  # a new batch size prepares again, from the disk cache
    for batch in (2, 7, 32):
        x = torch.randn(batch, 16)
        got = torchexec.execute(mlp.program, x, executor="inductor")
        assert got.shape == (batch, 8)
        torch.testing.assert_close(got, mlp.model(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("shape", "dtype", "pattern"),
    [
        ((33, 16), torch.float32, r"input 0 \(x\) dimension 0: .* must lie in \[2, 32\].*got 33"),
        ((1, 16), torch.float32, r"must lie in \[2, 32\].*got 1"),
        ((4, 15), torch.float32, r"compiled for a torch.float32 tensor of shape \[\w+, 16\]"),
        ((4, 16), torch.float64, r"got a torch.float64 tensor"),
        ((4, 16, 1), torch.float32, r"got a torch.float32 tensor of shape \[4, 16, 1\]"),
    ],
)
def test_runner_rejects_other_inputs(
    mlp: Compiled, shape: tuple[int, ...], dtype: torch.dtype, pattern: str
) -> None:
    runner = mlp.prepared.runner  # the runner itself is safe, not only the core's checks
    with pytest.raises(torchexec.InputMismatchError, match=pattern):
        runner(torch.randn(shape, dtype=dtype))


def test_runner_rejects_wrong_arity(mlp: Compiled) -> None:
    with pytest.raises(torchexec.InputMismatchError, match="takes 1 inputs, got 2"):
        mlp.prepared.runner(torch.randn(4, 16), torch.randn(4, 16))


def test_runner_takes_other_batches_and_layouts(mlp: Compiled) -> None:
    runner = mlp.prepared.runner
    x = torch.randn(5, 16)
    (got,) = runner(x)
    torch.testing.assert_close(got, mlp.model(x), rtol=RTOL, atol=ATOL)
    xt = torch.randn(16, 6).t()  # not contiguous: copied into the compiled layout
    (got,) = runner(xt)
    torch.testing.assert_close(got, mlp.model(xt), rtol=RTOL, atol=ATOL)


def test_buffer_and_input_mutations(cnn: Compiled) -> None:
    torch.manual_seed(0)
    reference = copy.deepcopy(cnn.model)
    ep = torch.export.export(copy.deepcopy(cnn.model), (torch.randn(2, 3, 8, 8), torch.zeros(4)))
    on_aten = torchexec.prepare(ep, torch.randn(2, 3, 8, 8), torch.zeros(4), executor="aten")
    acc, acc_aten, acc_eager = torch.zeros(4), torch.zeros(4), torch.zeros(4)
    for _ in range(3):  # each call sees the statistics the previous one updated
        x = torch.randn(2, 3, 8, 8)
        got = cnn.prepared(x, acc)
        torch.testing.assert_close(got, on_aten(x, acc_aten), rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(got, reference(x, acc_eager), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(acc, acc_eager, rtol=RTOL, atol=ATOL)
    assert float(acc.abs().sum()) > 0
    state = cnn.prepared.program.exported_program().state_dict
    assert int(state["bn.num_batches_tracked"]) == 3
    for name in ("bn.running_mean", "bn.running_var"):
        torch.testing.assert_close(state[name], reference.state_dict()[name], rtol=RTOL, atol=ATOL)


def test_second_process_loads_without_compiling(
    mlp: Compiled, cache_dir: Path, tmp_path: Path
) -> None:
    x = torch.randn(3, 16)
    torch.save(x, tmp_path / "x.pt")
    child = (
        "import sys, time, torch, torchexec\n"
        "from torchexec_inductor import _executor\n"
        "def refuse(*a, **k):\n"
        "    raise SystemExit('compiled although the package is cached')\n"
        "_executor.compile_package = refuse\n"
        "x = torch.load(sys.argv[2])\n"
        "start = time.perf_counter()\n"
        "out = torchexec.execute(sys.argv[1], x, executor='inductor')\n"
        "print(f'prepared in {time.perf_counter() - start:.2f} s')\n"
        "torch.save(out, sys.argv[3])\n"
    )
    args = [str(mlp.program), str(tmp_path / "x.pt"), str(tmp_path / "out.pt")]
    proc = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prepared in" in proc.stdout
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), mlp.model(x), rtol=RTOL, atol=ATOL)


def test_corrupt_entry_is_compiled_again(
    mlp: Compiled, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [p for p in (cache_dir / "inductor").glob("*.json")]
    (record,) = [p for p in records if json.loads(p.read_text())["program"] == "mlp"]
    package = record.with_suffix(".pt2")
    good = package.read_bytes()
    package.write_bytes(good[: len(good) // 2])  # a partial write
    calls: list[Path] = []

    def compile_again(ep: ExportedProgram, path: Path, options: Mapping[str, object]) -> None:
        calls.append(path)
        compile_package(ep, path, options)

    monkeypatch.setattr(_executor, "compile_package", compile_again)
    x = torch.randn(6, 16)
    got = torchexec.execute(mlp.program, x, executor="inductor")
    assert len(calls) == 1 and calls[0].parent == package.parent
    torch.testing.assert_close(got, mlp.model(x), rtol=RTOL, atol=ATOL)
    assert json.loads(record.read_text())["size"] == package.stat().st_size


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_program_with_mutations(cache_dir: Path) -> None:
    torch.manual_seed(0)
    model = CNN().cuda().train()
    reference = copy.deepcopy(model)
    x, acc = torch.randn(2, 3, 8, 8, device="cuda"), torch.zeros(4, device="cuda")
    ep = torch.export.export(copy.deepcopy(model), (x, acc))
    run = torchexec.prepare(ep, x, acc, executor="inductor")
    acc_eager = torch.zeros(4, device="cuda")
    for _ in range(2):
        x = torch.randn(2, 3, 8, 8, device="cuda")
        got = run(x, acc)
        assert got.device.type == "cuda"
        torch.testing.assert_close(got, reference(x, acc_eager), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(acc, acc_eager, rtol=RTOL, atol=ATOL)
    state = ep.state_dict
    assert int(state["bn.num_batches_tracked"]) == 2
    torch.testing.assert_close(
        state["bn.running_mean"], reference.bn.running_mean, rtol=RTOL, atol=ATOL
    )
    with pytest.raises(torchexec.InputMismatchError, match=r"on cuda:0, got .* on cpu"):
        run.runner(x.cpu(), acc)
