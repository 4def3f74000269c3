"""Mutators of JSON program documents (ExportedProgram JSON, extern-kernel JSON, configs).

:func:`mutate_document` applies one to four tree mutations to a parsed document, writes it out
(in one of several valid spellings) and sometimes damages the text itself. Tree mutations pick a
*region* first (nodes, signature, tensor metadata, ...; weighted towards what loaders read), then
a place in it, so that most mutants are near-valid programs rather than noise.

A mutant is *semantics-preserving* only when every change is one the program's computation
cannot see (a different but valid spelling of the same JSON, node metadata, the torch version
string, the minor schema version); only then do the unmutated program's results apply.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .chooser import Chooser, weighted
from .hopmut import mutate_subgraph
from .jsontree import DupKeys, Path, dumps, get, parent_of, paths, put, remove

__all__ = ["Mutant", "mutate_document", "mutate_text", "serialize_document"]


@dataclass
class Mutant:
    """A mutated document: its bytes, whether the unmutated results still apply, and what was
    done (for reports and reproduction)."""

    data: bytes
    preserving: bool
    description: list[str]


INTERESTING_INTS = (
    0,
    1,
    -1,
    2,
    3,
    7,
    63,
    64,
    255,
    256,
    2**31 - 1,
    2**31,
    -(2**31),
    2**32,
    2**62,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
)
ENUM_CODES = (-1, 0, 1, 2, 5, 7, 9, 12, 13, 14, 27, 28, 33, 35, 36, 99, 255, 2**31, 2**63, -(2**63))
STRINGS = (
    "",
    "x",
    "self",
    "input",
    "add",
    "arg0_1",
    " ",
    "\x00",
    "\udc80",
    "é",
    "\u202e",
    "a" * 10000,
    "../../etc/passwd",
    "__import__",
    "torch.ops.aten.add.Tensor",
    "null",
)
OTHER_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    "",
    "Infinity",
    [],
    {},
    [None],
    {"": None},
)
TARGETS = (
    "torch.ops.aten.add.Tensor",
    "torch.ops.aten.sub.Tensor",
    "torch.ops.aten.mul.Tensor",
    "torch.ops.aten.div.Tensor",
    "torch.ops.aten.add_.Tensor",
    "torch.ops.aten.relu.default",
    "torch.ops.aten.neg.default",
    "torch.ops.aten.clone.default",
    "torch.ops.aten.sum.default",
    "torch.ops.aten.cat.default",
    "torch.ops.aten.view.default",
    "torch.ops.aten.add.Scalar",
    "torch.ops.aten.mul.Scalar",
    "torch.ops.aten.alias.default",
    "torch.ops.aten.t.default",
    "torch.ops.aten.as_strided.default",
    "torch.ops.aten.copy_.default",
    "torch.ops.aten.resize_.default",
    "torch.ops.aten.split.Tensor",
    "torch.ops.aten.max.dim",
    "torch.ops.aten.sym_size.int",
    "torch.ops.aten._assert_tensor_metadata.default",
    "torch.ops.prims.convert_element_type.default",
    "torch.ops.aten.add.default",
    "torch.ops.aten.no_such_op.default",
    "torch.ops.aten.add",
    "torch.ops.aten",
    "torch.ops.evil.op.default",
    "torch.ops.quantized.add.default",
    "torch.ops.higher_order.cond",
    "torch.ops.higher_order.call_torchbind",
    "torch.ops.higher_order.while_loop",
    "torch.ops.higher_order.no_such",
    "_operator.getitem",
    "_operator.add",
    "_operator.truediv",
    "_operator.floordiv",
    "torch.sym_max",
    "math.trunc",
    "builtins.eval",
    "os.system",
    "eval",
    "",
    "torch.ops.aten.__import__.default",
    "torch.ops.aten.add..Tensor",
    "torch.ops.aten.add.Tensor.x",
    "torch.ops.aten.add.Tensor ",
    "torch.ops.aten.add.Te\x00nsor",
    "torch.ops.torchexec_testing.scale_add.default",
    "torch.ops.aten.__and__.Tensor",
    "torch.ops.aten.__dict__.default",
    "aten::add.Tensor",
    "call_torchbind",
    "torch.ops.aten.arange.default",
    "torch.ops.aten.full.default",
)
SCHEMA_KEYS = (
    "name",
    "arg",
    "kind",
    "target",
    "inputs",
    "outputs",
    "metadata",
    "as_tensor",
    "as_tensors",
    "as_int",
    "as_ints",
    "as_float",
    "as_floats",
    "as_bool",
    "as_none",
    "as_string",
    "as_name",
    "as_sym_int",
    "as_scalar_type",
    "as_optional_tensor",
    "as_optional_tensors",
    "as_custom_obj",
    "user_input",
    "parameter",
    "buffer",
    "tensor_constant",
    "custom_obj",
    "constant_input",
    "user_output",
    "buffer_mutation",
    "user_input_mutation",
    "loss_output",
    "gradient_to_parameter",
    "token",
    "input_specs",
    "output_specs",
    "graph",
    "signature",
    "nodes",
    "tensor_values",
    "dtype",
    "sizes",
    "strides",
    "storage_offset",
    "layout",
    "device",
    "major",
    "minor",
    "parameter_name",
    "buffer_name",
    "tensor_constant_name",
    "custom_obj_name",
    "class_fqn",
    "user_input_name",
    "persistent",
    "node",
    "",
)
ARG_TAGS = (
    "as_none",
    "as_tensor",
    "as_tensors",
    "as_int",
    "as_ints",
    "as_float",
    "as_floats",
    "as_string",
    "as_strings",
    "as_sym_int",
    "as_sym_ints",
    "as_scalar_type",
    "as_memory_format",
    "as_layout",
    "as_device",
    "as_bool",
    "as_bools",
    "as_sym_bool",
    "as_sym_bools",
    "as_sym_float",
    "as_sym_floats",
    "as_graph",
    "as_optional_tensors",
    "as_optional_tensor",
    "as_custom_obj",
    "as_operator",
    "as_complex",
    "as_int_lists",
    "as_string_to_argument",
    "as_nested_tensors",
    "as_unknown",
)
_ENUM_KEYS = frozenset(
    {"as_scalar_type", "as_layout", "as_memory_format", "dtype", "layout", "memory_format", "kind"}
)


def _example_payload(tag: str, names: Sequence[str], ch: Chooser) -> Any:
    """A plausible payload for ``tag``, naming values of the document where it takes names."""
    name = ch.choice(names) if names else "x"
    table: dict[str, Any] = {
        "as_none": True,
        "as_tensor": {"name": name},
        "as_tensors": [{"name": name}] * ch.integer(0, 3),
        "as_int": ch.choice(INTERESTING_INTS),
        "as_ints": [ch.choice((0, 1, -1, 2, 2**40))] * ch.integer(0, 4),
        "as_float": ch.choice((0.5, -1.0, 1e308)),
        "as_floats": [0.5, 2.0],
        "as_string": ch.choice(STRINGS[:8]),
        "as_strings": ["a"],
        "as_sym_int": ch.choice(({"as_name": name}, {"as_int": 3})),
        "as_sym_ints": [{"as_int": 2}, {"as_name": name}],
        "as_scalar_type": ch.choice(ENUM_CODES),
        "as_memory_format": ch.choice(ENUM_CODES),
        "as_layout": ch.choice(ENUM_CODES),
        "as_device": ch.choice(
            (
                {"type": "cpu", "index": None},
                {"type": "cuda", "index": 7},
                {"type": "nope"},
                {"type": "cpu", "index": -5},
            )
        ),
        "as_bool": True,
        "as_bools": [True, False],
        "as_sym_bool": {"as_name": name},
        "as_sym_bools": [{"as_bool": True}],
        "as_sym_float": {"as_float": 0.5},
        "as_sym_floats": [{"as_name": name}],
        "as_graph": {"name": "g", "graph": {}},
        "as_optional_tensors": [{"as_none": True}, {"as_tensor": {"name": name}}],
        "as_optional_tensor": ch.choice(({"as_none": True}, {"as_tensor": {"name": name}})),
        "as_custom_obj": {"name": name, "class_fqn": "__torch__.torch.classes.x.Y"},
        "as_operator": "torch.ops.aten.add.Tensor",
        "as_complex": {"real": 1.0, "imag": -2.0},
        "as_int_lists": [[1, 2]],
        "as_string_to_argument": {"k": {"as_int": 1}},
        "as_nested_tensors": [[{"name": name}]],
        "as_unknown": 1,
    }
    return table.get(tag)


def value_names(doc: Any) -> list[str]:
    """Names of tensors and symbols the document defines or uses (for plausible mutations)."""
    out: dict[str, None] = {}
    for path, v in paths(doc):
        if path and path[-1] in ("as_name",) and isinstance(v, str):
            out[v] = None
        elif isinstance(v, dict) and set(v) == {"name"} and isinstance(v["name"], str):
            out[v["name"]] = None
    return list(out)


# --- regions ------------------------------------------------------------------------------

_EP_REGIONS: tuple[tuple[Path, int], ...] = (
    (("graph_module", "graph", "nodes"), 50),
    (("graph_module", "signature"), 14),
    (("graph_module", "graph", "tensor_values"), 8),
    (("graph_module", "graph", "inputs"), 3),
    (("graph_module", "graph", "outputs"), 3),
    (("graph_module", "graph", "sym_int_values"), 2),
    (("graph_module", "module_call_graph"), 4),
    (("schema_version",), 4),
    ((), 12),
)


def _region(doc: Any, regions: Sequence[tuple[Path, int]], ch: Chooser) -> Path:
    total = sum(w for _, w in regions)
    pick = ch.integer(0, total - 1)
    for path, weight in regions:
        if pick < weight:
            try:
                get(doc, path)
            except (KeyError, IndexError, TypeError):
                return ()
            return path
        pick -= weight
    return ()


def _place(doc: Any, root: Path, ch: Chooser, want: Callable[[Path, Any], bool]) -> Path | None:
    """A random path under ``root`` whose value satisfies ``want``."""
    try:
        base = get(doc, root)
    except (KeyError, IndexError, TypeError):
        base = doc
        root = ()
    candidates = [p for p, v in paths(base, root) if want(p, v)]
    if not candidates:
        return None
    return ch.choice(candidates)


def _preserving_path(path: Path) -> bool:
    """Changes here are invisible to the computation (see the module docstring)."""
    return "metadata" in path or path in (("torch_version",), ("schema_version", "minor"))


# --- tree mutations: each returns (doc, description, preserving) --------------------------

Mutation = Callable[[Any, Path, Chooser], tuple[Any, str, bool]]


def _delete(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: bool(p))
    if path is None:
        return doc, "delete: nothing to delete", True
    remove(doc, path)
    return doc, f"delete {_fmt(path)}", _preserving_path(path)


def _duplicate(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: bool(p))
    if path is None:
        return doc, "duplicate: nothing", True
    container, key = parent_of(doc, path)
    if isinstance(container, list):
        assert isinstance(key, int)
        at = ch.integer(0, len(container))
        container.insert(at, copy.deepcopy(container[key]))
        return doc, f"duplicate {_fmt(path)} at index {at}", False
    # a repeated key: json.loads keeps the last occurrence
    assert isinstance(key, str)
    other = _replacement(doc, ch)
    pairs = list(container.items())
    first = ch.chance(50)
    pairs.insert(0 if first else len(pairs), (key, other))
    put(doc, path[:-1], DupKeys(pairs))
    if first:
        return doc, f"repeat key {_fmt(path)} before it (with {_short(other)})", True
    return doc, f"repeat key {_fmt(path)} after it (with {_short(other)})", _preserving_path(path)


def _rename_key(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: bool(p) and isinstance(p[-1], str))
    if path is None:
        return doc, "rename: no key", True
    container, key = parent_of(doc, path)
    assert isinstance(key, str)
    new = ch.choice((key[:-1], key + "s", key.upper(), ch.choice(SCHEMA_KEYS), ch.choice(ARG_TAGS)))
    if new == key or new in container:
        return doc, f"rename {_fmt(path)}: no-op", True
    container[new] = container.pop(key)
    return doc, f"rename key {_fmt(path)} -> {new!r}", _preserving_path(path)


def _replacement(doc: Any, ch: Chooser) -> Any:
    # A copy: the constants above are shared, and later mutations edit what was inserted.
    return copy.deepcopy(_replacement_value(doc, ch))


def _replacement_value(doc: Any, ch: Chooser) -> Any:
    kind = ch.integer(0, 4)
    if kind == 0:
        return ch.choice(INTERESTING_INTS)
    if kind == 1:
        return ch.choice(STRINGS)
    if kind == 2:
        names = value_names(doc)
        return {ch.choice(ARG_TAGS): _example_payload(ch.choice(ARG_TAGS), names, ch)}
    return ch.choice(OTHER_VALUES)


def _replace(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: True)
    if path is None:
        return doc, "replace: nothing", True
    value = _replacement(doc, ch)
    doc = put(doc, path, value)
    return doc, f"replace {_fmt(path)} with {_short(value)}", _preserving_path(path)


def _edge_int(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: isinstance(v, int) and not isinstance(v, bool))
    if path is None:
        return doc, "int: none", True
    if ch.chance(50):
        old = get(doc, path)
        value = ch.choice((old + 1, old - 1, -old, old * 2, old + 2**32, old * 1000))
    else:
        value = ch.choice(INTERESTING_INTS)
    doc = put(doc, path, value)
    return doc, f"int {_fmt(path)} = {value}", _preserving_path(path)


def _edit_string(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, root, ch, lambda p, v: isinstance(v, str))
    if path is None:
        return doc, "string: none", True
    old: str = get(doc, path)
    names = value_names(doc)
    options = [old[:-1], old + "_", old.upper(), old + "\x00", ch.choice(STRINGS)]
    if names:
        options.append(ch.choice(names))
    value = ch.choice(options)
    doc = put(doc, path, value)
    return doc, f"string {_fmt(path)} = {_short(value)}", _preserving_path(path)


def _is_union(v: Any) -> bool:
    return isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("as_")


def _swap_kind(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    """Wrong Argument kinds: ``{"as_tensor": ...}`` becomes ``{"as_int": ...}`` and so on."""
    path = _place(doc, root, ch, lambda p, v: _is_union(v))
    if path is None:
        return doc, "kind: no union", True
    ((old_tag, payload),) = get(doc, path).items()
    tag = ch.choice(ARG_TAGS)
    if ch.chance(60):
        payload = copy.deepcopy(_example_payload(tag, value_names(doc), ch))
    doc = put(doc, path, {tag: payload})
    return doc, f"kind {_fmt(path)}: {old_tag} -> {tag} {_short(payload)}", False


def _enum(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    """Out-of-range enum codes (dtype, layout, memory format, argument kind)."""
    path = _place(
        doc, root, ch, lambda p, v: bool(p) and p[-1] in _ENUM_KEYS and isinstance(v, int)
    )
    if path is None:
        path = _place(
            doc, (), ch, lambda p, v: bool(p) and p[-1] in _ENUM_KEYS and isinstance(v, int)
        )
    if path is None:
        return doc, "enum: none", True
    value = ch.choice((*ENUM_CODES, 1.5, "7", None, True))
    doc = put(doc, path, value)
    return doc, f"enum {_fmt(path)} = {_short(value)}", _preserving_path(path)


def _target(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    path = _place(doc, (), ch, lambda p, v: bool(p) and p[-1] == "target" and isinstance(v, str))
    if path is None:
        return doc, "target: none", True
    others = [v for p, v in paths(doc) if p and p[-1] == "target" and isinstance(v, str)]
    value = ch.choice(others) if ch.chance(25) else ch.choice(TARGETS)
    doc = put(doc, path, value)
    return doc, f"target {_fmt(path)} = {value!r}", False


def _nodes_path(doc: Any) -> Path | None:
    for candidate in (("graph_module", "graph", "nodes"), ("nodes",)):
        try:
            if isinstance(get(doc, candidate), list):
                return candidate
        except (KeyError, IndexError, TypeError):
            continue
    return None


def _reorder(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    """Values used before their definition: move, swap or reverse nodes (or any list)."""
    path = _nodes_path(doc) if ch.chance(75) else None
    if path is None:
        path = _place(doc, root, ch, lambda p, v: isinstance(v, list) and len(v) > 1)
    if path is None:
        return doc, "reorder: no list", True
    items: list[Any] = get(doc, path)
    if len(items) < 2:
        return doc, "reorder: short list", True
    how = ch.integer(0, 2)
    if how == 0:
        i, j = ch.integer(0, len(items) - 1), ch.integer(0, len(items) - 1)
        items[i], items[j] = items[j], items[i]
        return doc, f"swap {_fmt(path)}[{i}] and [{j}]", i == j
    if how == 1:
        i = ch.integer(1, len(items) - 1)
        items.insert(0, items.pop(i))
        return doc, f"move {_fmt(path)}[{i}] first", False
    items.reverse()
    return doc, f"reverse {_fmt(path)}", False


def _cycle(doc: Any, root: Path, ch: Chooser) -> tuple[Any, str, bool]:
    """A node reads its own output, or a later node's output."""
    nodes_path = _nodes_path(doc)
    if nodes_path is None:
        return doc, "cycle: no nodes", True
    nodes: list[Any] = get(doc, nodes_path)
    if not nodes:
        return doc, "cycle: no nodes", True
    i = ch.integer(0, len(nodes) - 1)
    j = ch.integer(i, len(nodes) - 1)
    node = nodes[i].get("node", nodes[i]) if isinstance(nodes[i], dict) else None
    later = nodes[j].get("node", nodes[j]) if isinstance(nodes[j], dict) else None
    outs = value_names({"o": later.get("outputs")}) if isinstance(later, dict) else []
    if not isinstance(node, dict) or not outs:
        return doc, "cycle: no outputs", True
    reads = [p for p, v in paths(node.get("inputs")) if isinstance(v, dict) and set(v) == {"name"}]
    if not reads:
        return doc, "cycle: no tensor inputs", True
    at = ch.choice(reads)
    name = ch.choice(outs)
    node["inputs"] = put(node.get("inputs"), at, {"name": name})
    return doc, f"node {i} reads {name!r} (output of node {j})", False


_TREE_MUTATIONS: tuple[tuple[Mutation, int], ...] = (
    (_delete, 14),
    (_duplicate, 8),
    (_rename_key, 8),
    (_replace, 12),
    (_edge_int, 12),
    (_edit_string, 10),
    (_swap_kind, 14),
    (_enum, 6),
    (_target, 8),
    (_reorder, 5),
    (_cycle, 5),
    (mutate_subgraph, 6),
)


def mutate_tree(
    doc: Any, ch: Chooser, regions: Sequence[tuple[Path, int]] = _EP_REGIONS
) -> tuple[Any, list[str], bool]:
    """Apply one to four tree mutations in place; returns (doc, descriptions, preserving)."""
    count = ch.choice((1, 1, 1, 1, 1, 1, 2, 2, 3, 4))
    notes: list[str] = []
    preserving = True
    for _ in range(count):
        fn = weighted(ch, _TREE_MUTATIONS)
        root = _region(doc, regions, ch)
        doc, note, keeps = fn(doc, root, ch)
        notes.append(note)
        preserving = preserving and keeps
    return doc, notes, preserving


# --- writing and text damage ----------------------------------------------------------------


def serialize_document(doc: Any, ch: Chooser) -> tuple[bytes, str]:
    """One of several valid spellings of ``doc`` (all read back as the same document)."""
    how = ch.integer(0, 7)
    if how == 0:
        return dumps(doc, indent=2).encode(), "indented"
    if how == 1:
        return dumps(doc, sort_keys=True, compact=True).encode(), "sorted keys"
    try:
        if how == 2:
            return dumps(doc, ensure_ascii=False).encode("utf-16"), "UTF-16"
        if how == 3:
            return b"\xef\xbb\xbf" + dumps(doc).encode(), "UTF-8 with BOM"
        if how == 4:
            return b" \n\t" + dumps(doc, ensure_ascii=False).encode() + b"\n ", "whitespace"
    except UnicodeEncodeError:  # a lone surrogate only escapes (ensure_ascii) cleanly
        pass
    return dumps(doc).encode(), "plain"


_DEEP = 100_000


def mutate_text(data: bytes, ch: Chooser) -> tuple[bytes, str]:
    """Damage the bytes of a document (the result is rarely valid JSON)."""
    how = ch.integer(0, 11) if data else 8
    n = len(data)
    if how == 0:
        at = ch.integer(0, max(n - 1, 0))
        return data[:at], f"truncate at {at}/{n}"
    if how == 1:
        at = ch.integer(0, max(n - 1, 0))
        flipped = data[:at] + bytes([data[at] ^ (1 << ch.integer(0, 7))]) + data[at + 1 :]
        return flipped, f"flip a bit of byte {at}"
    if how == 2:
        at = ch.integer(0, n)
        junk = ch.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xfe\xff", b"\x80"))
        return data[:at] + junk + data[at:], f"insert non-UTF-8 {junk!r} at {at}"
    if how == 3:
        depth = ch.choice((50, 500, 5000, _DEEP))
        text = data.replace(b"null", b"[" * depth + b"]" * depth, 1)
        if text == data:
            text = data.replace(b"[", b"[" * depth + b"[", 1).replace(b"]", b"]" + b"]" * depth, 1)
        return text, f"nest {depth} deep"
    if how == 4:
        depth = ch.choice((50, 900, 5000, _DEEP))
        return b'{"a":' * depth + b"1" + b"}" * depth, f"only a {depth}-deep object"
    if how == 5:
        digits = ch.choice((20, 400, 5000, 50_000))
        return data.replace(b"1", b"1" * digits, 1), f"a {digits}-digit number"
    if how == 6:
        token = ch.choice((b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"1.0e-400"))
        return data.replace(b"0", token, 1), f"number token {token!r}"
    if how == 7:
        return data + ch.choice((b"x", b"{}", b"\x00", b"]")), "trailing garbage"
    if how == 8:
        return ch.choice((b"", b"null", b"[]", b"{}", b"1", b'"x"', b"[" * 10)), "tiny document"
    if how == 9:
        return data.replace(b'"', b"'", 1), "single quote"
    if how == 10:
        return data.decode("utf-8", "replace").encode("utf-32"), "UTF-32"
    return data.replace(b'"name"', b'"n\\u0000ame"', 1), "escaped NUL in a key"


def mutate_document(
    base: bytes, ch: Chooser, regions: Sequence[tuple[Path, int]] = _EP_REGIONS
) -> Mutant:
    """Mutate the JSON document ``base``: tree mutations, a spelling, sometimes text damage."""
    notes: list[str] = []
    preserving = True
    try:
        doc = json.loads(base)
    except (ValueError, RecursionError):  # already damaged: damage the text further
        data, note = mutate_text(base, ch)
        return Mutant(data, False, [note])
    try:
        if ch.chance(88):
            doc, notes, preserving = mutate_tree(doc, ch, regions)
        data, spelling = serialize_document(doc, ch)
    except RecursionError:  # nested too deep (by an earlier mutation) for the tree mutators
        data, note = mutate_text(base, ch)
        return Mutant(data, False, [note])
    notes.append(f"written {spelling}")
    if ch.chance(12) or not notes[:-1]:
        data, note = mutate_text(data, ch)
        notes.append(note)
        preserving = False
    return Mutant(data, preserving, notes)


def _fmt(path: Path) -> str:
    return "".join(f"[{k!r}]" if isinstance(k, str) else f"[{k}]" for k in path) or "<root>"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
