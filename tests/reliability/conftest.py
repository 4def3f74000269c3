"""The shipped executors that are installed and usable here, for parametrising reliability tests."""

from __future__ import annotations

import torchexec

SHIPPED = ("aten", "proxy", "torchbind")


def installed_shipped() -> list[str]:
    """Shipped executors that are installed and not broken."""
    ok = {i.name for i in torchexec.list_executors() if i.status in ("available", "loaded")}
    return [name for name in SHIPPED if name in ok]
