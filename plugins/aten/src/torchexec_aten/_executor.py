"""The ``aten`` executor: eager PyTorch, the reference every other executor is compared with."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.export.graph_signature import InputKind, OutputKind

from torchexec import Capabilities, OptionSpec, Program, ProgramError, validate_options
from torchexec._program import lifted_state

__all__ = ["AtenExecutor", "AtenRunner"]


class AtenRunner:
    """Calls the program's flat graph module with its lifted state and the user's inputs.

    Buffer and user-input mutations that the graph returns as outputs (functional programs) are
    copied back into the buffer or the user's tensor, as ``ExportedProgram.module()`` would.
    """

    def __init__(self, program: Program) -> None:
        ep = program.exported_program()
        self._gm: Callable[..., Any] = ep.graph_module
        self._state = tuple(lifted_state(ep))
        sig = ep.graph_signature
        user_index = {
            spec.arg.name: i
            for i, spec in enumerate(s for s in sig.input_specs if s.kind == InputKind.USER_INPUT)
        }
        self._buffer_updates: list[tuple[int, torch.Tensor]] = []
        self._input_updates: list[tuple[int, int]] = []
        self._user_outputs: list[int] = []
        for i, spec in enumerate(sig.output_specs):
            if spec.kind == OutputKind.BUFFER_MUTATION:
                assert spec.target is not None
                self._buffer_updates.append(
                    (i, ep.state_dict.get(spec.target, ep.constants.get(spec.target)))
                )
            elif spec.kind == OutputKind.USER_INPUT_MUTATION:
                assert spec.target is not None
                self._input_updates.append((i, user_index[spec.target]))
            elif spec.kind in (OutputKind.USER_OUTPUT, OutputKind.LOSS_OUTPUT):
                self._user_outputs.append(i)
            else:
                raise ProgramError(
                    f"the aten executor does not run programs with {spec.kind.name} outputs"
                )
        self._plain = not self._buffer_updates and not self._input_updates

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
    """The reference executor (``executor="aten"``)."""

    name = "aten"
    description = "Reference: runs the ATen graph forward in eager PyTorch"
    capabilities = Capabilities(devices=("cpu", "cuda"), torchbind=True, bitwise=True)
    options: tuple[OptionSpec, ...] = ()

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """The aten executor takes no options."""
        return validate_options(self.name, self.options, options)

    def prepare(self, program: Program, options: Mapping[str, object]) -> AtenRunner:
        """Bind the program's state to its graph module."""
        return AtenRunner(program)
