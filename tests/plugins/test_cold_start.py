"""Preparing a file program on proxy or torchbind does not import torch's compiler stack.

``torch._export.serde.serialize`` imports ``torch._dynamo`` and most of the compiler (about 2 s
here): a first ``prepare`` in a fresh process (the CLI, a serving process, a test worker) would
pay it. Each check runs in a fresh interpreter, since this process has imported all of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

COMPILER_MODULES = (
    "torch._dynamo",
    "torch._inductor",
    "torch._export.serde.serialize",
    "torch._functorch.aot_autograd",
    "torch.fx.experimental.symbolic_shapes",
    "sympy",
)

_CHILD = """
import json, sys
import torch, torchexec

x = torch.tensor([-1.0, 0.5, 2.0])
results = []
for path, want in ((sys.argv[2], (x + 1.5).relu()), (sys.argv[3], x.sin() * 2)):
    run = torchexec.prepare(torchexec.Program.from_path(path), x, executor=sys.argv[1])
    results.append(torch.equal(run(x), want))
compiler = [m for m in json.loads(sys.argv[4]) if m in sys.modules]
print(json.dumps({"results": results, "compiler": compiler}))
"""


class _WithBuffer(torch.nn.Module):
    shift: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.full((3,), 1.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.shift).relu()


class _Stateless(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sin() * 2


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A ``.pt2`` archive with a buffer, and a stateless program as an ExportedProgram
    ``.json`` file (the archive's ``models/model.json``)."""
    root = tmp_path_factory.mktemp("cold")
    x = torch.randn(3)
    pt2 = root / "with_buffer.pt2"
    torch.export.save(torch.export.export(_WithBuffer(), (x,), strict=False), pt2)
    stateless = root / "stateless.pt2"
    torch.export.save(torch.export.export(_Stateless(), (x,), strict=False), stateless)
    with zipfile.ZipFile(stateless) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("models/model.json")]
        doc = archive.read(name)
    json_path = root / "stateless.json"
    json_path.write_bytes(doc)
    return pt2, json_path


@pytest.mark.parametrize("executor", ["proxy", "torchbind"])
def test_prepare_and_call_import_no_compiler(executor: str, programs: tuple[Path, Path]) -> None:
    pt2, json_path = programs
    modules = json.dumps(COMPILER_MODULES)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, executor, str(pt2), str(json_path), modules],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"results": [True, True], "compiler": []}


def test_dtype_table_agrees_with_torch() -> None:
    """The proxy's ``ScalarType`` table, which torchbind reads instead of torch's serializer,
    maps every code as ``torch._export.serde`` does."""
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    from torchexec_proxy import DTYPES

    assert dict(DTYPES) == {int(code): dtype for code, dtype in _SERIALIZE_TO_TORCH_DTYPE.items()}
