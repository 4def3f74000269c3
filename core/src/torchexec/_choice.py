"""What a user may pass as ``executor=``: one name, or a priority list of names."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from torchexec._errors import InvalidOptionsError

__all__ = [
    "ExecutorChoice",
    "choice_key",
    "executor_label",
    "executor_names",
    "options_for",
    "parse_executor_arg",
]

ExecutorChoice = str | Sequence[str]
"""An executor's name, or a priority list of names (``["onnxruntime", "aten"]``)."""


def executor_names(choice: object) -> tuple[str, ...]:
    """The names in ``choice``, checked: a non-empty name or a non-empty list of distinct names.

    Raises:
        InvalidOptionsError: ``choice`` is neither, naming what was given.
    """
    if isinstance(choice, str):
        names: tuple[object, ...] = (choice,)
    elif isinstance(choice, Sequence):
        names = tuple(choice)
    else:
        raise InvalidOptionsError(
            f"executor must be a name or a list of names, got {type(choice).__name__} "
            f"({choice!r}). See 'torchexec list' for the installed executors."
        )
    if not names:
        raise InvalidOptionsError(
            "executor is an empty list: name at least one executor, e.g. ['proxy', 'aten']"
        )
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidOptionsError(
                f"executor list entries must be executor names, got {name!r} in {list(names)!r}"
            )
    seen: set[object] = set()
    for name in names:
        if name in seen:
            raise InvalidOptionsError(
                f"executor {name!r} appears twice in the priority list {list(names)!r}"
            )
        seen.add(name)
    return tuple(str(n) for n in names)


def choice_key(choice: ExecutorChoice) -> Hashable:
    """A hashable cache-key part for ``choice`` (a list and a tuple of the same names agree).

    Raises:
        InvalidOptionsError: ``choice`` is not a name or a list of names.
    """
    return choice if isinstance(choice, str) else ("list", executor_names(choice))


def executor_label(choice: ExecutorChoice) -> str:
    """``proxy`` or ``onnxruntime,aten``: the spelling the CLI uses."""
    return choice if isinstance(choice, str) else ",".join(choice)


def parse_executor_arg(text: str) -> ExecutorChoice:
    """The CLI's ``--executor`` value: ``proxy``, or ``mine,aten`` for a priority list."""
    if "," not in text:
        return text
    return [part.strip() for part in text.split(",")]


def options_for(
    names: Sequence[str], executor_parameters: Mapping[str, object] | None
) -> dict[str, Mapping[str, object] | None]:
    """Split a priority list's ``executor_parameters`` (``{name: options}``) per executor.

    Raises:
        InvalidOptionsError: the mapping is not one, or names an executor not in the list, or
            gives an executor's options as something other than a mapping.
    """
    if executor_parameters is None:
        return dict.fromkeys(names)
    if not isinstance(executor_parameters, Mapping):
        raise InvalidOptionsError(
            "executor_parameters for a priority list must map executor names to their options, "
            f"e.g. {{{names[0]!r}: {{...}}}}; got {type(executor_parameters).__name__}"
        )
    unknown = [k for k in executor_parameters if k not in names]
    if unknown:
        raise InvalidOptionsError(
            f"executor_parameters names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not in the priority list {list(names)!r}. "
            "For a list, executor_parameters maps each executor's name to its options."
        )
    out: dict[str, Mapping[str, object] | None] = {}
    for name in names:
        opts = executor_parameters.get(name)
        if opts is not None and not isinstance(opts, Mapping):
            raise InvalidOptionsError(
                f"executor_parameters[{name!r}] must be a mapping of option names to values, "
                f"got {type(opts).__name__} ({opts!r})"
            )
        out[name] = opts
    return out
