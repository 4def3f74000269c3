"""Bad inputs at call time raise the same documented error, naming the input, on every executor."""

from __future__ import annotations

import pytest
import torch

import torchexec
from torchexec import InputMismatchError

from .conftest import installed_shipped


def _f(x: torch.Tensor, y: torch.Tensor, *, scale: float) -> torch.Tensor:
    return (x @ y) * scale


X, Y = torch.randn(2, 3), torch.randn(3, 4)

CASES = [
    ("count", (X,), {"scale": 2.0}, r"expected 2 positional arguments, got 1"),
    (
        "dtype",
        (X.double(), Y),
        {"scale": 2.0},
        r"args\[0\].*expected dtype torch\.float32, got torch\.float64",
    ),
    ("rank", (X, Y[0]), {"scale": 2.0}, r"args\[1\].*expected shape \[3, 4\], got \[4\]"),
    (
        "shape",
        (X, torch.randn(3, 5)),
        {"scale": 2.0},
        r"args\[1\].*expected shape \[3, 4\], got \[3, 5\]",
    ),
    ("device", (X.to("meta"), Y), {"scale": 2.0}, r"args\[0\].*expected device cpu, got meta"),
    (
        "not a tensor",
        (X, [[1.0] * 4] * 3),
        {"scale": 2.0},
        r"args\[1\]: expected a single value, got a list of 12 values",
    ),
    ("number", (X, 7), {"scale": 2.0}, r"args\[1\].*expected a torch\.float32 tensor.*got int 7"),
    (
        "tensor for number",
        (X, Y),
        {"scale": torch.tensor(2.0)},
        r"kwargs\['scale'\].*specialised.*got torch\.float32 tensor",
    ),
    ("other number", (X, Y), {"scale": 3.0}, r"kwargs\['scale'\].*float 2\.0.*got float 3\.0"),
]


@pytest.mark.parametrize("executor", installed_shipped())
@pytest.mark.parametrize(("case", "args", "kwargs", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    executor: str, case: str, args: tuple[object, ...], kwargs: dict[str, object], pattern: str
) -> None:
    run = torchexec.prepare(_f, X, Y, scale=2.0, executor=executor)
    assert torch.equal(run(X, Y, scale=2.0), (X @ Y) * 2.0)
    with pytest.raises(InputMismatchError, match=pattern):
        run(*args, **kwargs)
