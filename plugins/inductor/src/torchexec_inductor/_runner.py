"""The hot path: check the inputs, call the loaded package, write back re-laid-out mutations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from torchexec_inductor._inputs import InputChecker

__all__ = ["InductorRunner"]


class InductorRunner:
    """Runs one loaded AOTInductor package on checked inputs.

    Attributes:
        model: the ``AOTICompiledModel`` (``torch._inductor.aoti_load_package``).
        checker: what the package expects of the user inputs.
    """

    def __init__(self, model: Any, checker: InputChecker, state: Sequence[torch.Tensor]) -> None:
        self.model = model
        self.checker = checker
        self._state = tuple(state)
        # boxed_run takes the flat tensor list (and empties it); the model's __call__ would
        # flatten and unflatten pytrees on every call, which the core already does.
        self._run = model.loader.boxed_run

    def __call__(self, *args: Any) -> Sequence[torch.Tensor]:
        inputs, write_back = self.checker(args)
        outs: list[torch.Tensor] = self._run([*self._state, *inputs])
        if write_back:
            self.checker.write_back(write_back)
        return outs
