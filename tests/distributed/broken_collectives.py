"""An executor that gets one collective wrong, to prove the kit's distributed tier catches it.

Importing the module registers, in-process, ``wrong_gather``: it runs the ATen graph with
``torch.fx.Interpreter`` like aten, except that the result of ``all_gather_into_tensor`` has
its ranks' chunks rotated (rank 1's rows first); and ``skips_reduce``, whose rank 1 never joins
an ``all_reduce`` (so rank 0 waits in vain: a hang the kit must survive). The kit's parent process loads it with
``-p tests.distributed.broken_collectives``, its rank processes with
``--distributed-setup tests.distributed.broken_collectives``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.fx

import torchexec
from torchexec._program import lifted_state

__all__ = ["SkipsReduce", "WrongGather"]

_F = torch.ops._c10d_functional


class _Interpreter(torch.fx.Interpreter):
    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        out = super().call_function(target, args, kwargs)
        if target is _F.all_gather_into_tensor.default:
            gathered = _F.wait_tensor.default(out)
            return gathered.roll(gathered.shape[0] // dist.get_world_size(), dims=0)
        return out


class _SkipsReduce(torch.fx.Interpreter):
    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if target is _F.all_reduce.default and dist.get_rank() == 1:
            return args[0].clone()
        return super().call_function(target, args, kwargs)


class WrongGather:
    """aten, with the chunks of every all-gather rotated by one rank."""

    name = "wrong_gather"
    description = "deliberately broken executor (all_gather_into_tensor chunks rotated)"
    capabilities = torchexec.Capabilities()
    interpreter: type[torch.fx.Interpreter] = _Interpreter
    """The ``torch.fx.Interpreter`` subclass that carries the breakage."""

    def validate_options(self, options: Mapping[str, object] | None) -> dict[str, object]:
        """Accepts no options."""
        return torchexec.validate_options(self.name, (), options)

    def prepare(
        self, program: torchexec.Program, options: Mapping[str, object]
    ) -> Callable[..., Sequence[Any]]:
        """Interpret the program's graph with the wrong gather."""
        ep = program.exported_program()
        state = lifted_state(ep)
        interpreter = self.interpreter(ep.graph_module)

        def run(*args: Any) -> Sequence[Any]:
            out: Sequence[Any] = interpreter.run(*state, *args)
            return out

        return run


class SkipsReduce(WrongGather):
    """aten, except that rank 1 never joins an all-reduce: rank 0 waits for it in vain."""

    name = "skips_reduce"
    description = "deliberately broken executor (rank 1 skips every all_reduce)"

    interpreter = _SkipsReduce


_REGISTRATIONS = [torchexec.register_executor(e) for e in (WrongGather(), SkipsReduce())]
