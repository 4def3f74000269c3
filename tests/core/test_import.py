"""Importing torchexec is cheap: torch loads only when a name that needs it is first used.

pytest imports the conformance kit's plugin in every run of an environment where torchexec is
installed, and ``torchexec list`` only reads entry points: neither should pay for torch.
"""

from __future__ import annotations

import subprocess
import sys

import importlib_metadata
import pytest

import torchexec


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "code",
    [
        "import torchexec",
        "import torchexec.testing.plugin",
        "import torchexec; torchexec.list_executors()",
        "import torchexec_aten, torchexec_proxy, torchexec_torchbind",
    ],
)
def test_import_does_not_load_torch(code: str) -> None:
    assert "torch" not in _modules_after(code)


def test_first_use_loads_the_name() -> None:
    assert "torch" in _modules_after("import torchexec; torchexec.execute")
    assert sorted(torchexec.__all__) == torchexec.__all__
    for name in torchexec.__all__:
        assert getattr(torchexec, name) is not None
    assert torchexec.__version__ == importlib_metadata.version("torchexec")
    with pytest.raises(AttributeError, match="nope"):
        torchexec.nope  # type: ignore[attr-defined]  # noqa: B018
