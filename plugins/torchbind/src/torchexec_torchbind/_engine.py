"""Building a ``torch.classes.torchexec.Engine`` from a plan, and the runner that calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import torch

from torchexec import InputMismatchError, ProgramError
from torchexec_proxy.plan import Plan
from torchexec_torchbind._encode import InputSpec, encode_plan
from torchexec_torchbind._library import load_library

__all__ = ["EngineRunner", "build_engine", "engine_from_plan_state"]

_RUN_ERROR_PREFIX = "torchexec.Engine.run: "


def engine_from_plan_state(encoded: tuple[Any, ...]) -> torch.ScriptObject:
    """Build an engine from an already encoded plan (what ``engine.plan()`` returns).

    Raises:
        ProgramError: the engine rejected the plan; the message names the node.
    """
    load_library()
    try:
        engine: torch.ScriptObject = torch.classes.torchexec.Engine(encoded)
    except RuntimeError as exc:
        # Validation errors name the node; a plan of the wrong shape fails the conversion.
        raise ProgramError(str(exc)) from exc
    return engine


def build_engine(
    plan: Plan,
    *,
    allowed_namespaces: Iterable[str],
    input_specs: Sequence[InputSpec] | None = None,
    max_loop_iterations: int | None = None,
) -> torch.ScriptObject:
    """Encode ``plan`` and build a ``torch.classes.torchexec.Engine`` from it (``while_loop``
    nodes stop after ``max_loop_iterations`` iterations, when given).

    The engine validates the whole plan (operators resolvable and in ``allowed_namespaces``,
    arguments matching each schema, slots written before they are read, custom objects and
    their methods present).

    Raises:
        ProgramError: naming the node and what was expected.
    """
    encoded = encode_plan(
        plan,
        allowed_namespaces=allowed_namespaces,
        input_specs=input_specs,
        max_loop_iterations=max_loop_iterations,
    )
    return engine_from_plan_state(encoded)


class EngineRunner:
    """The torchbind executor's runner: one ``engine.run`` per call.

    Buffer and user-input mutations are applied by the engine itself, so a saved engine behaves
    the same without this wrapper.
    """

    def __init__(self, engine: torch.ScriptObject) -> None:
        self.engine: Any = cast(Any, engine)
        self._run: Callable[[list[Any]], list[Any]] = cast(Any, engine).run

    def __call__(self, *args: Any) -> list[Any]:
        try:
            out = self._run(list(args))
        except ValueError as exc:
            msg = str(exc)
            if msg.startswith(_RUN_ERROR_PREFIX):
                raise InputMismatchError(msg) from None
            raise
        return out
