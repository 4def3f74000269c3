"""The serialized enums of the ExportedProgram schema, mapped to torch objects.

The numbers are those of ``torch/_export/serde/schema.py`` (``ScalarType``, ``Layout``,
``MemoryFormat``); they are part of the file format, so they are spelled out here rather than
imported from a private module (``torch._export.serde.serialize`` imports most of torch's compiler,
about 2 s on a cold start). The tables are public as ``torchexec_proxy.DTYPES``, ``LAYOUTS`` and
``MEMORY_FORMATS``; the ``torchbind`` executor reads its dtype table from here.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["DTYPES", "LAYOUTS", "MEMORY_FORMATS", "dtype_name"]


def _dtypes() -> dict[int, torch.dtype]:
    names = {
        1: "uint8",
        2: "int8",
        3: "int16",
        4: "int32",
        5: "int64",
        6: "float16",
        7: "float32",
        8: "float64",
        9: "complex32",
        10: "complex64",
        11: "complex128",
        12: "bool",
        13: "bfloat16",
        28: "uint16",
        29: "float8_e4m3fn",
        30: "float8_e5m2",
        31: "float8_e4m3fnuz",
        32: "float8_e5m2fnuz",
        33: "float8_e8m0fnu",
        34: "uint32",
        35: "uint64",
    }
    out: dict[int, torch.dtype] = {}
    for code, name in names.items():
        dtype = getattr(torch, name, None)
        if isinstance(dtype, torch.dtype):  # older torch builds lack some float8 types
            out[code] = dtype
    return out


DTYPES: Mapping[int, torch.dtype] = _dtypes()
"""``ScalarType`` code -> ``torch.dtype``."""

LAYOUTS: Mapping[int, torch.layout] = {
    1: torch.sparse_coo,
    2: torch.sparse_csr,
    3: torch.sparse_csc,
    4: torch.sparse_bsr,
    5: torch.sparse_bsc,
    6: torch._mkldnn,  # type: ignore[attr-defined]
    7: torch.strided,
}
"""``Layout`` code -> ``torch.layout``."""

MEMORY_FORMATS: Mapping[int, torch.memory_format] = {
    1: torch.contiguous_format,
    2: torch.channels_last,
    3: torch.channels_last_3d,
    4: torch.preserve_format,
}
"""``MemoryFormat`` code -> ``torch.memory_format``."""


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (for messages)."""
    return str(dtype).removeprefix("torch.")
