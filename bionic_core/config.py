"""Typed run configuration: ``experiments.toml`` → :class:`RunConfig`, plus CLI overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature


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
    # (spec) validation = a seeded stratified val_fraction of the training images (copies of an
    # image kept on one side) unless the data brings its own val part; never PublicTest
    val_fraction: float = 0.1
    val_seed: int = 0  # (spec) seed of that holdout: every run of a study sees the same split
    dedupe: bool = False  # (spec) drop training images that are pixel copies of a test image
    features: tuple[str, ...] = ()  # (spec) enabled features
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # (spec) feature → params
    # (spec) enabled feature → what its code is (Feature.provenance), filled in with every
    # enabled feature's parameter defaults by resolve_features: a run's key covers both
    feature_provenance: dict[str, str] = field(default_factory=dict)
    # (spec) the column wiring the structural features share: cells, edges, table, seed,
    # min_synapses, grouping, ... (see source_arguments below); {} = shipped census + microns
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


# What the numeric settings must be: field -> (test, wording). Checked in the TOML file, for
# `--set` and for configs built in code (resolve_features), so nonsense never starts a run.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "lr": (lambda v: math.isfinite(v) and v > 0, "a positive number"),
    "val_fraction": (lambda v: 0 < v < 1, "a fraction between 0 and 1"),
    "val_seed": (lambda v: v >= 0, "0 or more"),
    "patience": (lambda v: v >= 0, "0 or more (0 = never stop early)"),
    "seed": (lambda v: v >= 0, "0 or more"),
    "seeds": (lambda v: len(v) >= 1 and all(s >= 0 for s in v),
              "at least one seed, each 0 or more"),
    "hidden_sizes": (lambda v: all(s >= 1 for s in v), "layer sizes of at least 1"),
    "cpu_threads": (lambda v: v >= 1, "at least 1"),
    "max_models": (lambda v: v >= 0, "0 or more (0 = no limit)"),
}


def check_range(key: str, value: Any, where: str) -> None:
    """Raise unless ``value`` is allowed for the config field ``key`` (see :data:`RANGES`)."""
    rule = RANGES.get(key)
    if rule is not None and value is not None and not rule[0](value):
        shown = list(value) if isinstance(value, tuple) else value
        raise BionicError(f"{where}: {shown!r} is out of range: expected {rule[1]}")


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
        check_range(key, values[key], f"{where}.{key}")
    for feature, table in values.get("params", {}).items():
        if not isinstance(table, dict):
            raise BionicError(f"{where}.params.{feature}: expected a table of parameters")
    config = RunConfig(**values)
    if config.seeds:
        config = config.replace(seed=config.seeds[0])
    return config


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
    with_: Iterable[str] = (),
) -> RunConfig:
    """Apply ``--set key=value``, ``--only``, ``--with``, ``--without`` (in that order),
    ``--seed``, ``--epochs``, ``--device``, ``--data``; ``key`` is a config field or
    ``feature.parameter``."""
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
        if key == "features":
            raise BionicError("--set features: features are switched with --with F, "
                              "--without F or --only F,G")
        if key not in FIELDS or key in ("params", *_DERIVED):
            raise BionicError(f"--set {key}: unknown key (use --with/--without/--only for "
                              "features, FEATURE.PARAM=VALUE for parameters)")
        changes[key] = _check_type(value, _HINTS[key], f"--set {key}")
        check_range(key, changes[key], f"--set {key}")
    changes["params"] = params
    both = sorted(set(with_) & set(without))
    if both:
        raise BionicError(f"--with {both[0]} and --without {both[0]}: choose one")
    features = set(config.features) if only is None else set(only)
    changes["features"] = tuple(sorted((features | set(with_)) - set(without)))
    if seed is not None:
        check_range("seed", seed, "--seed")
        changes["seed"] = seed
        changes["seeds"] = (seed,)
    if epochs is not None:
        check_range("epochs", epochs, "--epochs")
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
    for key in RANGES:
        check_range(key, getattr(config, key), f"{where}: {key}")
    if config.connectome:  # checked now, before any run starts
        source_arguments(config.connectome, f"{where}: connectome")
    return config.replace(params=params, feature_provenance=provenance)


# The config's `connectome` table: key -> (default, accepted types, meaning).
SOURCE_KEYS: dict[str, tuple[Any, tuple[type, ...], str]] = {
    "cells": (None, (str,), "cell table file; default the shipped MICrONS v1300 census"),
    "edges": (None, (str,), "edge table file; default: sample masks from `table`"),
    "table": ("microns", (str,), "connection table: microns (measured cell-type rates), "
              "billeh2020, potjans2014, v1dd, or a file"),
    "materialization": (1300, (int,), "MICrONS version of the measured type rates: 1300, 1412 "
                        "or 1718 (the census is v1300)"),
    "conversion": ("poisson", (str,), "synapses per pair -> probability: poisson "
                   "(1 - exp(-lambda)) or per_connection (lambda / 1.86)"),
    "distance": (True, (bool,), "redistribute sampled connections by lateral soma distance"),
    "seed": (0, (int,), "seed of sampled masks (fixed, so every run seed sees the same column)"),
    "null_seed": (0, (int,), "seed of the control masks (adjacency_mask.wiring other than "
                  "column): vary it to draw several null samples"),
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
        if value is not None and (not isinstance(value, types)
                                  or (isinstance(value, bool) and bool not in types)):
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
