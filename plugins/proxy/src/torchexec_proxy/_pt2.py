"""Read the program, weights and constants of a ``.pt2`` archive without Python pickle.

``torch.export.save`` stores each plain tensor's *storage* as raw bytes (``data/weights/weight_0``)
and describes the tensors that view it in ``data/weights/model_weights_config.json`` (dtype, sizes,
strides, storage offset); tensors that share a storage share one payload. TorchBind objects are
stored with TorchScript's object pickle (``data/constants/custom_obj_0``), which only rebuilds
registered C++ classes. Tensor subclasses and plain Python objects are stored with Python pickle;
those are read only when the caller passes ``allow_pickle=True``.
"""

from __future__ import annotations

import io
import sys
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from torchexec import ProgramError
from torchexec.archive import Pt2Archive
from torchexec_proxy._convert import device_value
from torchexec_proxy._enums import DTYPES
from torchexec_proxy._json import field, opt_field, parse_document, short, union

__all__ = ["ArchiveContents", "read_archive"]

_WEIGHTS = ("data/weights/", "data/weights/{}_weights_config.json")
_CONSTANTS = ("data/constants/", "data/constants/{}_constants_config.json")


class ArchiveContents:
    """What :func:`read_archive` returns: the model JSON and its state by name."""

    def __init__(self, model_json: bytes, weights: dict[str, Any], constants: dict[str, Any]):
        self.model_json = model_json
        self.weights = weights
        self.constants = constants


def read_archive(
    path: Path,
    *,
    model: str = "model",
    allow_pickle: bool = False,
    skip: frozenset[str] = frozenset(),
) -> ArchiveContents:
    """Read ``models/<model>.json`` and the payloads it refers to.

    Args:
        path: the ``.pt2`` file.
        model: which stored program.
        allow_pickle: read payloads stored with Python pickle.
        skip: constant names not to load (custom objects the caller supplies).
    """
    _check_unique_members(path)
    with Pt2Archive(path) as archive:
        if archive.has("byteorder"):
            order = _read(archive, path, "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise ProgramError(f"{path}: unknown byte order {order!r}")
            if order != sys.byteorder:
                raise ProgramError(
                    f"{path}: the archive was written on a {order}-endian machine; this one is "
                    f"{sys.byteorder}-endian"
                )
        names = archive.model_names()
        if model not in names:
            raise ProgramError(
                f"{path}: the archive has no program {model!r} under models/ "
                f"(found: {', '.join(names) or 'none'})"
            )
        model_json = _read(archive, path, f"models/{model}.json")
        reader = _PayloadReader(archive, path, allow_pickle)
        weights = reader.read_group(_WEIGHTS, model, frozenset())
        constants = reader.read_group(_CONSTANTS, model, skip)
    return ArchiveContents(model_json, weights, constants)


class _PayloadReader:
    def __init__(self, archive: Pt2Archive, path: Path, allow_pickle: bool) -> None:
        self.archive = archive
        self.path = path
        self.allow_pickle = allow_pickle

    def _read(self, name: str) -> bytes:
        return _read(self.archive, self.path, name)

    def read_group(
        self, layout: tuple[str, str], model: str, skip: frozenset[str]
    ) -> dict[str, Any]:
        folder, config_format = layout
        config_name = config_format.format(model)
        legacy = f"{folder}{model}.pt"
        if not self.archive.has(config_name):
            if self.archive.has(legacy):
                return self._legacy(legacy)
            return {}
        config_doc = parse_document(self._read(config_name), f"{self.path}: {config_name}")
        config = field(config_doc, "config", dict, config_name)
        storages: dict[str, torch.Tensor] = {}
        out: dict[str, Any] = {}
        for name, meta in config.items():
            if name in skip:
                continue
            where = f"{config_name}: {name!r}"
            path_name = field(meta, "path_name", str, where)
            if "/" in path_name or path_name in ("", ".", ".."):
                raise ProgramError(f"{self.path}: {where}: invalid payload name {path_name!r}")
            entry = folder + path_name
            if field(meta, "use_pickle", bool, where):
                out[name] = self._pickled(entry, path_name, name)
                continue
            tmeta = field(meta, "tensor_meta", dict, where)
            out[name] = self._tensor(entry, tmeta, storages, where, meta.get("is_param") is True)
        return out

    def _pickled(self, entry: str, path_name: str, name: str) -> Any:
        data = self._read(entry)
        if path_name.startswith("custom_obj"):
            # TorchScript's object pickle: rebuilds only registered TorchBind classes.
            try:
                obj = torch._C._pickle_load_obj(data)
            except Exception as exc:
                raise ProgramError(
                    f"{self.path}: cannot load the TorchBind object {name!r} from {entry} "
                    f"(is the library that registers its class loaded?): {exc}"
                ) from exc
            if not isinstance(obj, torch.ScriptObject):
                raise ProgramError(
                    f"{self.path}: {entry} does not hold a TorchBind object (got "
                    f"{type(obj).__name__})"
                )
            return obj
        if not self.allow_pickle:
            raise ProgramError(
                f"{self.path}: {name!r} ({entry}) is stored with Python pickle, which can run "
                "arbitrary code when loaded; pass allow_pickle=True if you trust this archive"
            )
        try:
            if path_name.startswith("opaque_obj"):
                import pickle

                return pickle.loads(data)
            return torch.load(io.BytesIO(data), weights_only=False)
        except Exception as exc:
            raise ProgramError(f"{self.path}: cannot unpickle {name!r} ({entry}): {exc}") from exc

    def _legacy(self, entry: str) -> dict[str, Any]:
        if not self.allow_pickle:
            raise ProgramError(
                f"{self.path}: {entry} uses the legacy pickled state format; pass "
                "allow_pickle=True if you trust this archive, or save it again with "
                "torch.export.save"
            )
        try:
            loaded = torch.load(io.BytesIO(self._read(entry)), weights_only=False)
        except Exception as exc:
            raise ProgramError(f"{self.path}: cannot unpickle {entry}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ProgramError(f"{self.path}: {entry} does not hold a dict")
        return loaded

    def _tensor(
        self,
        entry: str,
        meta: dict[str, Any],
        storages: dict[str, torch.Tensor],
        where: str,
        is_param: bool,
    ) -> torch.Tensor:
        code = field(meta, "dtype", int, where)
        dtype = DTYPES.get(code)
        if dtype is None:
            raise ProgramError(f"{self.path}: {where}: unknown dtype code {code}")
        sizes = _ints(field(meta, "sizes", list, where), f"{where}: sizes")
        strides = _ints(field(meta, "strides", list, where), f"{where}: strides")
        offset = _ints([opt_field(meta, "storage_offset", dict, where, {"as_int": 0})],
                       f"{where}: storage_offset")[0]  # fmt: skip
        if len(sizes) != len(strides) or any(s < 0 for s in sizes) or offset < 0:
            raise ProgramError(
                f"{self.path}: {where}: inconsistent tensor metadata (sizes {sizes}, strides "
                f"{strides}, storage offset {offset})"
            )
        device = device_value(meta.get("device", {"type": "cpu"}), where)
        flat = storages.get(entry)
        if flat is None:
            flat = self._storage(entry, dtype, sizes, where)
            storages[entry] = flat
        if flat.dtype != dtype:
            flat = _retype(flat, dtype, self.path, where)
        if flat.numel() == 0 and not any(s == 0 for s in sizes):
            tensor = torch.zeros(sizes, dtype=dtype)
        else:
            needed = offset + sum((n - 1) * st for n, st in zip(sizes, strides, strict=True)) + 1
            if any(n == 0 for n in sizes):
                needed = 0
            if needed > flat.numel() or any(st < 0 for st in strides):
                raise ProgramError(
                    f"{self.path}: {where}: the tensor needs {needed} elements of storage, "
                    f"{entry} holds {flat.numel()}"
                )
            tensor = flat.as_strided(sizes, strides, offset)
        if device.type != "cpu":
            tensor = tensor.to(device)
        requires_grad = meta.get("requires_grad") is True
        if requires_grad and not (dtype.is_floating_point or dtype.is_complex):
            raise ProgramError(
                f"{self.path}: {where}: a tensor of dtype {dtype} cannot require gradients"
            )
        if is_param:
            return torch.nn.Parameter(tensor, requires_grad=requires_grad)
        return tensor

    def _storage(
        self, entry: str, dtype: torch.dtype, sizes: list[int], where: str
    ) -> torch.Tensor:
        data = self._read(entry)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(data) % itemsize:
            raise ProgramError(
                f"{self.path}: {where}: {entry} holds {len(data)} bytes, not a whole number of "
                f"{itemsize}-byte elements"
            )
        if not data:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(data), dtype=dtype)


def _check_unique_members(path: Path) -> None:
    """Refuse an archive holding two members of one name: readers disagree on which one counts
    (Python's ``zipfile`` reads the last, torch's reader the first)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return  # Pt2Archive reports why it cannot be read
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise ProgramError(f"{path}: the archive holds several members named {twice[0]!r}")


def _read(archive: Pt2Archive, path: Path, name: str) -> bytes:
    """``archive.read(name)``; the ways a damaged member fails in ``zipfile`` that
    ``Pt2Archive`` does not report (an unknown compression method or flag:
    ``NotImplementedError``; an encrypted member: ``RuntimeError``; a corrupt deflate stream:
    ``zlib.error``) become ``ProgramError`` too."""
    try:
        return archive.read(name)
    except (NotImplementedError, RuntimeError, zlib.error) as exc:
        raise ProgramError(f"{path}: entry {name!r} cannot be read: {exc}") from exc


def _retype(flat: torch.Tensor, dtype: torch.dtype, path: Path, where: str) -> torch.Tensor:
    """A storage shared by tensors of different dtypes: reinterpret the bytes."""
    raw = flat.view(torch.uint8)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if raw.numel() % itemsize:
        raise ProgramError(f"{path}: {where}: shared storage size does not fit dtype {dtype}")
    return raw.view(dtype)


def _ints(items: list[Any], where: str) -> list[int]:
    out: list[int] = []
    for item in items:
        tag, value = union(item, where)
        if tag != "as_int" or isinstance(value, bool) or not isinstance(value, int):
            raise ProgramError(
                f"{where}: expected concrete integers (as_int), got {tag} {short(value)}"
            )
        out.append(value)
    return out
