"""The skips file: conformance ids an executor knowingly fails, each with a reason.

One entry a line: an id prefix, white space, the reason. ``#`` starts a comment::

    # my_executor does not implement convolutions yet
    my_executor::generated::aten.conv2d    no convolution kernels (issue #12)
    my_executor::opinfo::linalg            LAPACK-based ops are not supported
    *::opinfo::nn.functional.dropout       random; the same seed gives other values

Conformance ids are ``EXECUTOR::TIER::DETAIL``:

- ``NAME::contract::CHECK`` for contract checks (``metadata``, ``options``, ``inputs``...);
- ``NAME::generated::OPERATOR`` and ``NAME::torchbind::OPERATOR`` for generated programs: a
  program matches when any operator it calls matches;
- ``NAME::opinfo::OPINFO::SAMPLE`` for the OpInfo tier (``NAME::opinfo::add::0``).

A prefix matches an id equal to it or continuing after it with ``.``, ``:`` or ``[``, so
``NAME::opinfo::add`` covers ``add::0`` and ``add.Tensor`` but not ``addmm``. ``*`` as the
executor part matches every executor. A matching failure is counted as *xfailed*, not as a
failure; a matching example that passes counts as passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["SkipEntry", "SkipList", "SkipsFileError", "id_matches"]


class SkipsFileError(ValueError):
    """A skips file line is malformed (names the file and line)."""


@dataclass(frozen=True)
class SkipEntry:
    """One line of a skips file."""

    prefix: str
    reason: str
    source: str
    shipped: bool = False

    @property
    def tier(self) -> str:
        """The tier part (``generated``, ``opinfo``...)."""
        parts = self.prefix.split("::")
        return parts[1] if len(parts) > 1 else ""

    @property
    def executor(self) -> str:
        """The executor part (``*`` for any)."""
        return self.prefix.split("::", 1)[0]

    def matches(self, test_id: str) -> bool:
        """Whether ``test_id`` (``NAME::tier::detail``) is covered by this entry."""
        if self.executor == "*":
            name = test_id.partition("::")[0]
            return id_matches(self.prefix.replace("*", name, 1), test_id)
        return id_matches(self.prefix, test_id)


def id_matches(prefix: str, test_id: str) -> bool:
    """Prefix match on an id boundary (the next character is ``.``, ``:`` or ``[``)."""
    if test_id == prefix:
        return True
    return test_id.startswith(prefix) and (prefix.endswith(":") or test_id[len(prefix)] in ".:[")


@dataclass
class SkipList:
    """Entries from skips files, with a record of which ones matched something."""

    entries: list[SkipEntry] = field(default_factory=list)
    used: set[SkipEntry] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str, source: str, *, shipped: bool = False) -> SkipList:
        """Parse skips-file text; ``source`` names it in errors."""
        entries: list[SkipEntry] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            where = f"{source}:{n}"
            if len(parts) < 2:
                raise SkipsFileError(f"{where}: {parts[0]!r} has no reason; write 'ID  reason'")
            prefix, reason = parts
            if prefix.count("::") < 1:
                raise SkipsFileError(
                    f"{where}: {prefix!r} is not a conformance id (EXECUTOR::TIER[::DETAIL])"
                )
            entries.append(SkipEntry(prefix, reason.strip(), where, shipped))
        return cls(entries)

    @classmethod
    def load(cls, paths: Iterable[str | Path], *, shipped: bool = True) -> SkipList:
        """The shipped xfails (``opinfo_xfails.txt``) plus the given files."""
        out = cls()
        if shipped:
            text = resources.files("torchexec.testing").joinpath("opinfo_xfails.txt").read_text()
            out.entries += cls.parse(
                text, "torchexec/testing/opinfo_xfails.txt", shipped=True
            ).entries
        for p in paths:
            path = Path(p)
            try:
                text = path.read_text()
            except OSError as exc:
                raise SkipsFileError(f"cannot read skips file {path}: {exc}") from exc
            out.entries += cls.parse(text, str(path)).entries
        return out

    def match(self, test_ids: Iterable[str]) -> SkipEntry | None:
        """The entry (longest prefix first) that covers any of ``test_ids``, if one does."""
        ids = list(test_ids)
        for entry in sorted(self.entries, key=lambda e: -len(e.prefix)):
            if any(entry.matches(i) for i in ids):
                return entry
        return None

    def mark_used(self, entry: SkipEntry) -> None:
        """Record that ``entry`` applied to an example."""
        self.used.add(entry)

    def unmatched(
        self, known_ids: Iterable[str], executors: Iterable[str], tiers: Iterable[str]
    ) -> list[SkipEntry]:
        """Entries from user files, for the given executors (or ``*``) and tiers that ran,
        that match none of ``known_ids`` (the ids the run could have produced)."""
        names = set(executors)
        ran = set(tiers)
        known = list(known_ids)
        out = []
        for e in self.entries:
            if e.shipped or e in self.used:
                continue
            if e.executor != "*" and e.executor not in names:
                continue
            if e.tier not in ran:
                continue
            wanted = [e.executor] if e.executor != "*" else sorted(names)
            plausible = False
            for k in known:
                name = k.split("::", 1)[0]
                if name not in wanted:
                    continue
                full = e.prefix.replace("*", name, 1) if e.executor == "*" else e.prefix
                # the entry covers an id, or names something inside one (a sample of an OpInfo)
                if id_matches(full, k) or id_matches(k, full):
                    plausible = True
                    break
            if not plausible:
                out.append(e)
        return out
