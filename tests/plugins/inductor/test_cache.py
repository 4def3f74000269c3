"""The package cache without compiling: keys, atomic entries, corrupt entries, one builder."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from torchexec_inductor._cache import PackageCache, cache_root, program_key

W = torch.arange(6, dtype=torch.float32).reshape(2, 3)


def _key(json_doc: bytes = b"{}", w: torch.Tensor = W, autotune: bool = False) -> str:
    return program_key(json_doc, [("w", w)], {"max_autotune": autotune}, {})


def test_key_covers_program_weights_and_options() -> None:
    base = _key()
    assert base == _key(w=W.clone())
    assert base != _key(json_doc=b'{"a": 1}')
    assert base != _key(w=W + 1)
    assert base != _key(w=W.double())
    assert base != _key(w=W.t().contiguous().t())  # same values, other strides
    assert base != _key(autotune=True)
    assert _key(w=torch.ones(3, dtype=torch.bfloat16)) != _key(w=torch.ones(3, dtype=torch.half))


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHEXEC_CACHE_DIR", "/some/where")
    assert cache_root() == Path("/some/where/inductor")
    monkeypatch.delenv("TORCHEXEC_CACHE_DIR")
    assert cache_root() == Path.home() / ".cache" / "torchexec" / "inductor"


class _Builds:
    """A stand-in compiler: writes ``payload`` slowly and counts its calls."""

    def __init__(self, payload: bytes = b"package" * 1000, delay: float = 0.0) -> None:
        self.payload = payload
        self.delay = delay
        self.calls = 0

    def build(self, path: Path) -> None:
        self.calls += 1
        with path.open("wb") as f:
            f.write(self.payload[:10])
            time.sleep(self.delay)
            f.write(self.payload[10:])

    @staticmethod
    def load(path: Path) -> bytes:
        return path.read_bytes()


def test_miss_builds_hit_loads(tmp_path: Path) -> None:
    cache, builds = PackageCache(tmp_path), _Builds()
    first = cache.get_or_build("k", builds.build, builds.load, {"program": "p"})
    second = cache.get_or_build("k", builds.build, builds.load, {"program": "p"})
    assert first == second == builds.payload
    assert builds.calls == 1
    record = json.loads((tmp_path / "k.json").read_text())
    assert record["program"] == "p" and record["size"] == len(builds.payload)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.lock", "k.pt2"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "no record", "bad record"])
def test_damaged_entry_is_built_again(tmp_path: Path, damage: str) -> None:
    cache, builds = PackageCache(tmp_path), _Builds()
    cache.get_or_build("k", builds.build, builds.load, {})
    package, record = tmp_path / "k.pt2", tmp_path / "k.json"
    data = package.read_bytes()
    if damage == "truncate":
        package.write_bytes(data[:100])
    elif damage == "flip":
        package.write_bytes(b"X" + data[1:])
    elif damage == "no record":
        record.unlink()
    else:
        record.write_text("{not json")
    assert not cache.valid("k")
    assert cache.get_or_build("k", builds.build, builds.load, {}) == builds.payload
    assert builds.calls == 2
    assert cache.valid("k")


def test_unloadable_entry_is_built_again(tmp_path: Path) -> None:
    cache, builds = PackageCache(tmp_path), _Builds()
    cache.get_or_build("k", builds.build, builds.load, {})
    loads = []

    def load_once_broken(path: Path) -> bytes:
        loads.append(path)
        if len(loads) == 1:
            raise RuntimeError("cannot open the shared library")
        return path.read_bytes()

    assert cache.get_or_build("k", builds.build, load_once_broken, {}) == builds.payload
    assert builds.calls == 2 and len(loads) == 2


def test_concurrent_misses_build_once(tmp_path: Path) -> None:
    cache, builds = PackageCache(tmp_path), _Builds(delay=0.3)
    results: list[bytes] = []
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        results.append(cache.get_or_build("k", builds.build, builds.load, {}))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [builds.payload] * 4
    assert builds.calls == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = PackageCache(tmp_path)

    def fail(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cache.get_or_build("k", fail, _Builds.load, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock"]
