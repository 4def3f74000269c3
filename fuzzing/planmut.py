"""Mutators of the torchbind engine's encoded plan (the typed tuple ``encode_plan`` returns).

The plan is copied into nested lists, mutated, and turned back into tuples where it had tuples
(unless a mutation changes that too: a list where a tuple belongs is a conversion error the
engine must report). Each field has a *role* read from its position (node target, argument
tag, slot number, dtype name, ...) so that replacement values are drawn from the words that
field takes: most mutants are plausible plans, not noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .chooser import Chooser, weighted
from .jsonmut import Mutant

__all__ = ["PlanMutant", "mutate_plan", "role_of"]

Path = tuple[int, ...]

_WORDS: dict[str, tuple[str, ...]] = {
    "magic": ("torchexec.engine", "torchexec.Engine", "", "torchexec.engine\x00"),
    "namespace": ("aten", "prims", "torchexec_testing", "", "quantized", "a::b", "_"),
    "node_kind": ("op", "torchbind", "python", "", "Op", "graph"),
    "target": (
        "aten::add",
        "aten::sub",
        "aten::mul",
        "aten::div",
        "aten::add_",
        "aten::relu",
        "aten::cat",
        "aten::view",
        "aten::as_strided",
        "aten::resize_",
        "aten::empty",
        "aten::nope",
        "aten",
        "::add",
        "aten::",
        "quantized::add",
        "prims::add",
        "torchexec_testing::scale_add",
        "torchexec::Engine",
        "_operator.add",
        "_operator.floordiv",
        "_operator.lshift",
        "_operator.pow",
        "torch.sym_ite",
        "math.floor",
        "call_torchbind",
        "builtins.eval",
    ),
    "overload": ("", "Tensor", "Scalar", "default", "out", "int", "dim", "nope", "Tensor_mode"),
    "arg_keyword": ("", "self", "other", "alpha", "dim", "nope", "out", "memory_format"),
    "arg_tag": (
        "slot",
        "slots",
        "mixed",
        "none",
        "int",
        "float",
        "bool",
        "complex",
        "str",
        "dtype",
        "layout",
        "memory_format",
        "device",
        "ints",
        "bools",
        "floats",
        "tensor",
        "",
        "Slot",
        "any",
    ),
    "arg_text": (
        "",
        "float32",
        "int64",
        "complex32",
        "qint8",
        "bogus",
        "strided",
        "sparse_coo",
        "jagged",
        "channels_last",
        "preserve_format",
        "cpu",
        "cuda",
        "cuda:0",
        "meta",
        "cpu:-1",
        "cuda:99",
        "bogus:1",
        "apply",
        "get_weight",
        "__init__",
        "__getstate__",
        "nope",
    ),
    "result": ("values", "list", "tuple", "", "dict"),
    "input_kind": ("tensor", "int", "float", "bool", "str", "any", "", "Tensor"),
    "dtype": ("", "float32", "float64", "int64", "bool", "complex32", "qint8", "bogus", "float"),
    "device": ("", "cpu", "cuda", "meta", "cuda:0", "bogus", "cpu:0"),
    "state_kind": ("parameter", "buffer", "constant", "custom_obj", "", "input"),
    "name": ("", "scale", "count", "running", "l1.weight", "nope", "x" * 300),
    "mutation_kind": ("buffer", "user_input", "", "parameter"),
    "text": ("", "x"),
}
_SLOT_ROLES = frozenset(
    {
        "num_slots",
        "slot",
        "output_slot",
        "free",
        "arg_int",
        "input_slot",
        "state_slot",
        "mutation_slot",
    }
)


def role_of(path: Path) -> str:
    """What the field at ``path`` (indices into the encoded plan) holds."""
    top = path[0] if path else -1
    depth = len(path)
    if top == 0:
        return "magic"
    if top == 1:
        return "version"
    if top == 2:
        return "namespace"
    if top == 3:
        return "num_slots"
    if top == 4 and depth == 3:
        return _nth(("input_slot", "input_kind", "dtype", "device", "device_index"), path[2])
    if top == 5 and depth == 3:
        return _nth(("state_slot", "state_kind", "name", "state_value"), path[2])
    if top == 6 and depth >= 3:
        field = path[2]
        if field == 4 and depth >= 5:
            return _arg_role(path[4], depth - 5)
        if depth == 3:
            return _nth(
                ("name", "node_kind", "target", "overload", "args", "outputs", "result", "frees"),
                field,
            )
        return {5: "output_slot", 7: "free"}.get(field, "other") if depth == 4 else "other"
    if top == 7 and depth >= 3:
        return _arg_role(path[2], depth - 3)
    if top == 8 and depth == 3:
        return _nth(("mutation_slot", "mutation_kind", "name", "input_index"), path[2])
    return "other"


def _nth(roles: tuple[str, ...], index: int) -> str:
    """``roles[index]``; ``"other"`` where a mutation made the row longer."""
    return roles[index] if 0 <= index < len(roles) else "other"


def _arg_role(field: int, below: int) -> str:
    if field == 2 and below == 1:
        return "arg_int"
    roles = ("arg_keyword", "arg_tag", "arg_ints", "arg_floats", "arg_text", "arg_value")
    return _nth(roles, field) if below == 0 else "other"


def _to_lists(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_lists(v) for v in value]
    return value


def _to_plan(value: Any, like: Any) -> Any:
    """Back to the plan's shape: tuples where ``like`` had tuples."""
    if isinstance(value, list):
        items = [
            _to_plan(v, like[i] if isinstance(like, (tuple, list)) and i < len(like) else None)
            for i, v in enumerate(value)
        ]
        if isinstance(like, list) and like:
            items = [_to_plan(v, like[0]) for v in value]
        return tuple(items) if isinstance(like, tuple) else items
    return value


def _all_paths(value: Any, prefix: Path = ()) -> list[tuple[Path, Any]]:
    out: list[tuple[Path, Any]] = [(prefix, value)]
    if isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_all_paths(v, (*prefix, i)))
    return out


def _get(plan: Any, path: Path) -> Any:
    for i in path:
        plan = plan[i]
    return plan


def _set(plan: Any, path: Path, value: Any) -> None:
    _get(plan, path[:-1])[path[-1]] = value


def _num_slots(plan: Any) -> int:
    n = plan[3] if len(plan) > 3 else 0
    return n if isinstance(n, int) else 0


def _int_value(role: str, plan: Any, ch: Chooser) -> int:
    n = _num_slots(plan)
    if role in _SLOT_ROLES and ch.chance(70):
        return ch.choice((-2, -1, 0, 1, max(n - 1, 0), n, n + 1, ch.integer(0, max(n - 1, 0))))
    return ch.choice(
        (0, 1, -1, 2, 3, 7, 2**31, -(2**31), 2**62, 2**63 - 1, -(2**63), 2**63, 10**30, 1 << 30)
    )


def _tensor_value(ch: Chooser) -> Any:
    return ch.choice(
        (
            torch.zeros(3),
            torch.ones(2, 2, dtype=torch.int64),
            torch.tensor(1.5),
            torch.empty(0),
            torch.zeros(3, device="meta"),
            torch.zeros(4, dtype=torch.bool),
            torch.zeros(2, dtype=torch.complex64),
            None,
            3,
            "x",
            [1, 2],
            (1,),
        )
    )


def _leaf(plan: Any, ch: Chooser) -> tuple[str, bool]:
    """Replace one leaf with a value its role takes (or one of another type)."""
    leaves = [(p, v) for p, v in _all_paths(plan) if p and not isinstance(v, list)]
    path, old = ch.choice(leaves)
    role = role_of(path)
    if ch.chance(10):
        new: Any = ch.choice((None, 1, -1, 1.5, "x", [], (), [1], b"x"))
    elif isinstance(old, bool) or old is None:
        new = ch.choice((True, False, 0, None))
    elif isinstance(old, int):
        new = _int_value(role, plan, ch)
    elif isinstance(old, float):
        new = ch.choice((math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, old * -1))
    elif isinstance(old, str):
        new = ch.choice((*_WORDS.get(role, _WORDS["text"]), old + "x", old[:-1]))
    else:  # a tensor or an object
        new = _tensor_value(ch)
    _set(plan, path, new)
    return f"{role} at {list(path)}: {_short(old)} -> {_short(new)}", False


def _list_edit(plan: Any, ch: Chooser) -> tuple[str, bool]:
    lists = [(p, v) for p, v in _all_paths(plan) if isinstance(v, list) and p]
    path, items = ch.choice(lists)
    role = role_of(path) if path else "plan"
    how = ch.integer(0, 4)
    if not items or how == 0:
        if items:
            del items[ch.integer(0, len(items) - 1)]
            return f"{role} at {list(path)}: an element removed", False
        items.append(ch.choice((0, -1, "x", [])))
        return f"{role} at {list(path)}: an element added", False
    if how == 1:
        i = ch.integer(0, len(items) - 1)
        items.insert(ch.integer(0, len(items)), _to_lists(items[i]))
        return f"{role} at {list(path)}: element {i} repeated", False
    if how == 2:
        i, j = ch.integer(0, len(items) - 1), ch.integer(0, len(items) - 1)
        items[i], items[j] = items[j], items[i]
        return f"{role} at {list(path)}: elements {i} and {j} swapped", i == j
    if how == 3:
        items.clear()
        return f"{role} at {list(path)}: emptied", False
    _set(plan, path, tuple(items)) if ch.chance(50) else items.append(items[-1])
    return f"{role} at {list(path)}: reshaped", False


def _free_early(plan: Any, ch: Chooser) -> tuple[str, bool]:
    """Free a slot a later node still reads (use after free), or stop freeing one."""
    nodes = plan[6] if len(plan) > 6 and isinstance(plan[6], list) else []
    if not nodes:
        return "no nodes", True
    node = ch.choice(nodes)
    if not isinstance(node, list) or len(node) < 8 or not isinstance(node[7], list):
        return "malformed node", True
    if node[7] and ch.chance(40):
        node[7].pop()
        return f"node {node[0]!r}: a free dropped", False
    slot = ch.integer(0, max(_num_slots(plan) - 1, 0))
    node[7].append(slot)
    return f"node {node[0]!r}: frees slot {slot}", False


def _swap_slots(plan: Any, ch: Chooser) -> tuple[str, bool]:
    """Two argument rows read each other's slots (a plausible, valid-looking plan)."""
    rows = [
        (p, v)
        for p, v in _all_paths(plan)
        if role_of(p) == "arg_ints" and isinstance(v, list) and len(v) == 1
    ]
    if len(rows) < 2:
        return "too few slot rows", True
    (pa, a), (pb, b) = ch.choice(rows), ch.choice(rows)
    a[0], b[0] = b[0], a[0]
    return f"slots of {list(pa)} and {list(pb)} swapped", False


_MUTATIONS: tuple[tuple[Callable[[Any, Chooser], tuple[str, bool]], int], ...] = (
    (_leaf, 60),
    (_list_edit, 22),
    (_free_early, 8),
    (_swap_slots, 10),
)


class PlanMutant(Mutant):
    """A mutated plan (``data`` is unused: the plan is a Python object)."""

    def __init__(self, plan: Any, preserving: bool, description: list[str]) -> None:
        super().__init__(b"", preserving, description)
        self.plan = plan


def mutate_plan(plan: tuple[Any, ...], ch: Chooser) -> PlanMutant:
    """Mutate an encoded plan; the result shares tensors and objects with ``plan``."""
    work = _to_lists(plan)
    notes: list[str] = []
    preserving = True
    for _ in range(ch.choice((1, 1, 1, 1, 2, 2, 3))):
        note, keeps = weighted(ch, _MUTATIONS)(work, ch)
        notes.append(note)
        preserving = preserving and keeps
    return PlanMutant(_to_plan(work, plan), preserving, notes)


def _short(value: Any, limit: int = 50) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
