"""The on-disk package cache: one compiled AOTInductor package per program, torch and options.

Layout under ``$TORCHEXEC_CACHE_DIR/inductor`` (default ``~/.cache/torchexec/inductor``)::

    <key>.pt2     the package, written to a temporary file and moved into place (os.replace)
    <key>.json    written after the package: its size and SHA-256, torch version, program name
    <key>.lock    a file lock (filelock) held while one process compiles the key

An entry counts only if its record exists and the package's size and SHA-256 match it, so a
truncated or partly written package is never loaded: it is compiled again. Two processes that
miss the same key at once compile it once; the second waits for the lock, then loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import filelock
import torch

from torchexec import ProgramError

__all__ = ["PackageCache", "cache_root", "canonical_program", "program_key"]

log = logging.getLogger("torchexec_inductor")

FORMAT = "torchexec-inductor/1"
"""Part of every key: bump it when the way packages are built changes."""

LOCK_TIMEOUT_S = 1800.0
"""How long a process waits for another one compiling the same program before compiling too."""

T = TypeVar("T")


def cache_root() -> Path:
    """``$TORCHEXEC_CACHE_DIR/inductor``, or ``~/.cache/torchexec/inductor``."""
    base = os.environ.get("TORCHEXEC_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "torchexec"
    return root / "inductor"


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return bytes(flat.view(torch.uint8).numpy().data)


def _strip_node_metadata(value: object) -> object:
    if isinstance(value, dict):
        is_node = "target" in value and "inputs" in value and "outputs" in value
        return {
            k: _strip_node_metadata(v)
            for k, v in value.items()
            if not (is_node and k == "metadata")
        }
    if isinstance(value, list):
        return [_strip_node_metadata(v) for v in value]
    return value


def canonical_program(model_json: bytes) -> bytes:
    """The program JSON without what does not change the compiled code: each node's
    ``metadata`` (stack traces, module paths, source functions), which differ between two
    processes that build the same program from different call sites, or from graph modules
    numbered differently (``<eval_with_key>.7``)."""
    doc = json.loads(model_json)
    return json.dumps(_strip_node_metadata(doc), sort_keys=True, separators=(",", ":")).encode()


def program_key(
    model_json: bytes,
    tensors: Iterable[tuple[str, object]],
    options: Mapping[str, object],
    extra: Mapping[str, object],
) -> str:
    """SHA-256 over everything that decides the compiled package.

    Args:
        model_json: the ExportedProgram JSON (graph, signature, shapes, dtypes, devices), best
            passed through :func:`canonical_program`.
        tensors: the program's named parameters, buffers and constants (their bytes are hashed:
            AOTInductor compiles them into the package).
        options: the executor options that change the compiled code.
        extra: anything else, e.g. which state the executor lifts to inputs.
    """
    h = hashlib.sha256()

    def part(label: str, data: bytes | memoryview) -> None:
        h.update(label.encode())
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    environment = {
        "format": FORMAT,
        "torch": torch.__version__,
        "git": getattr(torch.version, "git_version", ""),
        "cuda": torch.version.cuda or "",
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "options": {k: repr(v) for k, v in sorted(options.items())},
        "extra": {k: repr(v) for k, v in sorted(extra.items())},
    }
    part("environment", json.dumps(environment, sort_keys=True).encode())
    part("program", model_json)
    for name, value in sorted(tensors, key=lambda item: item[0]):
        if not isinstance(value, torch.Tensor):
            raise ProgramError(
                f"the program's constant {name!r} is a {type(value).__name__}, not a tensor; "
                "the inductor executor does not run programs that hold TorchBind objects"
            )
        meta = f"{name}|{value.dtype}|{list(value.shape)}|{list(value.stride())}|{value.device}"
        part("tensor", meta.encode())
        part("bytes", _tensor_bytes(value))
    return h.hexdigest()


@dataclass(frozen=True)
class _Miss:
    """No usable package; ``digest`` names a stored one that failed to load."""

    digest: str | None


@dataclass(frozen=True)
class PackageCache:
    """Packages by key under ``root``."""

    root: Path

    def package(self, key: str) -> Path:
        """Where the package of ``key`` lives."""
        return self.root / f"{key}.pt2"

    def _record(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def valid(self, key: str) -> bool:
        """Whether a complete, intact package of ``key`` is stored."""
        return self._digest(key) is not None

    def _digest(self, key: str) -> str | None:
        """The SHA-256 of the stored package of ``key``, if it is complete and intact."""
        try:
            record = json.loads(self._record(key).read_text())
            path = self.package(key)
            if path.stat().st_size != record["size"]:
                return None
            digest = _sha256(path)
            return digest if digest == record["sha256"] else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def get_or_build(
        self,
        key: str,
        build: Callable[[Path], None],
        load: Callable[[Path], T],
        describe: Mapping[str, str],
    ) -> T:
        """Load the package of ``key``, building it first when missing or unusable.

        Args:
            build: writes a package to the path it is given (a temporary file).
            load: opens a package; an exception means the entry is bad and is rebuilt once.
            describe: what the record notes about the entry (program name, options).
        """
        failed = self._try_load(key, load, None)
        if not isinstance(failed, _Miss):
            return failed
        self.root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.root / f"{key}.lock"), timeout=LOCK_TIMEOUT_S)
        try:
            with lock:
                return self._build_locked(key, build, load, describe, failed.digest)
        except filelock.Timeout:
            log.warning("torchexec-inductor: gave up waiting for %s; compiling it too", key)
            return self._build_locked(key, build, load, describe, failed.digest)

    def _try_load(self, key: str, load: Callable[[Path], T], skip: str | None) -> T | _Miss:
        """The loaded package, or a miss (with the digest of a stored package that would not
        load). A package whose digest is ``skip`` already failed to load: it is not retried."""
        digest = self._digest(key)
        if digest is None or digest == skip:
            return _Miss(skip)
        try:
            return load(self.package(key))
        except Exception as exc:  # a package that checks out but does not load
            log.warning("torchexec-inductor: cached package %s is unusable (%s)", key, exc)
            return _Miss(digest)

    def _build_locked(
        self,
        key: str,
        build: Callable[[Path], None],
        load: Callable[[Path], T],
        describe: Mapping[str, str],
        failed: str | None,
    ) -> T:
        loaded = self._try_load(key, load, failed)  # another process may have built it
        if not isinstance(loaded, _Miss):
            return loaded
        self._record(key).unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".pt2", dir=self.root)
        os.close(fd)
        try:
            build(Path(tmp))
            size, digest = os.path.getsize(tmp), _sha256(Path(tmp))
            os.replace(tmp, self.package(key))
        finally:
            Path(tmp).unlink(missing_ok=True)
        record = {"size": size, "sha256": digest, "torch": torch.__version__, **describe}
        _write_atomic(self._record(key), json.dumps(record, indent=1).encode())
        return load(self.package(key))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
