"""Importing torchexec is cheap: torch loads only when a name that needs it is first used.

pytest imports the conformance kit's plugin in every run of an environment where torchexec is
installed, and ``torchexec list`` only reads entry points: neither should pay for torch.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

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


def _stub_names(package: str) -> dict[str, tuple[str, str]]:
    """``name -> (module, name there)`` for every ``from .module import x as name`` line of the
    package's ``__init__.pyi``, the file lazy_loader reads."""
    init = importlib.import_module(package).__file__
    assert init is not None
    tree = ast.parse(Path(init).with_suffix(".pyi").read_text())
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1 and node.module is not None, ast.unparse(node)
            for alias in node.names:
                out[alias.asname or alias.name] = (f"{package}.{node.module}", alias.name)
    return out


def test_first_use_loads_the_name() -> None:
    assert "torch" in _modules_after("import torchexec; torchexec.execute")
    assert torchexec.__version__ == importlib_metadata.version("torchexec")


@pytest.mark.parametrize("package", ["torchexec", "torchexec.testing"])
def test_public_names_are_the_defining_modules_objects(package: str) -> None:
    """Every name in ``__all__`` loads lazily, and is the very object its module defines."""
    pkg = importlib.import_module(package)
    stub = _stub_names(package)
    assert pkg.__all__ == sorted(stub)
    for name, (module, original) in stub.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(module), original), name
    with pytest.raises(AttributeError, match="nope"):
        pkg.nope  # noqa: B018
