"""Planning an ablation sweep: an experiment's design → run specs (configuration × seed).

Every run has a stable key (its resolved config) and the sweep a stable id (experiment, design
and the planned run keys), so that a rerun of the same sweep finds its runs again (see
:mod:`bionic_core.studies.sweep_run`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bionic_core.config import RunConfig, apply_overrides, resolve_features
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.designs import KINDS, Configuration, Design, check_nulls, plan_design
from bionic_core.studies.fractional import RESOLUTIONS
from bionic_core.studies.sweep_records import TAG_SWEEP, quote, refuse_other_data
from bionic_core.studies.tracking import TAG_KEY, TAG_KIND, Tracker

ABLATION_KEYS = ("design", "reference", "baseline", "factors", "sample", "sample_seed", "sets",
                 "resolution", "nulls")


def _stable_hash(obj: Any, digits: int) -> str:
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


# ============================================================================ design options


@dataclass(frozen=True)
class DesignOptions:
    """How to choose the configurations: an ``[experiments.X.ablation]`` table and CLI options.

    ``reference`` defaults to the experiment's features; ``factors`` of a factorial (or
    fractional) default to the reference's features; ``baseline`` of add-one-in defaults to no
    feature at all; ``resolution`` is the fractional design's (default 5).
    """

    kind: str = "leave-one-out"
    reference: tuple[str, ...] | None = None
    baseline: tuple[str, ...] | None = None
    factors: tuple[str, ...] = ()
    sample: int | None = None
    sample_seed: int = 0
    sets: tuple[tuple[str, ...], ...] = ()
    resolution: int | None = None
    nulls: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"design": self.kind, "reference": self.reference, "baseline": self.baseline,
                "factors": list(self.factors), "sample": self.sample,
                "sample_seed": self.sample_seed, "sets": [list(s) for s in self.sets],
                "resolution": self.resolution, "nulls": [list(n) for n in self.nulls]}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> DesignOptions:
        """The options :meth:`as_dict` wrote (e.g. read back from JSON)."""

        def names(value: Any) -> tuple[str, ...] | None:
            return None if value is None else tuple(value)

        return cls(record["design"], names(record["reference"]), names(record["baseline"]),
                   tuple(record["factors"]), record["sample"], record["sample_seed"],
                   tuple(tuple(s) for s in record["sets"]), record.get("resolution"),
                   tuple((w, int(n)) for w, n in record.get("nulls") or ()))


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise BionicError(f"{where}: expected a list of feature names, got {value!r}")
    return tuple(value)


def _table_values(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The DesignOptions fields an ``ablation`` table sets (checked, errors name ``where``)."""
    for key in table:
        if key not in ABLATION_KEYS:
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {', '.join(ABLATION_KEYS)})")
    values: dict[str, Any] = {}
    if "design" in table:
        values["kind"] = table["design"]
    for key in ("reference", "baseline", "factors"):
        if key in table:
            values[key] = _names(table[key], f"{where}.{key}")
    for key in ("sample", "sample_seed", "resolution"):
        if key in table:
            values[key] = table[key]
    if "sets" in table:
        sets = table["sets"]
        if not isinstance(sets, list):
            raise BionicError(f"{where}.sets: expected a list of feature lists, got {sets!r}")
        values["sets"] = tuple(_names(s, f"{where}.sets[{i}]") for i, s in enumerate(sets))
    if "nulls" in table:
        values["nulls"] = check_nulls(table["nulls"], f"{where}.nulls")
    return values


def _check_values(values: Mapping[str, Any], where: str, cli: Mapping[str, Any]) -> None:
    """A known design kind and positive sample sizes; errors name the CLI option or the key."""
    kind = values.get("kind", "leave-one-out")
    if kind not in KINDS:
        where_kind = "--design" if cli.get("kind") is not None else f"{where}.design"
        raise BionicError(f"{where_kind}: unknown design {kind!r} (known: {', '.join(KINDS)})")
    for key in ("sample", "sample_seed"):
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < (1 if key == "sample" else 0)):
            where_key = f"--{key}" if cli.get(key) is not None else f"{where}.{key}"
            raise BionicError(f"{where_key}: expected a positive integer, got {value!r}")
    resolution = values.get("resolution")
    if resolution is not None and (resolution not in RESOLUTIONS
                                   or isinstance(resolution, bool)):
        where_key = "--resolution" if cli.get("resolution") is not None else f"{where}.resolution"
        raise BionicError(f"{where_key}: expected one of {', '.join(map(str, RESOLUTIONS))}, "
                          f"got {resolution!r}")


def design_options(table: Mapping[str, Any], where: str, **cli: Any) -> DesignOptions:
    """Merge an ``ablation`` table (validated, errors name ``where``) with CLI values; a CLI
    value of None means "not given"."""
    values = _table_values(table, where)
    if cli.get("nulls") is not None:
        cli = {**cli, "nulls": check_nulls(cli["nulls"], "--nulls")}
    values.update({key: value for key, value in cli.items() if value is not None})
    _check_values(values, where, cli)
    return DesignOptions(**values)


# ============================================================================ the plan


def configuration_key(config: RunConfig) -> str:
    """A stable hash of a run's spec without its seed: identifies one configuration."""
    return _stable_hash(config.spec_without_seed(), 16)


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a configuration trained with one seed."""

    configuration: str
    config: RunConfig

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass(frozen=True)
class PlannedConfiguration:
    configuration: Configuration
    config: RunConfig  # with the sweep's first seed
    key: str  # configuration_key(config)
    group: str  # group(s) of the features it changes: structural | functional | mixed | none
    runs: tuple[RunSpec, ...]

    @property
    def name(self) -> str:
        return self.configuration.name


@dataclass(frozen=True)
class SweepPlan:
    """Every run of an ablation sweep, in order, with the sweep's stable id."""

    experiment: str
    design: Design
    options: DesignOptions
    seeds: tuple[int, ...]
    base: RunConfig
    configurations: tuple[PlannedConfiguration, ...]

    @property
    def runs(self) -> list[RunSpec]:
        return [r for c in self.configurations for r in c.runs]

    @property
    def anchor(self) -> str:
        """The configuration the others are compared with (the first one when the design has
        no reference, e.g. the all-on corner of a factorial)."""
        return self.design.anchor or self.configurations[0].name

    @property
    def sweep_id(self) -> str:
        """12 hex digits identifying experiment + design + the planned run keys."""
        return _stable_hash({"experiment": self.experiment, "design": self.design.kind,
                             "runs": [[c.name, [r.key for r in c.runs]]
                                      for c in self.configurations]}, 12)

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.design.kind}-{self.sweep_id[:8]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id, "name": self.name, "experiment": self.experiment,
            "design": self.design.kind, "anchor": self.anchor, "options": self.options.as_dict(),
            "seeds": list(self.seeds), "dataset": self.base.dataset, "epochs": self.base.epochs,
            "n_configurations": len(self.configurations), "n_runs": len(self.runs),
            "configurations": [
                {"name": c.name, "features": sorted(c.configuration.features),
                 "removed": list(c.configuration.removed), "added": list(c.configuration.added),
                 "settings": list(c.configuration.settings),
                 "group": c.group, "config_key": c.key,
                 "runs": [{"seed": r.seed, "key": r.key} for r in c.runs]}
                for c in self.configurations],
            "dropped": [{"name": d.name, "features": sorted(d.features), "reason": d.reason}
                        for d in self.design.dropped],
            "fraction": self.design.fraction_record(),
        }


def _change_group(configuration: Configuration, catalogue: Catalogue) -> str:
    changed = {*configuration.removed, *configuration.added,
               *(item.split(".", 1)[0] for item in configuration.settings)}
    groups = {catalogue[f].group for f in changed if f in catalogue}
    return groups.pop() if len(groups) == 1 else ("mixed" if groups else "none")


def _planned(configuration: Configuration, base: RunConfig, catalogue: Catalogue,
             seeds: tuple[int, ...]) -> PlannedConfiguration:
    config = base.with_features(configuration.features).replace(seeds=seeds, seed=seeds[0])
    if configuration.settings:  # a null ladder's control: its wiring and draw
        config = apply_overrides(config, sets=configuration.settings)
    # Resolved per configuration: its features' defaults and provenance are part of its key.
    config = resolve_features(config, catalogue, f"configuration {configuration.name}")
    runs = tuple(RunSpec(configuration.name, config.replace(seed=s)) for s in seeds)
    return PlannedConfiguration(configuration, config, configuration_key(config),
                                _change_group(configuration, catalogue), runs)


def plan_sweep(base: RunConfig, catalogue: Catalogue, options: DesignOptions,
               seeds: Sequence[int] | None = None) -> SweepPlan:
    """The runs of ``options``'s design on top of ``base`` (an experiment's resolved config)."""
    seeds = tuple(base.seeds if seeds is None else seeds)
    if not seeds:
        raise BionicError(f"experiment {base.experiment}: the plan is empty: no seeds")
    if len(set(seeds)) != len(seeds):
        raise BionicError(f"experiment {base.experiment}: seeds repeat: {list(seeds)}")
    reference = options.reference if options.reference is not None else base.features
    factors = options.factors
    if options.kind in ("factorial", "fractional") and not factors:
        factors = tuple(reference)
    design = plan_design(options.kind, catalogue=catalogue.features(), reference=reference,
                         baseline=options.baseline, factors=factors, sample=options.sample,
                         explicit=options.sets, seed=options.sample_seed,
                         resolution=options.resolution, nulls=options.nulls)
    planned = [_planned(c, base, catalogue, seeds) for c in design.configurations]
    options = DesignOptions(options.kind, tuple(reference), options.baseline, tuple(factors),
                            options.sample, options.sample_seed, options.sets,
                            options.resolution, options.nulls)
    return SweepPlan(base.experiment, design, options, seeds, base, tuple(planned))


def preflight(plan: SweepPlan, tracker: Tracker) -> str:
    """Fail now, before anything is written, on what the user can get wrong: the device, the
    dataset, the tracking store. Returns the device the runs will use."""
    from bionic_core.training.loop import load_run_data
    from bionic_core.training.seeding import resolve_device

    device = str(resolve_device(plan.base.device))
    fingerprint = load_run_data(plan.base).fingerprint()
    experiment_id = tracker.experiment_id(plan.experiment)
    _refuse_runs_on_other_data(plan, tracker, experiment_id, fingerprint)
    return device


def _refuse_runs_on_other_data(plan: SweepPlan, tracker: Tracker, experiment_id: str,
                               fingerprint: str) -> None:
    """The stored sweep of this plan, and the finished runs it would reuse, must have been
    trained on the data as it is now."""
    stored = tracker.search_runs([experiment_id], f"tags.`{TAG_SWEEP}` = {quote(plan.sweep_id)}"
                                                  f" and tags.`{TAG_KIND}` = 'sweep'")
    for run in stored:
        refuse_other_data(run, f"sweep {plan.name}", plan.base.dataset, fingerprint)
    keys = {spec.key: spec for spec in plan.runs}
    for run in tracker.search_runs([experiment_id], f"tags.`{TAG_KIND}` = 'run' and "
                                                    "attributes.status = 'FINISHED'"):
        spec = keys.get(run.data.tags.get(TAG_KEY, ""))
        if spec is not None:
            refuse_other_data(run, f"{spec.configuration} seed {spec.seed} (run key "
                              f"{spec.key})", plan.base.dataset, fingerprint)
