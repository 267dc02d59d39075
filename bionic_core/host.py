"""Finding feature plugins (built-in and third-party) and hosting the enabled ones for a run."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_args

import pluggy

from bionic_core import __version__
from bionic_core.contract import hookspecs
from bionic_core.contract.errors import BionicError, error_line
from bionic_core.contract.features import Feature, Group, validate_feature_set

ENTRY_POINT_GROUP = "bionic.features"
# Set to 1 to load only the built-in features; set STRICT to 1 to fail on a broken plugin.
DISABLE_ENV = "BIONIC_DISABLE_PLUGINS"
STRICT_ENV = "BIONIC_STRICT_PLUGINS"
# A plugin that fails to load is reported here, one line each (the CLI prints them as
# `bionic: warning: ...`; elsewhere Python's last-resort handler prints the bare line).
log = logging.getLogger("bionic.plugins")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Entry:
    """One available feature: its plugin object, what it declared and the hooks it implements."""

    plugin: Any
    feature: Feature
    hooks: tuple[str, ...] = ()


def _source_hash(plugin: Any) -> str:
    """The first 12 hex digits of the sha256 of the source file that defines ``plugin``."""
    module = plugin if inspect.ismodule(plugin) else inspect.getmodule(plugin)
    if module is None and not isinstance(plugin, type):
        module = inspect.getmodule(type(plugin))
    path = getattr(module, "__file__", None)
    data = Path(path).read_bytes() if path and Path(path).is_file() else repr(module).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def _is_editable(dist: Any) -> bool:
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (AttributeError, OSError, ValueError):  # no metadata to read: not editable
        return False
    return bool(direct.get("dir_info", {}).get("editable"))


def plugin_provenance(plugin: Any, source: str, dist: Any = None) -> str:
    """What a feature's code is, for run identity: bionic's version and a hash of the
    module's source for a built-in (a development checkout keeps its version while its code
    changes), the distribution and version for an installed plugin, plus a hash of the module's
    source when the install is editable or has no version (so an edited feature gets new run
    keys)."""
    if source == "builtin":
        return f"bionic {__version__}+src.{_source_hash(plugin)}"
    if dist is not None and dist.version and not _is_editable(dist):
        return f"{dist.name} {dist.version}"
    base = f"{dist.name} {dist.version}" if dist is not None else source
    return f"{base}+src.{_source_hash(plugin)}"


def describe_plugin(plugin: Any, source: str, dist: Any = None) -> Entry:
    """Ask a plugin object for its :class:`Feature` and the hooks it implements (via a
    throw-away manager, so that the hookimpls are validated against the contract exactly as
    they will be in a run)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    results = [r for r in pm.hook.bionic_feature() if r is not None]
    if len(results) != 1 or not isinstance(results[0], Feature):
        raise TypeError("bionic_feature() must return exactly one bionic_core.features.Feature")
    if results[0].group not in get_args(Group):
        raise TypeError(f"feature '{results[0].name}': group {results[0].group!r} is not one of "
                        f"{', '.join(get_args(Group))}")
    pm.check_pending()
    feature = replace(results[0], source=source,
                      provenance=plugin_provenance(plugin, source, dist))
    hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or () if h.name != "bionic_feature")
    return Entry(plugin, feature, tuple(hooks))


class Catalogue:
    """Every feature this installation can offer, by name."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        # Third-party plugins that failed to load, one line each (see load_third_party).
        self.problems: list[str] = []
        # Set when $BIONIC_DISABLE_PLUGINS kept the third-party plugins out, so that "unknown
        # feature" can say so: the switch as set, and the installed plugins' names.
        self.switched_off: tuple[str, list[str]] | None = None

    def add(self, plugin: Any, source: str = "builtin", dist: Any = None) -> Feature:
        entry = describe_plugin(plugin, source, dist)
        if entry.feature.name in self.entries:
            raise ValueError(f"feature '{entry.feature.name}' is already registered")
        self.entries[entry.feature.name] = entry
        return entry.feature

    def remove(self, name: str) -> None:
        self.entries.pop(name, None)

    def __getitem__(self, name: str) -> Feature:
        return self.entries[name].feature

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def features(self) -> dict[str, Feature]:
        return {name: e.feature for name, e in sorted(self.entries.items())}

    def require(self, names: Iterable[str], where: str) -> None:
        unknown = [n for n in names if n not in self.entries]
        if unknown:
            known = ", ".join(sorted(self.entries))
            raise BionicError(f"{where}: unknown feature '{unknown[0]}' (known: {known})"
                              f"{self._switched_off_note()}")

    def _switched_off_note(self) -> str:
        if self.switched_off is None:
            return ""
        switch, installed = self.switched_off
        return (f"; third-party plugins are switched off by {switch} (installed but not "
                f"loaded: {', '.join(installed) or 'none'})")

    def validate(self, enabled: Iterable[str], where: str) -> None:
        """Raise BionicError naming ``where`` unless the feature set is consistent."""
        enabled = list(enabled)
        self.require(enabled, where)
        problems = validate_feature_set(enabled, self.features())
        if problems:
            raise BionicError(f"{where}: {problems[0]}")

    def host(self, enabled: Iterable[str]) -> FeatureHost:
        return FeatureHost(self, enabled)


# The package of the built-in feature modules, loaded by name like an entry point (the host
# sits below the features in the layers and never imports them directly).
BUILTIN_PACKAGE = "bionic_plugins"


def load_builtin(catalogue: Catalogue) -> None:
    package = importlib.import_module(BUILTIN_PACKAGE)
    for module_name in package.builtin_feature_modules():
        catalogue.add(importlib.import_module(module_name), source="builtin")


def load_third_party(catalogue: Catalogue, *, strict: bool) -> list[str]:
    """Load each ``bionic.features`` entry point on its own. A broken one is skipped with one
    line — ``feature plugin 'x' (pkg 0.1) not loaded: ModuleNotFoundError: ...`` — logged on
    :data:`log` and kept in ``catalogue.problems`` (returned); ``strict`` raises it instead."""
    problems: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        source = f"{dist.name} {dist.version}" if dist is not None else ep.value
        try:
            catalogue.add(ep.load(), source=source, dist=dist)
        except Exception as exc:  # a broken plugin must not take the host down
            message = f"feature plugin '{ep.name}' ({source}) not loaded: {error_line(exc)}"
            if strict:
                raise BionicError(message) from exc
            log.warning(message)
            problems.append(message)
    catalogue.problems.extend(problems)
    return problems


def installed_plugin_names() -> list[str]:
    """The names of the installed ``bionic.features`` entry points, without loading them."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_catalogue(*, third_party: bool | None = None, strict: bool | None = None) -> Catalogue:
    """Built-in features plus, unless disabled, third-party ones from the entry-point group.

    ``third_party`` defaults to "not $BIONIC_DISABLE_PLUGINS"; ``strict`` to $BIONIC_STRICT_PLUGINS.
    """
    catalogue = Catalogue()
    if third_party is None:
        third_party = not _truthy(os.environ.get(DISABLE_ENV))
        if not third_party:
            catalogue.switched_off = (f"{DISABLE_ENV}={os.environ[DISABLE_ENV]}",
                                      installed_plugin_names())
    if strict is None:
        strict = _truthy(os.environ.get(STRICT_ENV))
    load_builtin(catalogue)
    if third_party:
        load_third_party(catalogue, strict=strict)
    return catalogue


@dataclass(frozen=True)
class _Implementation:
    """One enabled feature's implementation of one hook, ready to call."""

    feature: str
    function: Any
    argnames: tuple[str, ...]


class FeatureHost:
    """The features enabled for one run, and the one place that calls their hooks.

    A feature is off by not being registered (and it is blocked by name, so that nothing can
    register it by accident); the core never branches on feature names. Every hook call goes
    through :meth:`call` (all answers) or :meth:`single` (at most one answer), in
    ``Feature.order`` (ties by name) — explicit, not pluggy's last-registered-first. The ordered
    implementations of each hook are looked up once and cached, so per-step hooks cost a loop
    over plain function calls. A feature that raises (anything but a :class:`BionicError`, which
    is the user's to fix) is named in a :class:`FeatureFailure`.
    """

    def __init__(self, catalogue: Catalogue, enabled: Iterable[str]) -> None:
        self.catalogue = catalogue
        names = sorted(set(enabled))
        catalogue.validate(names, "features")
        self.enabled: dict[str, Feature] = {n: catalogue[n] for n in names}
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        for name in catalogue.entries:
            if name not in self.enabled:
                self.pm.set_blocked(name)
        for name in names:
            self.pm.register(catalogue.entries[name].plugin, name=name)
        self._cache: dict[str, tuple[_Implementation, ...]] = {}

    def implementations(self, hook_name: str) -> tuple[_Implementation, ...]:
        """The enabled features' implementations of ``hook_name`` in feature order (cached)."""
        cached = self._cache.get(hook_name)
        if cached is None:
            caller = getattr(self.pm.hook, hook_name)
            impls = {self.pm.get_name(impl.plugin): impl for impl in caller.get_hookimpls()}
            order = sorted(impls, key=lambda n: (self.enabled[n].order, n))
            cached = tuple(_Implementation(n, impls[n].function, tuple(impls[n].argnames))
                           for n in order)
            self._cache[hook_name] = cached
        return cached

    def has(self, hook_name: str) -> bool:
        """Whether any enabled feature implements ``hook_name``."""
        return bool(self.implementations(hook_name))

    def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook_name`` on every enabled feature in feature order; the non-None answers
        as ``(feature name, answer)`` pairs."""
        answers = []
        for impl in self.implementations(hook_name):
            result = self._invoke(impl, hook_name, kwargs)
            if result is not None:
                answers.append((impl.feature, result))
        return answers

    def _invoke(self, impl: _Implementation, hook_name: str, kwargs: dict[str, Any]) -> Any:
        try:
            return impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except (BionicError, FeatureFailure):
            raise
        except Exception as exc:
            raise FeatureFailure(impl.feature, self.enabled[impl.feature].source,
                                 hook_name, exc) from exc

    def call_feature(self, feature: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one enabled feature's implementation of ``hook_name`` (e.g. to hand a feature
        back the state it saved); its answer, or None when it does not implement the hook."""
        for impl in self.implementations(hook_name):
            if impl.feature == feature:
                return self._invoke(impl, hook_name, kwargs)
        return None

    def single(self, hook_name: str, **kwargs: Any) -> Any | None:
        """Call a single-answer hook: the one answer, or None when no feature answers; two
        answers are a configuration error naming both features."""
        answers = self.call(hook_name, **kwargs)
        if len(answers) > 1:
            names = " and ".join(n for n, _ in answers)
            raise BionicError(f"features: {names} both provide '{hook_name}'; "
                              "enable only one of them")
        return answers[0][1] if answers else None


class FeatureFailure(Exception):
    """A feature's hook raised while a run was training: a run failure (exit 1), not a user
    error. ``str()`` is one line naming the feature, its source and the hook; the original
    exception is the ``__cause__`` (its traceback is kept with the failed run)."""

    exit_code = 1

    def __init__(self, feature: str, source: str, hook: str, error: BaseException) -> None:
        self.feature, self.source, self.hook, self.error = feature, source, hook, error
        super().__init__(f"feature '{feature}' ({source}) failed in {hook}: {error_line(error)}")
