"""Typed run configuration: ``experiments.toml`` → :class:`RunConfig`, plus CLI overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import sysconfig
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature

EXPERIMENTS_ENV = "BIONIC_EXPERIMENTS"


def _stable_key(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs. Fields marked (spec) make up the run's identity."""

    experiment: str = "default"  # name in experiments.toml (not part of the run key)
    description: str = ""  # one line shown in listings (not part of the run key)
    dataset: str = "demo"  # (spec) built-in name, or a FER-2013 CSV / folder / npz / npz dir
    test_data: str | None = None  # (spec) a separate file/folder used as the test split
    val_fraction: float = 0.1  # (spec) holdout of train when the data has no validation split
    features: tuple[str, ...] = ()  # (spec) enabled features
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # (spec) feature → params
    # (spec) enabled feature → what its code is (Feature.provenance), filled in with every
    # enabled feature's parameter defaults by resolve_features: a run's key covers both
    feature_provenance: dict[str, str] = field(default_factory=dict)
    # (spec) the column wiring the structural features share: cells, edges, table, seed,
    # min_synapses, grouping (see source_arguments below); {} = shipped census + billeh2020
    connectome: dict[str, Any] = field(default_factory=dict)
    hidden_sizes: tuple[int, ...] = (290, 290, 290, 290)  # (spec) used when no layer plan
    activation: str = "relu"  # (spec) relu | gelu | tanh
    lr: float = 1e-3  # (spec) learning rate of the default Adam optimizer
    batch_size: int = 32  # (spec) the paper's batch size
    epochs: int = 30  # (spec) upper bound; early stopping usually ends sooner
    patience: int = 10  # (spec) epochs without improvement before stopping; 0 = never stop
    monitor: str = "val_macro_f1"  # (spec) val_macro_f1 | val_accuracy: early stopping + best
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of an ablation configuration
    seed: int = 0  # (spec) the seed of this run
    device: str = "auto"  # auto | cpu | cuda (recorded, not part of the run key)
    deterministic: bool = False  # deterministic kernels (slower); recorded, not in the key
    eval_batch_size: int = 1024  # evaluation chunk; does not change results
    # (spec) intra-op CPU threads of one run. A run's numbers depend on it (torch's CPU
    # reductions split work by thread count) and on nothing trained beside it: the multi-model
    # engine trains cores // cpu_threads runs at once, each with exactly this many threads.
    cpu_threads: int = 1
    # How to run, not what (recorded, not in the key): bf16 autocast on CUDA ("fp32" | "bf16"),
    # torch.compile, and `bionic ablate` training runs of one shape together (multi-model engine,
    # at most `max_models` at a time; 0 = as many as share a shape).
    precision: str = "fp32"
    compile: bool = False
    multimodel: bool = True
    max_models: int = 0
    # Sections read by other commands (ablation design, tuning search space), kept verbatim.
    ablation: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ identity
    def spec(self) -> dict[str, Any]:
        """The canonical form of this run (what determines its result)."""
        excluded = {"experiment", "description", "seeds", "device", "deterministic",
                    "eval_batch_size", "precision", "compile", "multimodel", "max_models",
                    "ablation", "tune"}
        out = {}
        for f in dataclasses.fields(self):
            if f.name in excluded:
                continue
            value = getattr(self, f.name)
            if f.name == "features":
                value = sorted(value)
            if f.name in ("params", "feature_provenance"):  # only enabled features matter
                value = {k: dict(sorted(v.items())) if isinstance(v, dict) else v
                         for k, v in sorted(value.items()) if k in self.features}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def spec_without_seed(self) -> dict[str, Any]:
        """:meth:`spec` less the seed: what the runs of one configuration share."""
        return {k: v for k, v in self.spec().items() if k != "seed"}

    def settings_key(self) -> str:
        """:meth:`key` without the features' provenance: the same settings, whatever version of
        the features' code (finds the runs a code change made stale)."""
        spec = self.spec()
        spec.pop("feature_provenance")
        return _stable_key(spec)

    def key(self) -> str:
        """A stable 16-hex-digit hash of :meth:`spec`: finds, resumes and deduplicates runs."""
        return _stable_key(self.spec())

    # ------------------------------------------------------------------ features
    def feature_params(self, name: str, feature: Feature) -> dict[str, Any]:
        resolved = feature.defaults()
        resolved.update(self.params.get(name, {}))
        return resolved

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def with_features(self, features: Iterable[str]) -> RunConfig:
        return dataclasses.replace(self, features=tuple(sorted(set(features))))

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


# Training precision: fp32, or bf16 autocast of the forward pass (CUDA only; the CPU stays fp32).
PRECISIONS = ("fp32", "bf16")


def check_precision(value: str, where: str) -> None:
    """Raise unless ``value`` is one of :data:`PRECISIONS`."""
    if value not in PRECISIONS:
        raise BionicError(f"{where}: precision: {value!r} is not one of {', '.join(PRECISIONS)}")


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = typing.get_type_hints(RunConfig)
_SECTION_KEYS = {"extends"}
# Fields bionic sets itself: a run's seed (from `seeds`), its name, its features' provenance.
_DERIVED = ("experiment", "seed", "feature_provenance")
# Table fields whose entries `--set FIELD.KEY=VALUE` may set one at a time.
TABLE_FIELDS = ("connectome",)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    """Coerce a TOML value to the field's annotated type, or raise naming ``where``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        return _check_type(value, next(a for a in args if a is not type(None)), where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise BionicError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise BionicError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise BionicError(f"{where}: expected {hint.__name__}, got "
                          f"{type(value).__name__} {value!r}")
    return value


def build_config(raw: Mapping[str, Any], where: str, *, experiment: str = "default") -> RunConfig:
    """Build a RunConfig from one TOML table (already merged with defaults)."""
    values: dict[str, Any] = {"experiment": experiment}
    for key, value in raw.items():
        if key in _SECTION_KEYS:
            continue
        if key not in FIELDS or key in _DERIVED:
            allowed = ", ".join(k for k in FIELDS if k not in _DERIVED)
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {allowed})")
        values[key] = _check_type(value, _HINTS[key], f"{where}.{key}")
    for feature, table in values.get("params", {}).items():
        if not isinstance(table, dict):
            raise BionicError(f"{where}.params.{feature}: expected a table of parameters")
    config = RunConfig(**values)
    if config.seeds:
        config = config.replace(seed=config.seeds[0])
    return config


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def default_experiments_path() -> Path:
    """``$BIONIC_EXPERIMENTS``, else ./experiments.toml, else the copy installed with bionic."""
    env = os.environ.get(EXPERIMENTS_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / "experiments.toml"
    if local.is_file():
        return local
    source_tree = Path(__file__).resolve().parents[1] / "experiments.toml"
    if source_tree.is_file():
        return source_tree
    installed = Path(sysconfig.get_path("data")) / "share" / "bionic" / "experiments.toml"
    if installed.is_file():
        return installed
    return Path(sys.prefix) / "share" / "bionic" / "experiments.toml"


@dataclass
class ExperimentFile:
    """The parsed ``experiments.toml``: defaults plus named experiments."""

    path: Path
    defaults: dict[str, Any]
    experiments: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ExperimentFile:
        path = Path(path) if path is not None else default_experiments_path()
        if not path.is_file():
            raise BionicError(f"{path}: experiments file not found")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BionicError(f"{path}: invalid TOML: {exc}") from exc
        for key in data:
            if key not in ("defaults", "experiments"):
                raise BionicError(f"{path}: unknown top-level key '{key}' "
                                  "(allowed: defaults, experiments)")
        file = cls(path, data.get("defaults", {}), data.get("experiments", {}))
        for name in file.experiments:  # validate every entry now, before any work starts
            file.config(name)
        return file

    def names(self) -> list[str]:
        return list(self.experiments)

    def _raw(self, name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name not in self.experiments:
            known = ", ".join(self.experiments) or "none"
            raise BionicError(f"{self.path}: unknown experiment '{name}' (known: {known})")
        if name in seen:
            raise BionicError(f"{self.path}: experiments.{name}: 'extends' forms a cycle")
        table = self.experiments[name]
        if not isinstance(table, dict):
            raise BionicError(f"{self.path}: experiments.{name}: expected a table")
        parent = table.get("extends")
        base = self._raw(parent, (*seen, name)) if parent else self.defaults
        return _merge(base, table)

    def config(self, name: str) -> RunConfig:
        config = build_config(self._raw(name), f"{self.path}: experiments.{name}",
                              experiment=name)
        connectome = dict(config.connectome)
        for key in ("cells", "edges", "table"):  # files, except a table may be a published name
            value = connectome.get(key)
            if isinstance(value, str) and (key != "table" or "/" in value or Path(value).suffix):
                connectome[key] = str((self.path.parent / value).resolve())
        return config.replace(dataset=self.resolve_path(config.dataset),
                              test_data=config.test_data and self.resolve_path(config.test_data),
                              connectome=connectome)

    def resolve_path(self, value: str) -> str:
        """A relative path in the file means relative to the file's folder; names stay names."""
        if ("/" in value or value.endswith((".csv", ".npz"))) and not Path(value).is_absolute():
            return str((self.path.parent / value).resolve())
        return value


def parse_value(text: str) -> Any:
    """A CLI value: TOML syntax when it parses (``1e-3``, ``[8, 16]``, ``true``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(
    config: RunConfig,
    *,
    sets: Iterable[str] = (),
    without: Iterable[str] = (),
    only: Iterable[str] | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    device: str | None = None,
    dataset: str | None = None,
) -> RunConfig:
    """Apply ``--set key=value``, ``--without``, ``--only``, ``--seed``, ``--epochs``, ``--device``,
    ``--data``; ``key`` is a config field or ``feature.parameter``."""
    raw = {}
    params = {k: dict(v) for k, v in config.params.items()}
    for item in sets:
        if "=" not in item:
            raise BionicError(f"--set {item}: expected key=value")
        key, text = (s.strip() for s in item.split("=", 1))
        value = parse_value(text)
        if "." in key and key.split(".", 1)[0] in TABLE_FIELDS:  # connectome.edges=...
            table, entry = key.split(".", 1)
            raw.setdefault(table, dict(getattr(config, table)))[entry] = value
        elif "." in key:
            feature, pname = key.split(".", 1)
            params.setdefault(feature, {})[pname] = value
        else:
            raw[key] = value
    changes = {}
    for key, value in raw.items():
        if key not in FIELDS or key in ("params", "features", *_DERIVED):
            raise BionicError(f"--set {key}: unknown key (use --only/--without for features, "
                              "FEATURE.PARAM=VALUE for parameters)")
        changes[key] = _check_type(value, _HINTS[key], f"--set {key}")
    changes["params"] = params
    features = set(config.features)
    if only is not None:
        features = set(only)
    features -= set(without)
    changes["features"] = tuple(sorted(features))
    if seed is not None:
        changes["seed"] = seed
        changes["seeds"] = (seed,)
    if epochs is not None:
        changes["epochs"] = epochs
    if device is not None:
        if device not in ("auto", "cpu", "cuda"):
            raise BionicError(f"--device {device}: expected auto, cpu or cuda")
        changes["device"] = device
    if dataset is not None:
        changes["dataset"] = dataset
    if "seeds" in changes and "seed" not in changes and changes["seeds"]:
        changes["seed"] = changes["seeds"][0]
    return config.replace(**changes)


def resolve_features(config: RunConfig, catalogue: Any, where: str) -> RunConfig:
    """Check features and their parameters against the catalogue and coerce parameter types;
    fill in every enabled feature's parameter defaults and provenance, so that the run key is
    canonical (an explicit default does not change it) and covers the features' code.
    Idempotent: resolving a resolved config changes nothing."""
    catalogue.require(config.features, f"{where}: features")
    catalogue.require(config.params, f"{where}: params")
    params: dict[str, dict[str, Any]] = {}
    for name, table in config.params.items():
        feature = catalogue[name]
        params[name] = {}
        for pname, value in table.items():
            spec = feature.param(pname)
            if spec is None:
                known = ", ".join(p.name for p in feature.params) or "none"
                raise BionicError(f"{where}: params.{name}: unknown parameter '{pname}' "
                                  f"(known: {known})")
            params[name][pname] = spec.coerce(value, f"{where}: params.{name}.{pname}")
    catalogue.validate(config.features, f"{where}: features")
    for name in config.features:
        params[name] = {**catalogue[name].defaults(), **params.get(name, {})}
    provenance = {name: catalogue[name].provenance for name in sorted(config.features)}
    check_precision(config.precision, where)
    if config.cpu_threads < 1:
        raise BionicError(f"{where}: cpu_threads: {config.cpu_threads} must be >= 1")
    if config.connectome:  # checked now, before any run starts
        source_arguments(config.connectome, f"{where}: connectome")
    return config.replace(params=params, feature_provenance=provenance)


# The config's `connectome` table: key -> (default, accepted types, meaning).
SOURCE_KEYS: dict[str, tuple[Any, tuple[type, ...], str]] = {
    "cells": (None, (str,), "cell table file; default the shipped MICrONS v1300 census"),
    "edges": (None, (str,), "edge table file; default: sample masks from `table`"),
    "table": ("billeh2020", (str,), "connection-probability table: billeh2020, potjans2014, file"),
    "seed": (0, (int,), "seed of sampled masks (fixed, so every run seed sees the same column)"),
    "min_synapses": (1, (int,), "synapses an edge needs to count as a connection"),
    "grouping": (None, (dict,), "hidden layer name -> list of excitatory cell types, in order"),
}

def source_arguments(raw: Mapping[str, Any], where: str = "connectome") -> dict[str, Any]:
    """Validate a ``connectome`` config table; return the keyword arguments of build_connectome."""
    out = {key: default for key, (default, _, _) in SOURCE_KEYS.items()}
    for key, value in raw.items():
        if key not in SOURCE_KEYS:
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {', '.join(SOURCE_KEYS)})")
        types = SOURCE_KEYS[key][1]
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise BionicError(f"{where}.{key}: expected {types[0].__name__}, got "
                              f"{type(value).__name__} {value!r}")
        out[key] = value
    for key in ("cells", "edges"):
        if out[key] is not None and not Path(out[key]).is_file():
            raise BionicError(f"{where}.{key}: {out[key]}: file not found")
    if out["min_synapses"] < 1:
        raise BionicError(f"{where}.min_synapses: {out['min_synapses']} must be >= 1")
    grouping = out["grouping"]
    if grouping is not None and not all(
        isinstance(types, list) and types and all(isinstance(t, str) for t in types)
        for types in grouping.values()
    ):
        raise BionicError(f"{where}.grouping: expected layer name = [cell types, ...] entries")
    return out
