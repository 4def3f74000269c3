"""Mutators of ``.pt2`` archives: their members (program JSON, tensor metadata, payloads) and the
zip container itself (truncation, corrupted members and headers, odd compression).
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from dataclasses import dataclass

from .chooser import Chooser
from .jsonmut import Mutant, mutate_document, mutate_text

__all__ = ["mutate_archive"]

_CONFIG_REGIONS = ((("config",), 100),)


@dataclass
class _Entry:
    name: str  # relative to the root folder
    data: bytes
    compress: int = zipfile.ZIP_STORED


def _read(archive: bytes) -> tuple[str, list[_Entry]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        infos = z.infolist()
        root = infos[0].filename.split("/", 1)[0]
        entries = [_Entry(i.filename.split("/", 1)[1], z.read(i), i.compress_type) for i in infos]
    return root, entries


def _write(root: str, entries: list[_Entry]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some mutations
        with zipfile.ZipFile(out, "w") as z:
            for e in entries:
                name = f"{root}/{e.name}" if root else e.name
                z.writestr(
                    zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)),
                    e.data,
                    compress_type=e.compress,
                )
    return out.getvalue()


def _pick(entries: list[_Entry], ch: Chooser, suffix: str = "", prefix: str = "") -> _Entry | None:
    found = [e for e in entries if e.name.endswith(suffix) and e.name.startswith(prefix)]
    return ch.choice(found) if found else None


def _member(root: str, entries: list[_Entry], ch: Chooser) -> tuple[str, list[_Entry], str, bool]:
    """Mutate one member or the member list; returns (root, entries, description, preserving)."""
    how = ch.integer(0, 99)
    if how < 45:
        model = _pick(entries, ch, prefix="models/", suffix=".json")
        if model is not None:
            mutant = mutate_document(model.data, ch)
            model.data = mutant.data
            return root, entries, f"models json: {'; '.join(mutant.description)}", mutant.preserving
    if how < 62:
        config = _pick(entries, ch, suffix="_config.json")
        if config is not None:
            mutant = mutate_document(config.data, ch, _CONFIG_REGIONS)
            config.data = mutant.data
            return root, entries, f"{config.name}: {'; '.join(mutant.description)}", False
    if how < 72:
        payload = _pick(entries, ch, prefix="data/") or ch.choice(entries)
        data = payload.data
        edit = ch.integer(0, 3)
        if edit == 0:
            payload.data = data[: ch.integer(0, max(len(data) - 1, 0))]
        elif edit == 1:
            payload.data = data + bytes(ch.integer(1, 64))
        elif edit == 2:
            payload.data = b""
        else:
            payload.data, _ = mutate_text(data, ch)
        return root, entries, f"payload {payload.name}: edit {edit}", False
    if how < 84:
        victim = ch.choice(entries)
        edit = ch.integer(0, 3)
        if edit == 0:
            entries.remove(victim)
            return root, entries, f"delete member {victim.name}", False
        if edit == 1:
            entries.append(_Entry(victim.name, ch.choice((b"", b"{}", victim.data[:10]))))
            return root, entries, f"repeat member {victim.name} (different bytes)", False
        if edit == 2:
            victim.name = ch.choice(
                (
                    "../" + victim.name,
                    victim.name + "x",
                    "/" + victim.name,
                    "other/" + victim.name,
                    victim.name.upper(),
                )
            )
            return root, entries, f"rename a member to {victim.name}", False
        entries.insert(0, entries.pop(ch.integer(0, len(entries) - 1)))
        return root, entries, "members reordered", True
    if how < 88:
        byteorder = _pick(entries, ch, suffix="byteorder")
        if byteorder is not None:
            byteorder.data = ch.choice((b"big", b"", b"LITTLE", b"\xff", b"middle"))
            return root, entries, f"byteorder = {byteorder.data!r}", False
    if how < 92:
        obj = _pick(entries, ch, prefix="data/constants/custom_obj")
        if obj is not None:
            obj.data, note = mutate_text(obj.data, ch)
            return root, entries, f"{obj.name}: {note}", False
    if how < 96:
        for e in entries:
            e.compress = zipfile.ZIP_DEFLATED
        return root, entries, "members deflated", True
    new_root = ch.choice(("", "a/b", "m", "\u00e9", "x" * 200))
    return new_root, entries, f"root folder {new_root!r}", new_root not in ("", "a/b")


def _raw(archive: bytes, ch: Chooser) -> tuple[bytes, str]:
    """Damage the container's bytes."""
    n = len(archive)
    how = ch.integer(0, 6)
    if how == 0:
        at = ch.integer(0, n - 1)
        return archive[:at], f"truncated at {at}/{n}"
    if how == 1:
        data = bytearray(archive)
        for _ in range(ch.integer(1, 4)):
            at = ch.integer(0, n - 1)
            data[at] ^= 1 << ch.integer(0, 7)
        return bytes(data), "bits flipped"
    if how == 2:
        data = bytearray(archive)
        tail = ch.integer(1, min(n, 2048))
        at = n - tail
        data[at] ^= 0xFF
        return bytes(data), f"byte {at} of the central directory flipped"
    if how == 3:
        end = archive.rfind(b"PK\x05\x06")
        if end < 0:
            return archive, "no end record"
        field = ch.choice(((8, "<H"), (10, "<H"), (12, "<I"), (16, "<I")))
        value = ch.choice((0, 1, 0xFFFF, 0xFFFFFFFF))
        value = min(value, 0xFFFF if field[1] == "<H" else value)
        patched = archive[: end + field[0]] + struct.pack(field[1], value)
        patched += archive[end + field[0] + struct.calcsize(field[1]) :]
        return patched, f"end record field at +{field[0]} = {value}"
    if how == 4:
        header = archive.find(b"PK\x01\x02", ch.integer(0, n - 1))
        if header < 0:
            header = archive.find(b"PK\x01\x02")
        offset = ch.choice(
            (
                (10, "<H", 99),
                (20, "<I", 0xFFFFFFF0),
                (24, "<I", 0xFFFFFFF0),
                (42, "<I", 0x7FFFFFFF),
                (28, "<H", 0xFFFF),
            )
        )
        at, fmt, value = offset
        patched = archive[: header + at] + struct.pack(fmt, value)
        patched += archive[header + at + struct.calcsize(fmt) :]
        return patched, f"central header field at +{at} = {value}"
    if how == 5:
        return ch.choice((b"", b"PK", b"PK\x05\x06" + bytes(18), b"not a zip")), "not an archive"
    return ch.choice((b"junk", bytes(100))) + archive, "bytes before the archive"


def mutate_archive(base: bytes, ch: Chooser) -> Mutant:
    """Mutate a ``.pt2`` archive (``base``, its bytes)."""
    root, entries = _read(base)
    notes: list[str] = []
    preserving = True
    if ch.chance(80):
        for _ in range(ch.choice((1, 1, 1, 2))):
            root, entries, note, keeps = _member(root, entries, ch)
            notes.append(note)
            preserving = preserving and keeps
        data = _write(root, entries)
    else:
        data = base
    if ch.chance(25) or not notes:
        data, note = _raw(data, ch)
        notes.append(note)
        preserving = False
    return Mutant(data, preserving, notes)
