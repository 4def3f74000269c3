"""Priority lists under test: ``--executor mine,aten`` checks the list as one executor.

The kit names an executor under test by a label; a label with commas is a priority list (each
operator node runs on the first member that claims it). Its capabilities combine its members':
it is bitwise when every member is, runs TorchBind programs when every member does, and declares
an operator or dtype unsupported only when every member does.
"""

from __future__ import annotations

from dataclasses import replace

import torchexec

__all__ = ["capabilities", "choice", "members"]


def members(label: str) -> list[str]:
    """The executor names in ``label`` (one for a plain name)."""
    return [part.strip() for part in label.split(",")]


def choice(label: str) -> str | list[str]:
    """What to pass as ``executor=`` for ``label``."""
    names = members(label)
    return names[0] if len(names) == 1 else names


def capabilities(label: str) -> torchexec.Capabilities:
    """The capabilities of ``label``, combined over a list's members."""
    caps = [torchexec.get_executor(name).capabilities for name in members(label)]
    if len(caps) == 1:
        return caps[0]
    return replace(
        caps[0],
        devices=tuple(d for d in caps[0].devices if all(d in c.devices for c in caps)),
        torchbind=all(c.torchbind for c in caps),
        bitwise=all(c.bitwise for c in caps),
        unsupported_ops=frozenset.intersection(*(c.unsupported_ops for c in caps)),
        unsupported_dtypes=frozenset.intersection(*(c.unsupported_dtypes for c in caps)),
        capture_safe=all(c.capture_safe for c in caps),
    )
