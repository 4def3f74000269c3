"""AOTInductor's extern-kernel JSON: build each kernel once, call it with flattened arguments.

AOTInductor writes the operators its compiled code cannot run itself (fallback ops, TorchBind
method calls) to a JSON file ``{"nodes": [{"name": ..., "node": {target, inputs, outputs}}]}``
and calls them at run time through a proxy executor:
``call_function(extern_node_index, int_args, tensor_args)``. Following OSSProxyExecutor's
convention, tensors and integers (``int``, ``SymInt``, ``int[]``, integer ``Scalar``) are passed
at call time, flattened in argument order; everything else (floats, bools, strings, dtypes,
devices, ...) is read from the JSON once. ``tensor_args`` ends with one entry per output tensor,
which the call replaces with the result; a list holding only the inputs is accepted too.
TorchBind objects are given by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path
from typing import Any

import torch

from torchexec import InputMismatchError, ProgramError
from torchexec_proxy._convert import static_scalar
from torchexec_proxy._json import field as json_field, parse_document, short, union
from torchexec_proxy._nodes import method_schema
from torchexec_proxy._schema import ArgInfo, OpInfo, op_info, schema_info
from torchexec_proxy._targets import normalize_namespaces, resolve_extern_target

__all__ = ["ExternKernelProxy"]


class _Read(Enum):
    """How a dynamic argument is read from the flattened call arguments."""

    TENSOR = auto()
    """The next tensor."""
    INT = auto()
    """The next integer."""
    TENSORS = auto()
    """A ``Tensor[]``: the next ``extra`` tensors."""
    OPT_TENSORS = auto()
    """A ``Tensor?[]``: ``extra`` says which elements are present (each the next tensor)."""
    INTS = auto()
    """An ``int[]``: the next ``extra`` integers."""


class _Write(Enum):
    """How one result of a kernel is returned."""

    TENSOR = auto()
    TENSORS = auto()
    """A ``Tensor[]``, spread over the output tensors."""
    OPT_TENSOR = auto()
    """A ``Tensor?``: an output tensor when the node lists one."""
    INT = auto()
    """An ``int``, checked against the caller's expected value when it passes one."""
    NONE = auto()


@dataclass
class _Kernel:
    name: str
    target: str
    call: Any
    stack: list[Any]
    positional: int
    kwarg_names: tuple[str, ...]
    dynamic: list[tuple[int, _Read, Any]] = field(default_factory=list)
    """(stack index, how it is read, extra)."""
    outputs: list[tuple[_Write, int]] = field(default_factory=list)
    """(how each result is returned, how many tensors or ints it fills)."""
    num_input_tensors: int = 0
    num_input_ints: int = 0
    num_output_tensors: int = 0
    num_output_ints: int = 0
    single_return: bool = True


class ExternKernelProxy:
    """Runs the nodes of an AOTInductor extern-kernel JSON file.

    Args:
        source: the JSON file's path, its text/bytes, or the parsed document.
        custom_objs: TorchBind objects by the names the nodes use. When ``None`` and ``source``
            is a path, ``custom_objs_config.json`` beside it (``{name: file}``) is read and each
            file loaded with TorchScript's object pickle, as AOTInductor's runtime does.
        allowed_namespaces: operator namespaces allowed besides ``aten`` and ``prims``.
        device: overrides the device arguments in the JSON (AOTInductor's runtime passes the
            device the model runs on).

    Raises:
        ProgramError: at construction, naming the node, for anything malformed or not allowed.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | Mapping[str, Any],
        *,
        custom_objs: Mapping[str, object] | None = None,
        allowed_namespaces: Iterable[str] = (),
        device: torch.device | str | None = None,
    ) -> None:
        path: Path | None = None
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and not source.lstrip().startswith("{")
        ):
            path = Path(source)
            try:
                data: bytes | str | Mapping[str, Any] = path.read_bytes()
            except OSError as exc:
                raise ProgramError(f"cannot read extern kernel JSON {path}: {exc}") from exc
            label = str(path)
        else:
            data, label = source, "<extern kernels>"
        self.source = label
        self._device = torch.device(device) if device is not None else None
        self._allowed = normalize_namespaces(allowed_namespaces)
        if custom_objs is None:
            custom_objs = _objs_beside(path) if path is not None else {}
        self.custom_objs = dict(custom_objs)
        doc = parse_document(data, label)
        nodes = json_field(doc, "nodes", list, label)
        self._kernels = [self._build(i, entry) for i, entry in enumerate(nodes)]

    def __len__(self) -> int:
        return len(self._kernels)

    @property
    def names(self) -> list[str]:
        """The extern nodes' names, by index."""
        return [k.name for k in self._kernels]

    def _build(self, index: int, entry: object) -> _Kernel:
        where = f"{self.source}: extern node {index}"
        name = json_field(entry, "name", str, where)
        node = json_field(entry, "node", dict, where)
        target = json_field(node, "target", str, where)
        where = f"{self.source}: extern node {index} {name!r} ({target})"
        resolved = resolve_extern_target(target, self._allowed, where)
        inputs = json_field(node, "inputs", list, where)
        named: list[tuple[str, Any]] = [
            (json_field(a, "name", str, f"{where}, input {i}"),
             json_field(a, "arg", dict, f"{where}, input {i}"))
            for i, a in enumerate(inputs)
        ]  # fmt: skip
        if resolved.kind == "torchbind":
            info, call, named, returns = self._torchbind(named, where)
        else:
            info, call, returns = op_info(resolved.op), resolved.op._op, None
        kernel = _Kernel(
            name=name,
            target=target,
            call=call,
            stack=[],
            positional=len(info.positional),
            kwarg_names=tuple(a.name for a in info.keyword),
        )
        self._inputs(kernel, info, named, where)
        outputs = json_field(node, "outputs", list, where)
        self._outputs(kernel, info if returns is None else returns, outputs, where)
        return kernel

    def _torchbind(
        self, named: list[tuple[str, Any]], where: str
    ) -> tuple[OpInfo, Any, list[tuple[str, Any]], OpInfo]:
        if len(named) < 2:
            raise ProgramError(f"{where}: call_torchbind needs an object and a method name")
        tag, payload = union(named[0][1], f"{where}, input 0")
        if tag != "as_custom_obj":
            raise ProgramError(f"{where}, input 0: expected as_custom_obj, got {tag}")
        obj_name = json_field(payload, "name", str, f"{where}, input 0")
        class_fqn = json_field(payload, "class_fqn", str, f"{where}, input 0")
        mtag, method = union(named[1][1], f"{where}, input 1")
        if mtag != "as_string" or not isinstance(method, str):
            raise ProgramError(f"{where}, input 1: expected the method name as_string")
        obj = self._object(obj_name, where)
        schema = method_schema(obj, class_fqn, method, where)
        info = schema_info(schema, skip_self=True)
        rest = named[2:]
        if any(n == "" for n, _ in rest):
            rest = [(info.args[i].name if i < len(info.args) else "", a)
                    for i, (_, a) in enumerate(rest)]  # fmt: skip
        return info, getattr(obj, method), rest, info

    def _object(self, name: str, where: str) -> object:
        if name not in self.custom_objs:
            have = ", ".join(sorted(self.custom_objs)) or "none"
            raise ProgramError(
                f"{where}: no custom object named {name!r} (have: {have}); pass "
                "custom_objs={name: object} or put custom_objs_config.json beside the file"
            )
        return self.custom_objs[name]

    def _inputs(
        self, kernel: _Kernel, info: OpInfo, named: list[tuple[str, Any]], where: str
    ) -> None:
        stack: list[Any] = [None] * len(info.args)
        filled = [False] * len(info.args)
        for arg_name, arg in named:
            i = info.index.get(arg_name)
            if i is None:
                raise ProgramError(f"{where}: {info.name} has no argument {arg_name!r}")
            if filled[i]:
                raise ProgramError(f"{where}: argument {arg_name!r} is given twice")
            filled[i] = True
            stack[i] = self._prefill(
                kernel, i, info.args[i], arg, f"{where}, argument {arg_name!r}"
            )
        for i, a in enumerate(info.args):
            if not filled[i]:
                if not a.has_default:
                    raise ProgramError(f"{where}: missing argument {a.name!r} ({a.type_str})")
                stack[i] = a.default
        kernel.stack = stack

    def _prefill(self, kernel: _Kernel, index: int, a: ArgInfo, arg: Any, where: str) -> Any:
        """The argument's constant value; dynamic ones are recorded and get ``None`` here."""
        tag, payload = union(arg, where)
        if tag == "as_none" and a.optional:
            return None
        if a.kind == "ClassType":
            if tag != "as_custom_obj":
                raise ProgramError(f"{where}: expected as_custom_obj, got {tag}")
            return self._object(json_field(payload, "name", str, where), where)
        if a.kind == "TensorType" and tag == "as_optional_tensor":
            inner, value = union(payload, where)
            if inner == "as_none":  # no tensor is passed for an absent optional tensor
                if not a.optional:
                    raise ProgramError(f"{where}: schema type {a.type_str} does not take None")
                return None
            tag, payload = inner, value
        read = _dynamic_read(a, tag, payload, where)
        if read is not None:
            _record_dynamic(kernel, index, *read)
            return None
        if a.kind == "DeviceObjType" and tag == "as_device" and self._device is not None:
            return self._device
        return _static_argument(a, tag, payload, where)

    def _outputs(self, kernel: _Kernel, info: OpInfo, outputs: list[Any], where: str) -> None:
        returns = info.returns
        kernel.single_return = len(returns) == 1
        if len(returns) == 1 and returns[0].kind == "TupleType":
            raise ProgramError(f"{where}: methods returning tuples are not supported here")
        if len(outputs) != len(returns):
            raise ProgramError(
                f"{where}: the node lists {len(outputs)} outputs, the schema returns {len(returns)}"
            )
        for i, (out, ret) in enumerate(zip(outputs, returns, strict=True)):
            w = f"{where}, output {i}"
            tag, payload = union(out, w)
            if ret.kind == "TensorType" and not ret.optional and tag == "as_tensor":
                kernel.outputs.append((_Write.TENSOR, 1))
                kernel.num_output_tensors += 1
            elif ret.kind == "NoneType" and tag == "as_none":
                kernel.outputs.append((_Write.NONE, 0))
            elif ret.kind == "ListType" and ret.elem == "TensorType" and tag == "as_tensors":
                if not isinstance(payload, list):
                    raise ProgramError(
                        f"{w}: as_tensors must be a list, got {type(payload).__name__}"
                    )
                kernel.outputs.append((_Write.TENSORS, len(payload)))
                kernel.num_output_tensors += len(payload)
            elif ret.kind == "TensorType" and ret.optional and tag == "as_optional_tensor":
                present = union(payload, w)[0] == "as_tensor"
                kernel.outputs.append((_Write.OPT_TENSOR, int(present)))
                kernel.num_output_tensors += int(present)
            elif ret.kind == "IntType" and tag == "as_int":
                kernel.outputs.append((_Write.INT, 1))
                kernel.num_output_ints += 1
            else:
                raise ProgramError(f"{w}: unsupported output {tag} for a {ret.kind} return")

    def call_function(
        self,
        extern_node_index: int,
        int_args: Sequence[int],
        tensor_args: MutableSequence[torch.Tensor] | Sequence[torch.Tensor],
    ) -> list[torch.Tensor]:
        """Run extern node ``extern_node_index``.

        Args:
            extern_node_index: the node's position in the JSON.
            int_args: the dynamic integers, flattened in argument order (then, for operators
                returning ``int``, the expected values, which are checked).
            tensor_args: the input tensors flattened in argument order, optionally followed by
                one entry per output tensor; a mutable sequence has those entries replaced by the
                results.

        Returns:
            The output tensors.
        """
        if not 0 <= extern_node_index < len(self._kernels):
            raise InputMismatchError(
                f"extern node index {extern_node_index} out of range (0..{len(self._kernels) - 1})"
            )
        k = self._kernels[extern_node_index]
        _check_counts(k, int_args, tensor_args)
        stack, ints_read = _fill_stack(k, int_args, tensor_args)
        positional = stack[: k.positional]
        kwargs = dict(zip(k.kwarg_names, stack[k.positional :], strict=True))
        result = k.call(*positional, **kwargs)
        results = [result] if k.single_return else list(result)
        outs = _collect_outputs(k, results, int_args[ints_read:])
        n_in = k.num_input_tensors
        if len(tensor_args) == n_in + k.num_output_tensors and isinstance(
            tensor_args, MutableSequence
        ):
            tensor_args[n_in:] = outs
        return outs


def _check_counts(k: _Kernel, int_args: Sequence[int], tensor_args: Sequence[torch.Tensor]) -> None:
    """The call passes the inputs the kernel takes (and, optionally, its output slots)."""
    n_in, n_out = k.num_input_tensors, k.num_output_tensors
    if len(tensor_args) not in (n_in, n_in + n_out):
        raise InputMismatchError(
            f"extern node {k.name!r} ({k.target}) takes {n_in} input tensors (and "
            f"{n_out} output slots), got {len(tensor_args)}"
        )
    if len(int_args) not in (k.num_input_ints, k.num_input_ints + k.num_output_ints):
        raise InputMismatchError(
            f"extern node {k.name!r} ({k.target}) takes {k.num_input_ints} ints, got "
            f"{len(int_args)}"
        )


def _fill_stack(
    k: _Kernel, int_args: Sequence[int], tensor_args: Sequence[torch.Tensor]
) -> tuple[list[Any], int]:
    """The kernel's prefilled arguments with the dynamic ones read from the call; also how
    many of ``int_args`` were read."""
    stack = list(k.stack)
    t = i = 0
    for index, read, extra in k.dynamic:
        if read is _Read.TENSOR:
            stack[index] = tensor_args[t]
            t += 1
        elif read is _Read.INT:
            stack[index] = int(int_args[i])
            i += 1
        elif read is _Read.TENSORS:
            stack[index] = list(tensor_args[t : t + extra])
            t += extra
        elif read is _Read.INTS:
            stack[index] = [int(v) for v in int_args[i : i + extra]]
            i += extra
        else:
            items: list[torch.Tensor | None] = []
            for present in extra:
                if present:
                    items.append(tensor_args[t])
                    t += 1
                else:
                    items.append(None)
            stack[index] = items
    return stack, i


def _collect_outputs(
    k: _Kernel, results: list[Any], expected_ints: Sequence[int]
) -> list[torch.Tensor]:
    """The output tensors of one call; integer results are checked against ``expected_ints``
    (the caller's values, when it passes them)."""
    outs: list[torch.Tensor] = []
    i = 0
    for (write, count), value in zip(k.outputs, results, strict=True):
        if write is _Write.TENSOR or (write is _Write.OPT_TENSOR and count):
            outs.append(value)
        elif write is _Write.TENSORS:
            outs.extend(value)
        elif write is _Write.INT and i < len(expected_ints):
            if int(value) != int(expected_ints[i]):
                raise InputMismatchError(
                    f"extern node {k.name!r} returned {value}, the caller expected "
                    f"{expected_ints[i]}"
                )
            i += 1
    return outs


def _dynamic_read(a: ArgInfo, tag: str, payload: Any, where: str) -> tuple[_Read, Any] | None:
    """How the call supplies this argument (``(read, extra)``), after checking the serialized
    form; ``None`` when the JSON holds its value."""
    kind = a.kind
    if kind in ("TensorType", "AnyType") and tag == "as_tensor":
        json_field(payload, "name", str, where)
        return _Read.TENSOR, None
    if (kind in _INT_KINDS and tag in ("as_int", "as_sym_int")) or (
        kind == "AnyType" and tag == "as_int"
    ):
        _int_payload(tag, payload, where)
        return _Read.INT, None
    if kind != "ListType":
        return None
    if not isinstance(payload, list):
        raise ProgramError(f"{where}: expected a list, got {short(payload)}")
    if a.elem == "TensorType" and tag == "as_tensors":
        for i, item in enumerate(payload):
            json_field(item, "name", str, f"{where}[{i}]")
        return _Read.TENSORS, len(payload)
    if a.elem == "TensorType" and a.elem_optional and tag == "as_optional_tensors":
        return _Read.OPT_TENSORS, tuple(
            _optional_tensor(x, f"{where}[{i}]") for i, x in enumerate(payload)
        )
    if a.elem in _INT_KINDS and tag in ("as_ints", "as_sym_ints"):
        for i, item in enumerate(payload):
            _int_payload(tag[:-1], item, f"{where}[{i}]")
        return _Read.INTS, len(payload)
    return None


def _record_dynamic(kernel: _Kernel, index: int, read: _Read, extra: Any) -> None:
    """Note that stack entry ``index`` comes from the call, and count what it takes."""
    kernel.dynamic.append((index, read, extra))
    if read is _Read.TENSOR:
        kernel.num_input_tensors += 1
    elif read is _Read.INT:
        kernel.num_input_ints += 1
    elif read is _Read.TENSORS:
        kernel.num_input_tensors += extra
    elif read is _Read.INTS:
        kernel.num_input_ints += extra
    else:
        kernel.num_input_tensors += sum(1 for present in extra if present)


_INT_KINDS = ("IntType", "SymIntType", "NumberType")

# The serialized tags the JSON may hold for an argument the call does not supply, by schema type.
_STATIC_TAGS: dict[str, tuple[str, ...]] = {
    "FloatType": ("as_float",), "BoolType": ("as_bool",), "StringType": ("as_string",),
    "NumberType": ("as_float", "as_bool"), "ScalarTypeType": ("as_scalar_type",),
    "MemoryFormatType": ("as_memory_format",), "LayoutType": ("as_layout",),
    "DeviceObjType": ("as_device",), "AnyType": ("as_string", "as_float", "as_bool"),
    "ComplexType": ("as_complex",),
}  # fmt: skip
_STATIC_LIST_TAGS: dict[str, tuple[str, ...]] = {
    "FloatType": ("as_floats",), "BoolType": ("as_bools",), "StringType": ("as_strings",),
    "NumberType": ("as_floats", "as_bools"),
}  # fmt: skip


def _static_argument(a: ArgInfo, tag: str, payload: Any, where: str) -> Any:
    """The value of an argument read from the JSON once, checked against its schema type."""
    if a.kind == "ListType":
        allowed = _STATIC_LIST_TAGS.get(a.elem or "", ())
    else:
        allowed = _STATIC_TAGS.get(a.kind, ())
    if tag not in allowed:
        raise ProgramError(
            f"{where}: wrong argument type: schema type {a.type_str} does not take {tag}"
        )
    return static_scalar(tag, payload, where)


def _int_payload(tag: str, payload: object, where: str) -> None:
    """Check an integer the call will supply: ``as_int`` holds an int, ``as_sym_int`` an int
    or a symbol's name."""
    if tag == "as_sym_int":
        inner, payload = union(payload, where)
        if inner == "as_name" and isinstance(payload, str):
            return
        if inner != "as_int":
            raise ProgramError(f"{where}: as_sym_int must hold as_int or as_name, got {inner}")
    if isinstance(payload, bool) or not isinstance(payload, int):
        raise ProgramError(f"{where}: expected an integer, got {short(payload)}")


def _optional_tensor(item: object, where: str) -> bool:
    """Whether an element of a ``Tensor?[]`` argument is a tensor (``False``: None)."""
    tag, payload = union(item, where)
    if tag == "as_tensor":
        json_field(payload, "name", str, where)
        return True
    if tag != "as_none":
        raise ProgramError(f"{where}: expected as_tensor or as_none, got {tag}")
    return False


def _objs_beside(path: Path) -> dict[str, object]:
    config = path.parent / "custom_objs_config.json"
    if not config.exists():
        return {}
    try:
        mapping = json.loads(config.read_bytes())
    except (OSError, ValueError) as exc:
        raise ProgramError(f"{config}: cannot read: {exc}") from exc
    if not isinstance(mapping, dict):
        raise ProgramError(f"{config}: expected an object mapping names to files")
    out: dict[str, object] = {}
    for name, file_name in mapping.items():
        if not isinstance(file_name, str) or "/" in file_name or file_name.startswith("."):
            raise ProgramError(f"{config}: invalid file name for {name!r}: {short(file_name)}")
        try:
            data = (path.parent / file_name).read_bytes()
            obj = torch._C._pickle_load_obj(data)
        except Exception as exc:
            raise ProgramError(f"{config}: cannot load custom object {name!r}: {exc}") from exc
        if not isinstance(obj, torch.ScriptObject):
            raise ProgramError(f"{config}: {file_name} does not hold a TorchBind object")
        out[name] = obj
    return out
