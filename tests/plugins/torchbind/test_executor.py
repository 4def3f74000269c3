"""The torchbind executor through torchexec: registry, options, lazy loading, memory, CUDA."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from benchmarks.programs import peak_bytes

from .conftest import TESTING_NS, Agree, assert_same

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("engine_lib")


def test_registry_metadata() -> None:
    info = {i.name: i for i in torchexec.list_executors()}["torchbind"]
    assert info.distribution == "torchexec-torchbind"
    ex = torchexec.get_executor("torchbind")
    assert ex.name == "torchbind"
    assert ex.capabilities.devices == ("cpu", "cuda")
    assert ex.capabilities.torchbind and ex.capabilities.bitwise
    assert ex.validate_options(None) == {
        "allowed_namespaces": (),
        "custom_objs": {},
        "allow_pickle": False,
        "process_groups": {},
        "max_loop_iterations": None,
    }


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"allowed_namespace": ["x"]}, "no option 'allowed_namespace'. Did you mean 'allowed_namespaces'"),
        ({"allowed_namespaces": "my_ops"}, "must be list or tuple"),
        ({"allowed_namespaces": ["my ops"]}, "must hold namespace names"),
        ({"allow_pickle": 1}, "must be bool"),
        ({"custom_objs": {1: None}}, "executor 'torchbind' must map names"),
        ({"custom_objs": [1]}, "must be Mapping"),
    ],
)  # fmt: skip
def test_invalid_options(options: dict[str, object], match: str) -> None:
    with pytest.raises(torchexec.InvalidOptionsError, match=match):
        torchexec.get_executor("torchbind").validate_options(options)


def test_options_and_metadata_stated_once() -> None:
    """The options are the proxy's table; the registry and the executor show one description."""
    from torchexec_proxy import options

    ex: Any = torchexec.get_executor("torchbind")
    assert ex.options is options.OPTIONS
    info = {i.name: i for i in torchexec.list_executors()}["torchbind"]
    assert (info.description, info.capabilities) == (ex.description, ex.capabilities)
    assert "C++ TorchBind engine" in ex.description


def test_library_loads_lazily() -> None:
    """Importing the plugin (and listing executors) does not load the compiled engine."""
    code = (
        "import torch, torchexec, torchexec_torchbind\n"
        "torchexec.list_executors()\n"
        "assert not torch.ops.loaded_libraries, torch.ops.loaded_libraries\n"
        "torchexec.get_executor('torchbind')\n"
        "(path,) = torch.ops.loaded_libraries\n"
        "assert '_lib_engine' in path, path\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_peak_memory_not_above_gm_forward() -> None:
    """Intermediates are released at their last use (moved into the call or freed after it)."""

    def chain(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for _ in range(6):
            x = torch.sin(x) * y + 1
        return x

    x, y = torch.randn(1 << 18), torch.randn(1 << 18)
    gm = make_fx(chain)(x, y)
    run = torchexec.prepare(gm, x, y, executor="torchbind")
    run(x, y)
    engine_peak = peak_bytes(lambda: run(x, y), CPU)
    eager_peak = peak_bytes(lambda: gm(x, y), CPU)
    assert 0 < engine_peak <= eager_peak
    assert engine_peak <= 3 * x.nbytes  # never more than two intermediates and an output


@pytest.mark.gpu
def test_cuda_programs(cuda: torch.device, agree: Agree) -> None:
    x = torch.randn(64, 32, device=cuda)
    y = torch.randn(64, 32, device=cuda)
    agree(lambda a, b: (torch.relu(a @ b.t()) * 0.5 + 1).softmax(-1), x, y)
    agree(lambda a, b: (*torch.max(a, 1), torch.cat([a, b]), a[:, ::2] + 1), x, y)
    mlp = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.GELU()).to(cuda)
    with torch.no_grad():
        agree(mlp, x)


@pytest.mark.gpu
def test_cuda_torchbind_objects_and_devices(cuda: torch.device, testing_lib: None) -> None:
    from torchexec_torchbind import testing

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale: Any = testing.scale(torch.tensor([1.0, 2.0, 3.0], device=cuda))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.scale.apply(x)
            out: torch.Tensor = torch.ops.torchexec_testing.scale_add(self.scale, y, 2)
            return out

    m = Model()
    x = torch.randn(4, 3, device=cuda)
    ep = torch.export.export(m, (x,), strict=False)
    run = torchexec.prepare(
        ep, x, executor="torchbind", executor_parameters={"allowed_namespaces": [TESTING_NS]}
    )
    assert_same(run(x), m(x))
    with pytest.raises(torchexec.InputMismatchError, match="must be on cuda"):
        run.runner(x.cpu())
