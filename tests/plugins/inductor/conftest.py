"""Shared fixtures of the inductor tests: a session package cache and the compiled models.

Each AOTInductor compile takes 10-50 s on a 2-core machine, so every program is compiled once
per session (module-scoped fixtures below) into a temporary ``TORCHEXEC_CACHE_DIR``: the tests
never touch the user's cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torchexec_inductor", reason="torchexec-inductor is not installed")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh ``TORCHEXEC_CACHE_DIR`` for the whole session."""
    path = tmp_path_factory.mktemp("torchexec-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCHEXEC_CACHE_DIR", str(path))
        yield path
