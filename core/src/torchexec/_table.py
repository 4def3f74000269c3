"""Plain-text tables for the command line (``torchexec list``, ``torchexec demo``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

__all__ = ["print_table"]


def print_table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Print ``rows`` in left-aligned columns; the first row is the header, underlined.

    >>> import sys
    >>> print_table([["NAME", "STATUS"], ["aten", "ok"]], sys.stdout)
    NAME  STATUS
    ----  ------
    aten  ok
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)
