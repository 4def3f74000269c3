"""make_traced: keyword arguments, specialised scalars, pytrees, decompositions, caching."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import torchexec


def test_kwargs_scalars_and_pytrees() -> None:
    calls = 0

    def f(
        xs: list[torch.Tensor], cfg: dict[str, torch.Tensor], *, scale: float, bias: int | None
    ) -> dict[str, object]:
        nonlocal calls
        calls += 1
        y = (xs[0] + xs[1]) * scale + cfg["w"]
        return {"y": y, "parts": (y.sum(), [xs[1].neg()])}

    traced = torchexec.make_traced(f)
    a, b, w = torch.randn(2, 3), torch.randn(2, 3), torch.randn(3)
    out = traced([a, b], {"w": w}, scale=2.0, bias=None)
    ref: Any = f([a, b], {"w": w}, scale=2.0, bias=None)
    assert torch.equal(out["y"], ref["y"])
    assert torch.equal(out["parts"][0], ref["parts"][0])
    assert torch.equal(out["parts"][1][0], ref["parts"][1][0])
    traces = calls
    traced([a, b], {"w": w}, scale=2.0, bias=None)
    assert calls == traces  # cache hit: not traced again
    out3 = traced([a, b], {"w": w}, scale=3.0, bias=None)  # new scalar: traced again
    assert calls > traces
    assert torch.equal(out3["y"], (a + b) * 3.0 + w)


def test_traced_cache_info_and_new_shapes() -> None:
    traced = torchexec.make_traced(lambda x: x.cos())
    torchexec.clear_cache()
    traced(torch.zeros(2))
    traced(torch.zeros(2))
    traced(torch.zeros(3))
    info = torchexec.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)


@pytest.mark.parametrize("decompose", [None, "prims", "core_aten"])
def test_decompositions(decompose: str | None) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        # TorchRefsMode maps torch.* and F.gelu to references; F.silu is not a core ATen op.
        return torch.nn.functional.gelu(x * 2).mean(0) + torch.nn.functional.silu(x).sum()

    traced = torchexec.make_traced(f, decompose=decompose)  # type: ignore[arg-type]
    x = torch.randn(4, 5)
    torch.testing.assert_close(traced(x), f(x))
    targets = {
        str(n.target) for n in traced.trace(x).graph_module().graph.nodes if n.op == "call_function"
    }
    if decompose == "prims":
        assert "prims.erf.default" in targets and "aten.gelu.default" not in targets, targets
    elif decompose == "core_aten":
        assert "aten.silu.default" not in targets and "aten.sigmoid.default" in targets, targets
    else:
        assert {"aten.silu.default", "aten.gelu.default"} <= targets, targets


def test_bad_decompose_value() -> None:
    with pytest.raises(ValueError, match="decompose must be one of"):
        torchexec.make_traced(lambda x: x, decompose="everything")  # type: ignore[arg-type]


def test_traced_uses_executor_and_options() -> None:
    traced = torchexec.make_traced(lambda x: x + 1)
    with pytest.raises(torchexec.ExecutorNotFoundError):
        traced(torch.ones(1), executor="nope")
    with pytest.raises(torchexec.InvalidOptionsError):
        traced(torch.ones(1), executor="aten", executor_parameters={"x": 1})


def test_wraps_function_metadata() -> None:
    def my_fn(x: torch.Tensor) -> torch.Tensor:
        """Doc."""
        return x

    traced = torchexec.make_traced(my_fn)
    assert traced.__name__ == "my_fn"  # type: ignore[attr-defined]
    assert traced.__doc__ == "Doc."
