"""The pytest plugin of the conformance kit (entry point ``pytest11``: ``torchexec``).

pytest loads this module in every run of an environment where torchexec is installed, so it only
adds options: nothing of the kit is imported or built unless ``--executor`` is given, and the
kit's tests (``pytest --pyargs torchexec.testing``) only run then. Disable it with
``-p no:torchexec``.

Options:
    --executor NAME              executor under test (repeatable); the reference is ``aten``
    --conformance-profile P      ``quick`` (default) or ``ci`` (derandomized, more examples)
    --max-examples N             generated programs (overrides the profile)
    --opinfo-samples N           samples per OpInfo (0 turns the OpInfo tier off)
    --opinfo-dtype-samples N     samples per OpInfo on each dtype other than float32
    --opinfo-full                every sample of every OpInfo on every dtype it supports
    --coverage-variants N        coverage pass variants per (operator, dtype) (0 turns it off)
    --conformance-skips PATH     skips file (repeatable; see ``torchexec.testing.skips``)
    --conformance-report PATH    write the JSON report
    --conformance-tolerances P   JSON tolerances merged over the shipped ones
    --executor-options NAME=JSON executor_parameters for one executor (repeatable)
    --distributed N              the distributed tier on N gloo ranks (off by default)
    --distributed-setup MODULE   a module each rank imports first (repeatable)
    --distributed-timeout S      how long the ranks may take in all

With pytest-xdist (``-n 2``) the kit's tests are shared among worker processes; the controller
merges the workers' parts into one report (``torchexec.testing._shards``).
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from torchexec.testing._env import PROFILE_ENV, TEMP_REPORT_ENV

if TYPE_CHECKING:
    from torchexec.testing._kit import Kit

__all__ = ["KIT_KEY"]

KIT_KEY: pytest.StashKey[Kit] = pytest.StashKey()
_KIT_MODULE = Path(__file__).with_name("test_conformance.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The kit's options (inert unless ``--executor`` is given)."""
    group = parser.getgroup(
        "torchexec", "torchexec conformance kit (pytest --pyargs torchexec.testing)"
    )
    group.addoption(
        "--executor", action="append", default=[], metavar="NAME", dest="torchexec_executors",
        help="executor to check against the 'aten' reference (repeatable); 'a,b' checks the "
        "priority list as one executor",
    )  # fmt: skip
    group.addoption(
        "--conformance-profile", choices=("quick", "ci"), default=None,
        dest="torchexec_profile",
        help=f"quick (default) or ci: derandomized, more examples (env {PROFILE_ENV})",
    )  # fmt: skip
    group.addoption(
        "--max-examples", type=int, default=None, metavar="N", dest="torchexec_max_examples",
        help="generated programs to run (default: 25 quick, 300 ci)",
    )  # fmt: skip
    group.addoption(
        "--opinfo-samples", type=int, default=None, metavar="N", dest="torchexec_opinfo_samples",
        help="samples per OpInfo in the OpInfo tier; 0 turns it off (default: 1 quick, 2 ci)",
    )  # fmt: skip
    group.addoption(
        "--opinfo-dtype-samples", type=int, default=None, metavar="N",
        dest="torchexec_opinfo_dtype_samples",
        help="samples per OpInfo on each CPU dtype it supports other than float32 "
        "(default: 0 quick, 1 ci)",
    )  # fmt: skip
    group.addoption(
        "--opinfo-full", action="store_true", default=False, dest="torchexec_opinfo_full",
        help="the OpInfo tier in full: every sample on every dtype (slow)",
    )  # fmt: skip
    group.addoption(
        "--coverage-variants", type=int, default=None, metavar="N",
        dest="torchexec_coverage_variants",
        help="variants per (operator, dtype) in the coverage pass, 0 to 4; 0 turns it off "
        "(default: 1 quick, 4 ci)",
    )  # fmt: skip
    group.addoption(
        "--conformance-skips", action="append", default=[], metavar="PATH",
        dest="torchexec_skips", help="skips file: 'ID-PREFIX  reason' per line (repeatable)",
    )  # fmt: skip
    group.addoption(
        "--conformance-report", default=None, metavar="PATH", dest="torchexec_report",
        help="write the conformance report as JSON",
    )  # fmt: skip
    group.addoption(
        "--conformance-tolerances", default=None, metavar="PATH", dest="torchexec_tolerances",
        help="JSON tolerances (for non-bitwise executors) merged over the shipped ones",
    )  # fmt: skip
    group.addoption(
        "--distributed", type=int, default=0, metavar="N", dest="torchexec_distributed",
        help="run programs with collectives on N gloo ranks (the distributed tier; N >= 2)",
    )  # fmt: skip
    group.addoption(
        "--distributed-setup", action="append", default=[], metavar="MODULE",
        dest="torchexec_distributed_setup",
        help="a module each rank of the distributed tier imports first, e.g. one that "
        "registers executors in-process (repeatable)",
    )  # fmt: skip
    group.addoption(
        "--distributed-timeout", type=float, default=None, metavar="SECONDS",
        dest="torchexec_distributed_timeout",
        help="how long the ranks of the distributed tier may take in all (default: 120 + 15 "
        "per program); a rank that has not finished by then is a crash",
    )  # fmt: skip
    group.addoption(
        "--executor-options", action="append", default=[], metavar="NAME=JSON",
        dest="torchexec_executor_options",
        help="executor_parameters for one executor, e.g. proxy='{\"allow_pickle\": false}'",
    )  # fmt: skip


def _executor_options(values: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for raw in values:
        name, sep, text = raw.partition("=")
        try:
            data = json.loads(text) if sep else None
        except json.JSONDecodeError as exc:
            raise pytest.UsageError(f"--executor-options {raw!r}: invalid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise pytest.UsageError(f"--executor-options {raw!r}: expected NAME={{...json...}}")
        out.setdefault(name, {}).update(data)
    return out


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Build the kit when ``--executor`` is given (after other plugins and conftests ran their
    ``pytest_configure``, so executors they register in-process are found)."""
    names: list[str] = config.getoption("torchexec_executors")
    if not names:
        return
    import difflib

    import torchexec
    from torchexec.testing._kit import PROFILES, Kit, KitOptions

    installed = sorted({i.name for i in torchexec.list_executors()})
    for name in (member.strip() for label in names for member in label.split(",")):
        if name not in installed:
            close = difflib.get_close_matches(name, installed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise pytest.UsageError(
                f"--executor {name}: no such executor.{hint} Installed: "
                f"{', '.join(installed) or 'none'} (see 'torchexec list')."
            )

    if config.getoption("torchexec_distributed") not in (0, *range(2, 65)):
        raise pytest.UsageError("--distributed N: N is the number of ranks, 2 to 64")
    profile = config.getoption("torchexec_profile") or os.environ.get(PROFILE_ENV) or "quick"
    if profile not in PROFILES:
        raise pytest.UsageError(f"{PROFILE_ENV}={profile!r}: expected one of {sorted(PROFILES)}")
    report = config.getoption("torchexec_report")
    tolerances = config.getoption("torchexec_tolerances")
    try:
        kit = Kit(
            KitOptions(
                executors=names,
                profile=profile,
                max_examples=config.getoption("torchexec_max_examples"),
                opinfo_samples=config.getoption("torchexec_opinfo_samples"),
                coverage_variants=config.getoption("torchexec_coverage_variants"),
                opinfo_dtype_samples=config.getoption("torchexec_opinfo_dtype_samples"),
                opinfo_full=config.getoption("torchexec_opinfo_full"),
                seed=_seed(config),
                report=Path(report) if report else None,
                skips=[Path(p) for p in config.getoption("torchexec_skips")],
                tolerances=Path(tolerances) if tolerances else None,
                executor_options=_executor_options(config.getoption("torchexec_executor_options")),
                distributed=config.getoption("torchexec_distributed"),
                distributed_setup=config.getoption("torchexec_distributed_setup"),
                distributed_timeout=config.getoption("torchexec_distributed_timeout"),
                worker=_worker_id(config),
            )
        )
    except ValueError as exc:
        raise pytest.UsageError(f"torchexec conformance kit: {exc}") from exc
    config.stash[KIT_KEY] = kit


def _worker_id(config: pytest.Config) -> str | None:
    """The pytest-xdist worker id when this process is a worker of a sharded run."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def _seed(config: pytest.Config) -> int | None:
    try:
        value = config.getoption("hypothesis_seed")
    except ValueError:
        return None
    return int(value) if value is not None else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect the kit's test module even where ``python_files`` would not match it."""
    if file_path != _KIT_MODULE or parent.session.isinitpath(file_path):
        return None
    patterns: list[str] = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None  # the python plugin collects it
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run the kit's tests without an executor."""
    if KIT_KEY in config.stash:
        return
    if any(Path(str(item.path)) == _KIT_MODULE for item in items):
        raise pytest.UsageError(
            "the torchexec conformance kit needs --executor NAME, e.g. "
            "'pytest --pyargs torchexec.testing --executor my_executor'"
        )


@pytest.fixture
def torchexec_kit(request: pytest.FixtureRequest) -> Kit:
    """The conformance run (only with ``--executor``)."""
    kit = request.config.stash.get(KIT_KEY, None)
    if kit is None:
        pytest.skip("pass --executor NAME to run the torchexec conformance kit")
    return kit


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Check the skips files against what ran and write the report (on a pytest-xdist worker:
    hand this worker's part to the controller instead)."""
    kit = session.config.stash.get(KIT_KEY, None)
    if kit is None:
        return
    for item in getattr(session, "items", []):
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        name = params.get("opinfo_name")
        if name is not None:
            kit.known_ids.update(f"{e}::opinfo::{name}" for e in kit.executors)
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is None:
        kit.finish()
        return
    from torchexec.testing._shards import WORKEROUTPUT_KEY, shard_state

    workeroutput[WORKEROUTPUT_KEY] = shard_state(kit)
    kit.drop_journal()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist, on the controller: a worker finished; fold its part into the report."""
    from torchexec.testing._shards import WORKEROUTPUT_KEY, merge_shard

    kit = node.config.stash.get(KIT_KEY, None)
    state = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
    if kit is not None and state is not None:
        merge_shard(kit, state)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The conformance summary (counts, operators covered, failures with code)."""
    kit = config.stash.get(KIT_KEY, None)
    if kit is None or not kit.tiers_run:
        return
    terminalreporter.section("torchexec conformance")
    width = getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 100)
    for line in kit.report.summary_lines(width=width):
        terminalreporter.write_line(line)
    if kit.options.report is not None and not os.environ.get(TEMP_REPORT_ENV):
        terminalreporter.write_line(f"report written to {kit.options.report}")
