"""Contract checks: what every executor promises besides computing the right values.

Each check takes an executor name and raises :class:`ContractError` (an ``AssertionError``)
saying what was expected. :data:`CHECKS` maps the check names, which are also the detail part of
their conformance ids (``NAME::contract::options``), to the functions.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.utils._pytree as pytree

import torchexec
from torchexec.testing import _lists
from torchexec.testing.compare import compare_outputs

__all__ = ["CHECKS", "ContractError", "check"]


class ContractError(AssertionError):
    """An executor breaks the executor contract (the message says how)."""


def _fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.relu(x * y + x).sum(dim=-1)


def _sample() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)


def _expect(exc_type: type[BaseException], what: str, fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except exc_type as exc:
        return exc
    except Exception as exc:
        raise ContractError(
            f"{what}: expected {exc_type.__name__}, got {type(exc).__name__}: {exc}"
        ) from exc
    raise ContractError(f"{what}: expected {exc_type.__name__}, nothing was raised")


def check_metadata(name: str) -> None:
    """``torchexec list`` shows the executor, loadable, with a description and capabilities."""
    rows = [i for i in torchexec.list_executors() if i.name == name]
    if len(rows) != 1:
        raise ContractError(f"list_executors() has {len(rows)} rows named {name!r}, expected 1")
    row = rows[0]
    if row.status not in ("available", "loaded"):
        raise ContractError(f"{name!r} is {row.status}: {row.error}")
    if not (isinstance(row.description, str) and row.description.strip()):
        raise ContractError(f"{name!r} has no description (ExecutorSpec.description)")
    if not isinstance(row.capabilities, torchexec.Capabilities):
        raise ContractError(f"{name!r} declares no torchexec.Capabilities")
    if "cpu" not in row.capabilities.devices:
        raise ContractError(f"{name!r} does not list 'cpu' in capabilities.devices")
    impl = torchexec.get_executor(name)
    if not isinstance(impl, torchexec.Executor):
        raise ContractError(f"get_executor({name!r}) is not a torchexec.Executor")
    if impl.name != name:
        raise ContractError(f"the executor registered as {name!r} calls itself {impl.name!r}")
    if not (isinstance(impl.description, str) and impl.description.strip()):
        raise ContractError(f"the {name!r} executor object has an empty description")
    if not isinstance(impl.capabilities, torchexec.Capabilities):
        raise ContractError(f"the {name!r} executor's capabilities are not Capabilities")


def check_options(name: str) -> None:
    """Options are validated: defaults filled in, unknown and ill-typed options refused."""
    impl = torchexec.get_executor(name)
    defaults = impl.validate_options(None)
    if not isinstance(defaults, Mapping):
        raise ContractError(
            f"validate_options(None) returned {type(defaults).__name__}, not a dict"
        )
    if dict(impl.validate_options({})) != dict(defaults):
        raise ContractError("validate_options({}) and validate_options(None) differ")
    bogus = "torchexec_conformance_no_such_option"
    exc = _expect(
        torchexec.InvalidOptionsError,
        "validate_options with an unknown option",
        lambda: impl.validate_options({bogus: 1}),
    )
    if bogus not in str(exc):
        raise ContractError(f"the error for an unknown option does not name it: {exc}")
    x, y = _sample()
    _expect(
        torchexec.InvalidOptionsError,
        "prepare(executor_parameters={unknown: 1})",
        lambda: torchexec.prepare(_fn, x, y, executor=name, executor_parameters={bogus: 1}),
    )
    for spec in getattr(impl, "options", ()):
        if not isinstance(spec, torchexec.OptionSpec):
            continue
        impl.validate_options({spec.name: spec.default})
        bad: dict[str, object] = {spec.name: object()}
        _expect(
            torchexec.InvalidOptionsError,
            f"option {spec.name!r} given an object()",
            functools.partial(impl.validate_options, bad),
        )


def check_inputs(name: str) -> None:
    """A prepared program refuses inputs of the wrong count, dtype or shape."""
    x, y = _sample()
    prepared = torchexec.prepare(_fn, x, y, executor=_lists.choice(name))
    err = torchexec.InputMismatchError
    _expect(err, "calling with one input instead of two", lambda: prepared(x))
    _expect(err, "calling with three inputs instead of two", lambda: prepared(x, y, y))
    _expect(err, "calling with a float64 input", lambda: prepared(x.double(), y))
    _expect(err, "calling with an int64 input", lambda: prepared(x, y.long()))
    _expect(err, "calling with a [4, 4] input", lambda: prepared(torch.randn(4, 4), y))
    _expect(err, "calling with a [3] input", lambda: prepared(x, torch.randn(3)))
    expected = torchexec.execute(_fn, x, y, executor="aten")
    cmp = compare_outputs([prepared(x, y)], [expected], bitwise=_bitwise(name))
    if not cmp.ok:
        raise ContractError(f"after refusing bad inputs, the right ones give {cmp.reason}")


def _bitwise(name: str) -> bool:
    return bool(_lists.capabilities(name).bitwise)


def check_repeat(name: str) -> None:
    """Calling a prepared program twice gives the same result and leaves its inputs alone."""
    x, y = _sample()
    x0, y0 = x.clone(), y.clone()
    prepared = torchexec.prepare(_fn, x, y, executor=_lists.choice(name))
    first = prepared(x, y).clone()
    second = prepared(x, y)
    if not (torch.equal(x, x0) and torch.equal(y, y0)):
        raise ContractError("running a program that mutates nothing changed its inputs")
    if not torch.equal(first, second):
        raise ContractError("two calls with the same inputs gave different results")
    x2, y2 = torch.randn(3, 4), torch.randn(3, 4)
    expected = torchexec.execute(_fn, x2, y2, executor="aten")
    cmp = compare_outputs([prepared(x2, y2)], [expected], bitwise=_bitwise(name))
    if not cmp.ok:
        raise ContractError(f"a second call with new values: {cmp.reason}")


def check_program_unchanged(name: str) -> None:
    """``prepare`` leaves the Program it is given as it was (other executors share it)."""
    x, y = _sample()
    program = torchexec.normalize(_fn, (x, y))
    before = str(program.graph_module().graph)
    torchexec.prepare(program, x, y, executor=_lists.choice(name))
    if str(program.graph_module().graph) != before:
        raise ContractError("prepare() modified the program's graph in place")


def check_file(name: str) -> None:
    """A program given as a ``.pt2`` path runs and agrees with the reference."""
    x, y = _sample()
    ep = torch.export.export(_Module(), (x, y), strict=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conformance.pt2"
        torch.export.save(ep, path)
        got = torchexec.execute(str(path), x, y, executor=_lists.choice(name))
        expected = torchexec.execute(str(path), x, y, executor="aten")
    cmp = compare_outputs(
        pytree.tree_leaves(got), pytree.tree_leaves(expected), bitwise=_bitwise(name)
    )
    if not cmp.ok:
        raise ContractError(f"the program read from a .pt2 file: {cmp.reason}")


def check_state(name: str) -> None:
    """Parameters and buffers are used, and buffer mutations are applied by the runner."""
    x, _ = _sample()
    results = {}
    for executor in ("aten", name):
        module = _Stateful()
        prepared = torchexec.prepare(module, x, executor=_lists.choice(executor))
        results[executor] = [prepared(x).clone() for _ in range(2)]
    cmp = compare_outputs(results[name], results["aten"], bitwise=_bitwise(name))
    if not cmp.ok:
        raise ContractError(
            f"a module with a parameter and a counter buffer, called twice: {cmp.reason}"
        )


class _Module(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _fn(x, y)


class _Stateful(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.weight = torch.nn.Parameter(torch.randn(4, 2, generator=g), requires_grad=False)
        self.count: torch.Tensor
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count.add_(1)
        out: torch.Tensor = (x @ self.weight) * self.count
        return out


CHECKS: dict[str, Callable[[str], None]] = {
    "metadata": check_metadata,
    "options": check_options,
    "inputs": check_inputs,
    "repeat": check_repeat,
    "program_unchanged": check_program_unchanged,
    "file": check_file,
    "state": check_state,
}
"""Contract checks by name."""


def check(name: str, which: str) -> None:
    """Run contract check ``which`` on executor ``name``; raises :class:`ContractError`."""
    try:
        fn = CHECKS[which]
    except KeyError:
        raise KeyError(f"no contract check {which!r}; known: {sorted(CHECKS)}") from None
    if which in _PER_MEMBER:  # registry rows and options: each executor of a priority list
        for member in _lists.members(name):
            fn(member)
    else:  # running programs: the list as one executor
        fn(name)


_PER_MEMBER = ("metadata", "options")
