"""The executor registry: entry points -> pluggy plugin modules -> executor specs -> executors."""

from __future__ import annotations

import builtins
import difflib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Literal

import importlib_metadata
import pluggy

from torchexec import hookspecs
from torchexec._errors import (
    DuplicateExecutorError,
    ExecutorLoadError,
    ExecutorNotFoundError,
    TorchexecError,
)
from torchexec._executor import Capabilities, Executor
from torchexec.hookspecs import PLUGIN_API_VERSION

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExecutorInfo",
    "ExecutorSpec",
    "Registration",
    "Registry",
    "get_executor",
    "list_executors",
    "register_executor",
]

ENTRY_POINT_GROUP = "torchexec"
Status = Literal["available", "loaded", "broken", "conflict"]
_IN_PROCESS = "<in-process>"


@dataclass(frozen=True)
class ExecutorSpec:
    """What a plugin registers: an executor's metadata and how to load it.

    Attributes:
        name: the executor's name, as users pass it (``executor="proxy"``).
        description: one line for ``torchexec list``.
        load: a zero-argument callable returning the :class:`~torchexec.Executor`; called on first
            use, so that listing executors never imports their implementation.
        capabilities: what the executor supports.
        api_version: the plugin API version the plugin was written for.
    """

    name: str
    description: str
    load: Callable[[], Executor]
    capabilities: Capabilities = field(default_factory=Capabilities)
    api_version: int = PLUGIN_API_VERSION


@dataclass(frozen=True)
class ExecutorInfo:
    """One row of :func:`list_executors`.

    ``status`` is ``available`` (registered, not yet loaded), ``loaded``, ``broken`` (see
    ``error``) or ``conflict`` (another distribution registers the same name).
    """

    name: str
    description: str
    distribution: str
    version: str
    status: Status
    capabilities: Capabilities | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (used by ``torchexec list --json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "capabilities": self.capabilities.as_dict() if self.capabilities else None,
            "error": self.error,
        }


@dataclass
class _Entry:
    name: str
    distribution: str
    version: str
    spec: ExecutorSpec | None = None
    error: str | None = None
    cause: BaseException | None = None
    executor: Executor | None = None
    conflict_with: list[str] = field(default_factory=list)

    def info(self) -> ExecutorInfo:
        status: Status
        if self.conflict_with:
            status = "conflict"
        elif self.error is not None:
            status = "broken"
        else:
            status = "loaded" if self.executor is not None else "available"
        error = self.error
        if self.conflict_with:
            error = "also registered by " + ", ".join(self.conflict_with)
        return ExecutorInfo(
            name=self.name,
            description=self.spec.description if self.spec else "",
            distribution=self.distribution,
            version=self.version,
            status=status,
            capabilities=self.spec.capabilities if self.spec else None,
            error=error,
        )


class Registration:
    """Handle for an in-process registration; ``unregister()`` (or leaving ``with``) undoes it."""

    def __init__(self, registry: Registry, name: str, previous: list[_Entry] | None) -> None:
        self._registry = registry
        self.name = name
        self._previous = previous
        self._active = True

    def unregister(self) -> None:
        """Remove the executor and restore whatever the name meant before."""
        if self._active:
            self._active = False
            self._registry._restore_name(self.name, self._previous)

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unregister()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Registry:
    """Executors by name, discovered lazily from the ``torchexec`` entry-point group."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._lock = threading.RLock()
        self._entries: dict[str, list[_Entry]] | None = None
        self._hooks: builtins.list[tuple[str, pluggy.HookRelay]] = []
        self.generation = 0
        """Bumped on every change, so that caches keyed by it never serve a replaced executor."""

    # --- discovery ---------------------------------------------------------------------------

    def _ensure(self) -> dict[str, list[_Entry]]:
        with self._lock:
            if self._entries is None:
                self._entries = {}
                self._hooks = []
                for ep in importlib_metadata.entry_points(group=self.group):
                    self._load_entry_point(ep)
            return self._entries

    def refresh(self) -> None:
        """Forget everything and discover again (after installing or removing a plugin)."""
        with self._lock:
            self._entries = None
            self.generation += 1

    def _add(self, entry: _Entry) -> None:
        assert self._entries is not None
        same = self._entries.setdefault(entry.name, [])
        same.append(entry)
        if len(same) > 1:
            for e in same:
                e.conflict_with = sorted(o.distribution for o in same if o is not e)

    def _load_entry_point(self, ep: importlib_metadata.EntryPoint) -> None:
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else f"<unknown: {ep.value}>"
        version = dist.version if dist is not None else "?"
        where = f"distribution {dist_name} {version} (entry point {ep.name} = {ep.value})"

        def broken(message: str, cause: BaseException | None) -> None:
            self._add(_Entry(ep.name, dist_name, version, error=message, cause=cause))

        try:
            module = ep.load()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            broken(f"plugin module failed to import: {_describe(exc)}", exc)
            return
        if not isinstance(module, ModuleType):
            broken(f"entry point must name a module, got {type(module).__name__}", None)
            return
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        try:
            pm.register(module, name=f"{dist_name}:{ep.name}")
        except Exception as exc:
            broken(f"plugin hooks are invalid: {_describe(exc)}", exc)
            return
        self._hooks.append((dist_name, pm.hook))
        impls = pm.hook.torchexec_register_executors.get_hookimpls()
        if not impls:
            broken(
                "plugin module implements no torchexec hook (torchexec_register_executors)", None
            )
            return
        registered: list[str] = []

        def register(spec: ExecutorSpec) -> None:
            problem = _check_spec(spec)
            name = getattr(spec, "name", None)
            name = name if isinstance(name, str) and name else ep.name
            if problem is not None:
                self._add(_Entry(name, dist_name, version, error=problem))
            else:
                self._add(_Entry(spec.name, dist_name, version, spec=spec))
            registered.append(name)

        for impl in impls:
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                broken(f"torchexec_register_executors raised {_describe(exc)} in {where}", exc)
                return
        if not registered:
            broken("plugin registered no executor", None)

    # --- queries -----------------------------------------------------------------------------

    def list(self) -> builtins.list[ExecutorInfo]:
        """Every registered executor (broken and conflicting ones included), sorted by name."""
        entries = self._ensure()
        with self._lock:
            return [e.info() for name in sorted(entries) for e in entries[name]]

    def names(self) -> builtins.list[str]:
        """The names of every registered executor."""
        return sorted(self._ensure())

    def get(self, name: str) -> Executor:
        """The executor called ``name``, loading it on first use.

        Raises:
            ExecutorNotFoundError: no such name (with a did-you-mean suggestion).
            ExecutorLoadError: the executor is broken; names the distribution and the cause.
            DuplicateExecutorError: several distributions register the name.
        """
        entries = self._ensure()
        with self._lock:
            same = entries.get(name)
            if not same:
                raise ExecutorNotFoundError(_not_found_message(name, sorted(entries)))
            if len(same) > 1:
                dists = ", ".join(sorted(f"{e.distribution} {e.version}" for e in same))
                raise DuplicateExecutorError(
                    f"Executor {name!r} is registered by several distributions ({dists}); "
                    "uninstall all but one (see 'torchexec list')."
                )
            entry = same[0]
            if entry.executor is not None:
                return entry.executor
            if entry.error is not None:
                raise ExecutorLoadError(
                    f"Executor {name!r} from distribution {entry.distribution} {entry.version} "
                    f"is broken: {entry.error}"
                ) from entry.cause
            assert entry.spec is not None
            try:
                executor = entry.spec.load()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                entry.error, entry.cause = f"loading failed: {_describe(exc)}", exc
                raise ExecutorLoadError(
                    f"Executor {name!r} from distribution {entry.distribution} {entry.version} "
                    f"failed to load: {_describe(exc)}"
                ) from exc
            if not isinstance(executor, Executor):
                entry.error = f"load() returned {type(executor).__name__}, not an Executor"
                raise ExecutorLoadError(
                    f"Executor {name!r} from distribution {entry.distribution} "
                    f"{entry.version} is broken: {entry.error}"
                )
            entry.executor = executor
            return executor

    def plugin_hooks(self) -> builtins.list[tuple[str, pluggy.HookRelay]]:
        """``(distribution, hooks)`` of every plugin module found, in discovery order; the
        conformance kit calls ``torchexec_conformance_ops`` through these."""
        self._ensure()
        with self._lock:
            return list(self._hooks)

    def distribution_of(self, name: str) -> str:
        """The distribution that provides ``name`` (for error messages)."""
        same = self._ensure().get(name) or []
        return ", ".join(e.distribution for e in same) or "?"

    # --- in-process registration -------------------------------------------------------------

    def register(
        self, executor: Executor | ExecutorSpec, *, replace_existing: bool = False
    ) -> Registration:
        """Register an executor object or spec in this process (notebooks, tests).

        Raises:
            TorchexecError: the name is taken and ``replace_existing`` is false, or the spec is
                invalid.
        """
        if isinstance(executor, ExecutorSpec):
            spec = executor
        elif isinstance(executor, Executor):
            obj = executor
            spec = ExecutorSpec(
                name=obj.name,
                description=obj.description,
                load=lambda: obj,
                capabilities=obj.capabilities,
            )
        else:
            raise TorchexecError(
                f"register_executor expects an Executor or an ExecutorSpec, "
                f"got {type(executor).__name__}"
            )
        problem = _check_spec(spec)
        if problem is not None:
            raise TorchexecError(f"cannot register executor: {problem}")
        entries = self._ensure()
        with self._lock:
            previous = entries.get(spec.name)
            if previous and not replace_existing:
                raise TorchexecError(
                    f"An executor named {spec.name!r} is already registered by "
                    f"{', '.join(e.distribution for e in previous)}; pass replace_existing=True "
                    "to shadow it in this process."
                )
            entries[spec.name] = [_Entry(spec.name, _IN_PROCESS, "", spec=replace(spec))]
            self.generation += 1
        return Registration(self, spec.name, previous)

    def _restore_name(self, name: str, previous: builtins.list[_Entry] | None) -> None:
        entries = self._ensure()
        with self._lock:
            if previous:
                entries[name] = previous
            else:
                entries.pop(name, None)
            self.generation += 1

    @contextmanager
    def isolated(self) -> Iterator[Registry]:
        """Restore the registry's state on exit (used by the test fixtures)."""
        with self._lock:
            saved = (
                None if self._entries is None else {k: list(v) for k, v in self._entries.items()}
            )
        try:
            yield self
        finally:
            with self._lock:
                self._entries = saved
                self.generation += 1


def _check_spec(spec: object) -> str | None:
    if not isinstance(spec, ExecutorSpec):
        return f"registered a {type(spec).__name__}, not a torchexec.ExecutorSpec"
    if not isinstance(spec.name, str) or not spec.name.isidentifier():
        return f"executor name {spec.name!r} is not a valid identifier"
    if spec.api_version != PLUGIN_API_VERSION:
        return (
            f"written for torchexec plugin API {spec.api_version}, but this torchexec provides "
            f"{PLUGIN_API_VERSION}; upgrade the plugin or torchexec"
        )
    if not callable(spec.load):
        return f"spec.load of executor {spec.name!r} is not callable"
    if not isinstance(spec.capabilities, Capabilities):
        return f"spec.capabilities of executor {spec.name!r} is not a torchexec.Capabilities"
    return None


def _not_found_message(name: str, installed: list[str]) -> str:
    close = difflib.get_close_matches(name, installed, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(installed) if installed else "none"
    return f"Unknown executor {name!r}.{hint} Installed: {listed} (see 'torchexec list')."


REGISTRY = Registry()


def list_executors() -> list[ExecutorInfo]:
    """Every installed executor with its distribution, version, status and capabilities."""
    return REGISTRY.list()


def get_executor(name: str) -> Executor:
    """The executor called ``name`` (see :meth:`Registry.get` for the errors)."""
    return REGISTRY.get(name)


def register_executor(
    executor: Executor | ExecutorSpec, *, replace_existing: bool = False
) -> Registration:
    """Register an executor in this process; the returned handle's ``unregister()`` undoes it."""
    return REGISTRY.register(executor, replace_existing=replace_existing)
