"""The named values of a graph being planned: their value numbers, kinds and last readers.

The loader keeps one :class:`Values` for the program's graph and one per subgraph of a
higher-order operator (each subgraph has its own names and slots).
"""

from __future__ import annotations

from typing import Any

from torchexec import ProgramError
from torchexec_proxy._json import field, short, union
from torchexec_proxy._slots import NEVER
from torchexec_proxy.plan import Arg, Slot, Static

__all__ = ["KIND_WORDS", "USER_VALUE_TAGS", "Values", "value_name"]

KIND_WORDS = {
    "tensor": "a tensor",
    "sym_int": "a SymInt",
    "sym_float": "a SymFloat",
    "sym_bool": "a SymBool",
    "custom_obj": "a TorchBind object",
}
USER_VALUE_TAGS = {
    "as_tensor": "tensor",
    "as_sym_int": "sym_int",
    "as_sym_float": "sym_float",
    "as_sym_bool": "sym_bool",
    "as_custom_obj": "custom_obj",
}
"""The serialized tags of named values, and the kind of value each names."""


class Values:
    """The program's named values: their numbers, kinds, and the constants inputs stand for."""

    def __init__(self, nodes: list[Any]) -> None:
        self.kinds: list[str] = []
        self.last: list[int] = []
        self.reads: list[int] = []
        self.node = -1
        self.slots: list[Slot] = []
        self.by_name: dict[str, int] = {}
        self.consts: dict[str, Static] = {}
        self.objects: dict[int, object] = {}
        self._nodes = nodes

    def define(self, name: str, kind: str, where: str) -> int:
        if name in self.by_name or name in self.consts:
            raise ProgramError(f"{where}: value {name!r} is defined twice")
        vid = len(self.kinds)
        self.kinds.append(kind)
        self.last.append(NEVER)
        self.slots.append(Slot(vid))
        self.by_name[name] = vid
        return vid

    def ref(self, name: str, want: str, where: str) -> Slot | Static:
        vid = self.by_name.get(name)
        if vid is None:
            const = self.consts.get(name)
            if const is not None and want != "tensor":
                return const
            raise ProgramError(f"{where}: {self._undefined(name)}")
        kind = self.kinds[vid]
        if kind != want:
            raise ProgramError(
                f"{where}: expected {KIND_WORDS[want]}, but {name!r} is {KIND_WORDS[kind]}"
            )
        self.reads.append(vid)
        self.last[vid] = self.node
        return self.slots[vid]

    def begin(self, node: int) -> None:
        """Start recording the reads of node ``node`` (``FOREVER``: the program's outputs)."""
        self.node = node
        self.reads = []

    def _undefined(self, name: str) -> str:
        for node in self._nodes:
            outs = node.get("outputs") if isinstance(node, dict) else None
            if isinstance(outs, list) and name in _names_in(outs):
                return (
                    f"value {name!r} is used before it is defined (node "
                    f"{node.get('name')!r} defines it later)"
                )
        return f"value {name!r} is used but never defined"

    def object_of(self, arg: Arg) -> object:
        if isinstance(arg, Slot) and arg.index in self.objects:
            return self.objects[arg.index]
        raise ProgramError("call_torchbind on something that is not a program "
                           "custom object")  # fmt: skip


def _names_in(value: object) -> set[str]:
    """Every ``"name"``/``"as_name"`` string in a JSON fragment (for error messages only)."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("name", "as_name") and isinstance(x, str):
                    out.add(x)
                else:
                    stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
    return out


def value_name(tag: str, payload: Any, where: str) -> str:
    """The name of the value a serialized named-value argument (``USER_VALUE_TAGS``) holds."""
    if tag in ("as_tensor", "as_custom_obj"):
        return field(payload, "name", str, where)
    inner, name = union(payload, where)
    if inner != "as_name" or not isinstance(name, str):
        raise ProgramError(f"{where}: expected a named {tag}, got {short(payload)}")
    return name
