"""What an executor is: the protocols plugins implement and the option schema they declare."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torchexec._errors import InvalidOptionsError

if TYPE_CHECKING:
    import torch

    from torchexec._program import Program

__all__ = [
    "Capabilities",
    "Executor",
    "OptionSpec",
    "Runner",
    "validate_options",
]


@dataclass(frozen=True)
class Capabilities:
    """What an executor supports; shown by ``torchexec list`` and used by the conformance kit.

    Attributes:
        devices: device types the executor runs on, e.g. ``("cpu", "cuda")``.
        torchbind: whether programs that hold TorchBind objects run on it.
        bitwise: whether it calls the same ATen kernels as the ``aten`` reference, so that its
            results must match bit for bit (otherwise the conformance kit uses tolerances).
        unsupported_ops: operator names (``"aten::conv2d"``) it knowingly does not run;
            higher-order operators as ``"higher_order::cond"``.
        unsupported_dtypes: tensor dtypes it knowingly does not run, by name as torch spells them
            without the ``torch.`` prefix (``"float64"``, ``"complex64"``); the conformance kit
            reports programs with inputs of these dtypes as unsupported instead of failed.
        capture_safe: whether its runner may be captured into a CUDA graph
            (``cuda_graphs=True``): on CUDA inputs it launches work only on the current stream,
            never syncs with the host, and allocates through PyTorch's caching allocator.
    """

    devices: tuple[str, ...] = ("cpu",)
    torchbind: bool = False
    bitwise: bool = True
    unsupported_ops: frozenset[str] = field(default_factory=frozenset)
    unsupported_dtypes: frozenset[str] = field(default_factory=frozenset)
    capture_safe: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "devices": list(self.devices),
            "torchbind": self.torchbind,
            "bitwise": self.bitwise,
            "unsupported_ops": sorted(self.unsupported_ops),
            "unsupported_dtypes": sorted(self.unsupported_dtypes),
            "capture_safe": self.capture_safe,
        }


@dataclass(frozen=True)
class OptionSpec:
    """One option an executor accepts in ``executor_parameters``.

    Attributes:
        name: the key.
        types: accepted Python types (``bool`` is never taken for ``int``).
        default: the value when the option is not given.
        doc: one line for ``torchexec list`` and error messages.
    """

    name: str
    types: tuple[type, ...]
    default: object
    doc: str = ""


def _type_ok(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def validate_options(
    executor: str, specs: Sequence[OptionSpec], given: Mapping[str, object] | None
) -> dict[str, object]:
    """Check ``given`` against ``specs`` and return the full option dict with defaults filled in.

    Raises:
        InvalidOptionsError: naming the executor, the option and the accepted ones.
    """
    by_name = {s.name: s for s in specs}
    accepted = ", ".join(sorted(by_name)) or "(none)"
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise InvalidOptionsError(
            f"executor_parameters for {executor!r} must be a mapping of option names to values, "
            f"got {type(given).__name__}. Accepted options: {accepted}."
        )
    out = {s.name: s.default for s in specs}
    for key, value in given.items():
        spec = by_name.get(key)
        if spec is None:
            close = difflib.get_close_matches(str(key), list(by_name), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidOptionsError(
                f"Executor {executor!r} has no option {key!r}.{hint} Accepted options: {accepted}."
            )
        if not _type_ok(value, spec.types):
            want = " or ".join(t.__name__ for t in spec.types)
            raise InvalidOptionsError(
                f"Option {key!r} of executor {executor!r} must be {want}, "
                f"got {type(value).__name__} ({value!r})."
            )
        out[key] = value
    return out


@runtime_checkable
class Runner(Protocol):
    """A prepared program. The core calls it with the program's flat user inputs.

    The inputs are the leaves of the program's input pytree, in order; the return value is the
    flat list of user outputs (the core rebuilds the output structure). A runner applies the
    program's mutations itself: in-place updates of buffers it holds, and of user inputs the
    program mutates.
    """

    def __call__(self, *args: Any) -> Sequence[torch.Tensor | object]: ...


@runtime_checkable
class Executor(Protocol):
    """An executor: what a plugin's ``load`` callable returns.

    ``prepare`` is called once per program and input signature (the core caches the result);
    the returned :class:`Runner` is the hot path.

    Optional method (not part of the protocol, so an executor without it still passes
    ``isinstance(obj, Executor)``)::

        def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool: ...

    It says whether the executor claims ``node``, an operator node (``call_function``) of the
    program's ATen graph (:meth:`Program.graph_module`), when prepared with ``options`` (the
    validated options, as ``prepare`` gets them: an option such as ``allowed_namespaces`` may
    widen what it claims). The core asks it, with a priority list of executors, to place each
    node on the first executor that claims it, and with a single executor, to refuse a program
    that holds nodes the executor does not claim. It must be cheap and must not change the
    node or its graph. An executor without ``supports`` claims every node.
    """

    name: str
    description: str
    capabilities: Capabilities

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Return the complete options (defaults filled in) or raise ``InvalidOptionsError``."""
        ...

    def prepare(self, program: Program, options: Mapping[str, object]) -> Runner:
        """Prepare ``program`` for repeated calls with validated ``options``."""
        ...
