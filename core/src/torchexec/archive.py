"""Read ``.pt2`` archives written by ``torch.export.save`` without unpickling anything.

Inside the zip every path sits under one root folder named after the archive (``m/models/model.json``);
:class:`Pt2Archive` hides that prefix. Executors that read archives themselves (the proxy) use it, and
the core uses it to learn a program's input and output structure without ``torch.export.load``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from torchexec._errors import ProgramError

__all__ = ["Pt2Archive"]


class Pt2Archive:
    """A read-only view of a ``.pt2`` zip archive.

    Raises:
        ProgramError: when the file is missing, is not a zip archive, or is truncated.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise ProgramError(f"No such program file: {self.path}") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ProgramError(
                f"{self.path} is not a readable .pt2 archive (a zip written by torch.export.save): "
                f"{exc}"
            ) from exc
        names = self._zip.namelist()
        roots = {n.split("/", 1)[0] for n in names if "/" in n}
        if len(roots) != 1:
            raise ProgramError(
                f"{self.path}: expected every entry under one root folder, found {sorted(roots)[:5]}"
            )
        self._root = roots.pop() + "/"
        self._names = frozenset(n[len(self._root) :] for n in names if n.startswith(self._root))

    def close(self) -> None:
        """Close the underlying zip file."""
        self._zip.close()

    def __enter__(self) -> Pt2Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self) -> frozenset[str]:
        """Every entry, relative to the archive's root folder."""
        return self._names

    def has(self, name: str) -> bool:
        """Whether the entry exists."""
        return name in self._names

    def read(self, name: str) -> bytes:
        """The bytes of one entry (path relative to the root folder)."""
        if name not in self._names:
            raise ProgramError(f"{self.path}: the archive has no entry {name!r}")
        try:
            return self._zip.read(self._root + name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ProgramError(f"{self.path}: entry {name!r} cannot be read: {exc}") from exc

    def read_json(self, name: str) -> Any:
        """Parse one JSON entry."""
        data = self.read(name)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ProgramError(f"{self.path}: entry {name!r} is not valid JSON: {exc}") from exc

    def model_names(self) -> list[str]:
        """Names of the programs stored under ``models/`` (usually just ``model``)."""
        return sorted(
            n[len("models/") : -len(".json")]
            for n in self._names
            if n.startswith("models/") and n.endswith(".json") and n.count("/") == 1
        )

    def model_json(self, model: str = "model") -> bytes:
        """The ExportedProgram JSON (torch/_export/serde schema) of one stored program."""
        return self.read(f"models/{model}.json")
