"""The options of the executors that load programs with the proxy's loader (``proxy`` and
``torchbind``), and their validation, written once for both.

>>> from torchexec_proxy import options                       # doctest: +SKIP
>>> class MyExecutor:
...     options = options.OPTIONS
...     def validate_options(self, given):
...         return options.validate("my_executor", given)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import cast

from torchexec import InvalidOptionsError, OptionSpec, ProgramError, validate_options

__all__ = ["OPTIONS", "validate"]

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "allowed_namespaces",
        (list, tuple),
        (),
        "operator namespaces allowed besides aten and prims (names, e.g. ['my_ops'])",
    ),
    OptionSpec(
        "custom_objs",
        (Mapping,),
        MappingProxyType({}),
        "TorchBind objects by the names the program gives them (replace or supply them)",
    ),
    OptionSpec(
        "allow_pickle",
        (bool,),
        False,
        "read .pt2 payloads stored with Python pickle (can run arbitrary code: trusted files only)",
    ),
    OptionSpec(
        "process_groups",
        (Mapping,),
        MappingProxyType({}),
        "process groups by the names the program's collectives use (for programs saved elsewhere)",
    ),
    OptionSpec(
        "max_loop_iterations",
        (int, type(None)),
        None,
        "stop a while_loop after this many iterations with LoopLimitError (None: no limit)",
    ),
)
"""``allowed_namespaces``, ``custom_objs``, ``allow_pickle``, ``process_groups`` and
``max_loop_iterations``, with their defaults."""


def validate(executor: str, given: Mapping[str, object] | None) -> dict[str, object]:
    """Check ``given`` against :data:`OPTIONS` for ``executor`` and fill in the defaults.

    ``allowed_namespaces`` comes back as a tuple of namespace names; ``custom_objs`` must have
    string keys (the program's custom-object names).

    Raises:
        InvalidOptionsError: naming the executor, the option and what it must hold.
    """
    from torchexec_proxy._targets import normalize_namespaces

    out = validate_options(executor, OPTIONS, given)
    namespaces = cast("Sequence[object]", out["allowed_namespaces"])  # a list or tuple
    for ns in namespaces:
        if not isinstance(ns, str):
            raise InvalidOptionsError(
                f"Option 'allowed_namespaces' of executor {executor!r} must hold strings "
                f"(namespace names such as 'my_ops'), got {type(ns).__name__} ({ns!r})."
            )
        try:
            normalize_namespaces((ns,))
        except ProgramError:
            raise InvalidOptionsError(
                f"Option 'allowed_namespaces' of executor {executor!r} must hold namespace "
                f"names such as 'my_ops', got {ns!r}."
            ) from None
    out["allowed_namespaces"] = tuple(namespaces)
    limit = out["max_loop_iterations"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidOptionsError(
            f"Option 'max_loop_iterations' of executor {executor!r} must be a positive int or "
            f"None, got {limit!r}."
        )
    for option, what in (
        ("custom_objs", "TorchBind objects"),
        ("process_groups", "process groups"),
    ):
        for key in cast("Mapping[object, object]", out[option]):
            if not isinstance(key, str):
                raise InvalidOptionsError(
                    f"Option {option!r} of executor {executor!r} must map names (str) to "
                    f"{what}, got the key {key!r}."
                )
    return out
