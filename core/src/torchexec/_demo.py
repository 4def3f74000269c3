"""The main job of ``make demo``: export a small model and run it on every installed executor."""

from __future__ import annotations

import functools
import time
from typing import TextIO

import torch
import torch.utils._pytree as pytree

from torchexec._table import print_table
from torchexec._timing import side_by_side

__all__ = ["DemoModel", "run_demo"]


class DemoModel(torch.nn.Module):
    """A small MLP with a layer norm and a residual connection."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 64)
        self.norm = torch.nn.LayerNorm(64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.gelu(self.fc1(x))
        out: torch.Tensor = self.norm(x + self.fc2(h)).softmax(-1)
        return out


_RTOL = _ATOL = 1e-5
"""How close an executor that is not bitwise must come to aten on the demo model (float32)."""


def run_demo(out: TextIO, repeat: int = 50) -> int:
    """Export :class:`DemoModel`, run it on each executor, print agreement with aten and timings."""
    import torchexec

    torch.manual_seed(0)
    model = DemoModel().eval()
    x = torch.randn(32, 64)
    t0 = time.perf_counter()
    program = torchexec.normalize(torch.export.export(model, (x,)), (x,))
    export_s = time.perf_counter() - t0
    print(
        f"Exported DemoModel (MLP + LayerNorm, input {list(x.shape)}) in {export_s:.2f} s", file=out
    )
    reference = torchexec.prepare(program, x, executor="aten")(x)
    eager = functools.partial(model, x)
    rows = [["EXECUTOR", "STATUS", "AGREES WITH ATEN", "MAX ABS DIFF", "US/CALL", "VS EAGER"]]
    failures = 0
    for info in torchexec.list_executors():
        if info.status in ("broken", "conflict"):
            rows.append([info.name, info.status, "-", "-", "-", "-"])
            continue
        try:
            run = torchexec.prepare(program, x, executor=info.name)
            got = run(x)
            per_call, _, ratio = side_by_side(functools.partial(run, x), eager, repeat, 5)
        except torchexec.TorchexecError as exc:
            failures += 1
            rows.append([info.name, f"error: {exc}"[:60], "-", "-", "-", "-"])
            continue
        pairs = list(zip(pytree.tree_leaves(got), pytree.tree_leaves(reference), strict=True))
        same = all(torch.equal(a, b) for a, b in pairs)
        with torch.no_grad():
            diff = max(float((a.double() - b.double()).abs().max()) for a, b in pairs)
        bitwise = info.capabilities is None or info.capabilities.bitwise
        # An executor with other kernels (bitwise=False) agrees within the demo's tolerance.
        close = same or (
            not bitwise and all(torch.allclose(a, b, rtol=_RTOL, atol=_ATOL) for a, b in pairs)
        )
        failures += 0 if close else 1
        verdict = "bit for bit" if same else f"within {_ATOL:g}" if close else "NO"
        rows.append(
            [
                info.name,
                "ok",
                verdict,
                f"{diff:.2e}",
                f"{per_call * 1e6:.1f}",
                f"{ratio:.2f}x",
            ]
        )
    print(
        "Times are per call; VS EAGER is measured side by side with the model's forward.", file=out
    )
    print_table(rows, out)
    return 1 if failures else 0
