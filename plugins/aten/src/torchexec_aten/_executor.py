"""The ``aten`` executor: eager PyTorch, the reference every other executor is compared with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from torchexec import OptionSpec, Program, ProgramError, validate_options
from torchexec_aten._meta import CAPABILITIES, DESCRIPTION, NAME

__all__ = ["AtenExecutor", "AtenRunner"]


class AtenRunner:
    """Calls the program's flat graph module with its lifted state and the user's inputs.

    Buffer and user-input mutations that the graph returns as outputs (functional programs) are
    copied back into the buffer or the user's tensor, as ``ExportedProgram.module()`` would.
    """

    def __init__(self, program: Program) -> None:
        self._gm: Callable[..., Any] = program.graph_module()
        self._state = tuple(program.lifted_state())
        state = program.state()
        self._buffer_updates: list[tuple[int, torch.Tensor]] = []
        self._input_updates: list[tuple[int, int]] = []
        self._user_outputs: list[int] = []
        self._plain = True
        for i, out in enumerate(program.graph_outputs()):
            if out.kind == "buffer_mutation" and out.target is not None and out.target in state:
                self._buffer_updates.append((i, state[out.target]))
            elif out.kind == "user_input_mutation" and out.user_input is not None:
                self._input_updates.append((i, out.user_input))
            elif out.kind in ("user_output", "loss_output"):
                self._user_outputs.append(i)
            elif out.kind == "token":  # the effect token after the last effectful call
                self._plain = False
            else:
                what = f"{out.kind} output" + (f" of {out.target!r}" if out.target else "")
                raise ProgramError(
                    f"the aten executor does not run {program.name!r}: it cannot apply its {what}"
                )
        self._plain = self._plain and not self._buffer_updates and not self._input_updates

    def __call__(self, *args: Any) -> Sequence[Any]:
        outs = self._gm(*self._state, *args)
        if self._plain:
            return outs  # type: ignore[no-any-return]
        with torch.no_grad():
            for i, buf in self._buffer_updates:
                buf.copy_(outs[i])
            for i, j in self._input_updates:
                args[j].copy_(outs[i])
        return [outs[i] for i in self._user_outputs]


class AtenExecutor:
    """The reference executor (``executor="aten"``).

    It claims every node: ``supports`` always answers ``True``, since eager PyTorch runs any
    operator the program's graph calls.
    """

    name = NAME
    description = DESCRIPTION
    capabilities = CAPABILITIES
    options: tuple[OptionSpec, ...] = ()

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """The aten executor takes no options."""
        return validate_options(self.name, self.options, options)

    def supports(self, node: torch.fx.Node, options: Mapping[str, object]) -> bool:
        """Claim ``node``: the reference runs every operator (see :class:`torchexec.Executor`)."""
        return True

    def prepare(self, program: Program, options: Mapping[str, object]) -> AtenRunner:
        """Bind the program's state to its graph module."""
        return AtenRunner(program)
