"""execute / prepare: program kinds, structured outputs, input checks, options and the cache."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import torchexec
from torchexec import InputMismatchError, InvalidOptionsError, ProgramError


def _args() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(3, 4), torch.randn(3, 4)


def test_seed_signature_on_make_fx_graph() -> None:
    a, b = _args()
    gm = make_fx(lambda a, b: torch.relu(a + b).sum(0))(a, b)
    out = torchexec.execute(gm, a, b, executor="aten")
    assert torch.equal(out, torch.relu(a + b).sum(0))


def test_default_executor_is_aten() -> None:
    a, b = _args()
    gm = make_fx(lambda a, b: a * b)(a, b)
    assert torch.equal(torchexec.execute(gm, a, b), a * b)


def test_torch_level_symbolic_trace_graph() -> None:
    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"y": torch.tanh(self.lin(x)), "n": x.norm()}

    m = M()
    gm = torch.fx.symbolic_trace(m)
    x = torch.randn(5, 4)
    out = torchexec.execute(gm, x)
    ref = m(x)
    assert set(out) == {"y", "n"}
    assert torch.equal(out["y"], ref["y"]) and torch.equal(out["n"], ref["n"])


def test_plain_function_and_module() -> None:
    a, b = _args()
    out = torchexec.execute(lambda x, y: (x - y, [x.exp()]), a, b)
    assert torch.equal(out[0], a - b) and torch.equal(out[1][0], a.exp())
    lin = torch.nn.Linear(4, 3)
    assert torch.equal(torchexec.execute(lin, a), lin(a))


class _Counter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(4))

    count: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        return x + self.count


def test_exported_program_with_buffer_mutation() -> None:
    x = torch.randn(4)
    ep = torch.export.export(_Counter(), (x,))
    run = torchexec.prepare(ep, x)
    assert torch.equal(run(x), x + 1)
    assert torch.equal(run(x), x + 2)


def test_functional_exported_program_writes_mutations_back() -> None:
    x = torch.randn(4)
    ep = torch.export.export(_Counter(), (x,)).run_decompositions({})
    run = torchexec.prepare(ep, x)
    assert torch.equal(run(x), x + 1)
    assert torch.equal(run(x), x + 2)

    def scale_(y: torch.Tensor) -> torch.Tensor:
        y.mul_(3)
        return y.sum()

    class Scale(torch.nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return scale_(y)

    y = torch.ones(3)
    ep2 = torch.export.export(Scale(), (y.clone(),)).run_decompositions({})
    out = torchexec.prepare(ep2, y)(y)
    assert torch.equal(y, torch.full((3,), 3.0))
    assert out.item() == 9.0


def test_pt2_path(tmp_path: Path) -> None:
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    x = torch.randn(2, 4)
    path = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(m, (x,)), path)
    out = torchexec.execute(str(path), x)
    assert torch.equal(out, torch.export.load(path).module()(x))
    run = torchexec.prepare(path, x)
    assert torch.equal(run(x), out)


def test_bad_program_inputs() -> None:
    with pytest.raises(ProgramError, match="No such program file"):
        torchexec.execute("/nonexistent/model.pt2", torch.randn(1))
    with pytest.raises(ProgramError, match="Cannot run a int"):
        torchexec.execute(3, torch.randn(1))


def test_bad_pt2_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ProgramError, match=r"not a readable \.pt2 archive"):
        torchexec.execute(bad, torch.randn(1))


def test_prepare_checks_inputs() -> None:
    a, b = _args()
    run = torchexec.prepare(lambda x, y: x + y, a, b)
    assert torch.equal(run(a, b), a + b)
    with pytest.raises(InputMismatchError, match="expected 2 positional arguments, got 1"):
        run(a)
    with pytest.raises(
        InputMismatchError, match=r"args\[1\].*expected shape \[3, 4\], got \[2, 4\]"
    ):
        run(a, torch.randn(2, 4))
    with pytest.raises(
        InputMismatchError, match=r"args\[0\].*expected dtype torch.float32, got torch.float64"
    ):
        run(a.double(), b)
    with pytest.raises(InputMismatchError, match=r"expected device cpu, got meta"):
        run(a, b.to("meta"))
    with pytest.raises(InputMismatchError, match=r"args\[1\].*expected a torch.float32 tensor"):
        run(a, 3.0)


def test_prepare_with_kwargs_and_specialised_scalars() -> None:
    x = torch.randn(3)

    def f(x: torch.Tensor, *, scale: float, flag: bool) -> torch.Tensor:
        return x * scale if flag else x

    run = torchexec.prepare(f, x, scale=2.0, flag=True)
    assert torch.equal(run(x, scale=2.0, flag=True), x * 2.0)
    with pytest.raises(InputMismatchError, match=r"kwargs\['scale'\].*specialised"):
        run(x, scale=3.0, flag=True)


def test_options_are_validated() -> None:
    a, b = _args()
    gm = make_fx(lambda a, b: a + b)(a, b)
    with pytest.raises(
        InvalidOptionsError, match=r"'aten' has no option 'fast'.*Accepted options: \(none\)"
    ):
        torchexec.execute(gm, a, b, executor_parameters={"fast": True})
    with pytest.raises(InvalidOptionsError, match="must be a mapping"):
        torchexec.execute(gm, a, b, executor_parameters=[1])  # type: ignore[arg-type]


def test_validate_options_helper() -> None:
    specs = (torchexec.OptionSpec("level", (int,), 1, "how hard"),)
    assert torchexec.validate_options("x", specs, None) == {"level": 1}
    assert torchexec.validate_options("x", specs, {"level": 3}) == {"level": 3}
    with pytest.raises(InvalidOptionsError, match="must be int, got bool"):
        torchexec.validate_options("x", specs, {"level": True})
    with pytest.raises(InvalidOptionsError, match="Did you mean 'level'"):
        torchexec.validate_options("x", specs, {"levle": 3})


def test_cache_hits_misses_and_new_specs() -> None:
    a, b = _args()
    gm = make_fx(lambda a, b: a + b)(a, b)
    torchexec.clear_cache()
    torchexec.execute(gm, a, b)
    torchexec.execute(gm, a, b)
    info = torchexec.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    torchexec.execute(gm, a.double(), b.double())  # new dtype: prepares again
    torchexec.execute(gm, torch.randn(5, 4), torch.randn(5, 4))  # new shape
    info = torchexec.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 3, 3)
    out = torchexec.execute(gm, torch.ones(5, 4), torch.ones(5, 4))
    assert torch.equal(out, torch.full((5, 4), 2.0))
    assert torchexec.cache_info().hits == 2


def test_cache_eviction_bound() -> None:
    torchexec.set_cache_size(2)
    try:
        gm = make_fx(lambda a: a * 2)(torch.randn(1))
        for n in range(1, 6):
            assert torch.equal(torchexec.execute(gm, torch.ones(n)), torch.full((n,), 2.0))
        info = torchexec.cache_info()
        assert info.currsize == 2 and info.maxsize == 2 and info.misses == 5
        torchexec.execute(gm, torch.ones(5))  # most recent: still cached
        assert torchexec.cache_info().hits == 1
        torchexec.execute(gm, torch.ones(1))  # evicted long ago
        assert torchexec.cache_info().misses == 6
    finally:
        torchexec.set_cache_size(128)
    with pytest.raises(ValueError, match="at least 1"):
        torchexec.set_cache_size(0)


def test_cache_is_keyed_by_options() -> None:
    from torchexec._api import _CACHE

    a, b = _args()
    gm = make_fx(lambda a, b: a + b)(a, b)
    torchexec.execute(gm, a, b, executor_parameters={})
    torchexec.execute(gm, a, b)
    assert _CACHE.info().currsize == 2


def test_threads_share_the_cache_safely() -> None:
    gm = make_fx(lambda a: (a * 3).sum(0))(torch.randn(2, 2))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                x = torch.full((1 + (n + i) % 3, 2), float(n))
                out = torchexec.execute(gm, x)
                assert torch.equal(out, (x * 3).sum(0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert torchexec.cache_info().currsize == 3
