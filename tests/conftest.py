"""Fixtures shared by every test: registry isolation and real, pip-installed plugin fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import torchexec
from torchexec._registry import REGISTRY

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_DISTS = (
    "torchexec_example",
    "torchexec_broken_import",
    "torchexec_broken_hook",
    "torchexec_faulty",
    "torchexec_dup_a",
    "torchexec_dup_b",
)


@pytest.fixture(autouse=True)
def _isolated_registry() -> Iterator[None]:
    """Registry state and the runner cache are restored after every test."""
    with REGISTRY.isolated():
        torchexec.clear_cache()
        yield
    torchexec.clear_cache()


@pytest.fixture(scope="session")
def fixture_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each plugin under tests/fixtures pip-installed (built as a wheel) into its own folder.

    The folders are not on ``sys.path`` until a test activates one with ``use_plugin``, so the
    developer's environment never lists the test plugins.
    """
    root = tmp_path_factory.mktemp("plugin-sites")
    sites: dict[str, Path] = {}
    for name in FIXTURE_DISTS:
        target = root / name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "--target",
                str(target),
                str(FIXTURES / name),
            ],
            check=True,
            capture_output=True,
        )
        sites[name] = target
    return sites


@pytest.fixture
def use_plugin(fixture_sites: dict[str, Path]) -> Iterator[Callable[[str], Path]]:
    """Activate installed fixture plugins for one test: ``use_plugin("torchexec_example")``."""
    added: list[str] = []

    def activate(name: str) -> Path:
        site = fixture_sites[name]
        sys.path.insert(0, str(site))
        added.append(str(site))
        REGISTRY.refresh()
        return site

    yield activate
    for site in added:
        sys.path.remove(site)
    for mod in [m for m in sys.modules if m.split(".")[0] in FIXTURE_DISTS]:
        del sys.modules[mod]
    REGISTRY.refresh()
