"""Ablation sweeps: an experiment's design → run specs (configuration × seed), run with resume.

MLflow holds the hierarchy sweep (parent) → configuration → seed runs. A rerun of the same sweep
finds its sweep and configuration runs again by tag, skips every run key that already finished
(anywhere in the MLflow experiment: same key, same result), continues an interrupted run from its
epoch checkpoint inside the same MLflow run, and never records a key as finished twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.designs import KINDS, Configuration, Design, plan_design
from bionic_core.studies.stats import summarize
from bionic_core.studies.tracked_run import CHECKPOINT_DIR, checkpoint_path, run_tracked
from bionic_core.studies.tracking import (
    TAG_KEY,
    TAG_KIND,
    Tracker,
    environment_tags,
    flatten_params,
)

TAG_SWEEP = "bionic.sweep_id"
TAG_DESIGN = "bionic.design"
TAG_CONFIGURATION = "bionic.configuration"
TAG_CONFIG_KEY = "bionic.config_key"
TAG_STATUS = "bionic.status"  # on seed runs: finished | failed (diverged) | error (exception)
TAG_REASON = "bionic.reason"
PARENT = "mlflow.parentRunId"
ABLATION_KEYS = ("design", "reference", "baseline", "factors", "sample", "sample_seed", "sets")


# ============================================================================ planning


@dataclass(frozen=True)
class DesignOptions:
    """How to choose the configurations: an ``[experiments.X.ablation]`` table and CLI options.

    ``reference`` defaults to the experiment's features; ``factors`` of a factorial default to
    the reference's features; ``baseline`` of add-one-in defaults to no feature at all.
    """

    kind: str = "leave-one-out"
    reference: tuple[str, ...] | None = None
    baseline: tuple[str, ...] | None = None
    factors: tuple[str, ...] = ()
    sample: int | None = None
    sample_seed: int = 0
    sets: tuple[tuple[str, ...], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"design": self.kind, "reference": self.reference, "baseline": self.baseline,
                "factors": list(self.factors), "sample": self.sample,
                "sample_seed": self.sample_seed, "sets": [list(s) for s in self.sets]}


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise BionicError(f"{where}: expected a list of feature names, got {value!r}")
    return tuple(value)


def design_options(table: Mapping[str, Any], where: str, **cli: Any) -> DesignOptions:
    """Merge an ``ablation`` table (validated, errors name ``where``) with CLI values; a CLI
    value of None means "not given"."""
    for key in table:
        if key not in ABLATION_KEYS:
            raise BionicError(f"{where}: unknown key '{key}' (allowed: {', '.join(ABLATION_KEYS)})")
    values: dict[str, Any] = {}
    if "design" in table:
        values["kind"] = table["design"]
    for key in ("reference", "baseline", "factors"):
        if key in table:
            values[key] = _names(table[key], f"{where}.{key}")
    if "sample" in table:
        values["sample"] = table["sample"]
    if "sample_seed" in table:
        values["sample_seed"] = table["sample_seed"]
    if "sets" in table:
        sets = table["sets"]
        if not isinstance(sets, list):
            raise BionicError(f"{where}.sets: expected a list of feature lists, got {sets!r}")
        values["sets"] = tuple(_names(s, f"{where}.sets[{i}]") for i, s in enumerate(sets))
    for key, value in cli.items():
        if value is not None:
            values[key] = value
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
    return DesignOptions(**values)


def configuration_key(config: RunConfig) -> str:
    """A stable hash of a run's spec without its seed: identifies one configuration."""
    spec = {k: v for k, v in config.spec().items() if k != "seed"}
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        text = json.dumps({"experiment": self.experiment, "design": self.design.kind,
                           "runs": [[c.name, [r.key for r in c.runs]]
                                    for c in self.configurations]},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

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
                 "group": c.group, "config_key": c.key,
                 "runs": [{"seed": r.seed, "key": r.key} for r in c.runs]}
                for c in self.configurations],
            "dropped": [{"name": d.name, "features": sorted(d.features), "reason": d.reason}
                        for d in self.design.dropped],
        }


def _change_group(configuration: Configuration, catalogue: Catalogue) -> str:
    changed = {*configuration.removed, *configuration.added}
    groups = {catalogue[f].group for f in changed if f in catalogue}
    return groups.pop() if len(groups) == 1 else ("mixed" if groups else "none")


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
    if options.kind == "factorial" and not factors:
        factors = tuple(reference)
    design = plan_design(options.kind, catalogue=catalogue.features(), reference=reference,
                         baseline=options.baseline, factors=factors, sample=options.sample,
                         explicit=options.sets, seed=options.sample_seed)
    planned = []
    for configuration in design.configurations:
        config = base.with_features(configuration.features).replace(seeds=seeds, seed=seeds[0])
        catalogue.validate(config.features, f"configuration {configuration.name}")
        runs = tuple(RunSpec(configuration.name, config.replace(seed=s)) for s in seeds)
        planned.append(PlannedConfiguration(configuration, config, configuration_key(config),
                                            _change_group(configuration, catalogue), runs))
    options = DesignOptions(options.kind, tuple(reference), options.baseline, tuple(factors),
                            options.sample, options.sample_seed, options.sets)
    return SweepPlan(base.experiment, design, options, seeds, base, tuple(planned))


# ============================================================================ statistics


def aggregate_metrics(per_seed: Sequence[Mapping[str, float]],
                      confidence: float = 0.95) -> dict[str, float]:
    """``<metric>_mean``, ``_std``, ``_n``, ``_ci_low``, ``_ci_high`` of every metric over the
    seeds' runs (std and CI only with two or more seeds; non-finite values are left out)."""
    names = sorted({name for metrics in per_seed for name in metrics})
    out: dict[str, float] = {}
    for name in names:
        values = [float(m[name]) for m in per_seed
                  if name in m and math.isfinite(float(m[name]))]
        if not values:
            continue
        s = summarize(values, confidence)
        out[f"{name}_mean"] = s.mean
        out[f"{name}_n"] = float(s.n)
        if s.n >= 2:
            out[f"{name}_std"] = s.std
            out[f"{name}_ci_low"] = s.ci_low
            out[f"{name}_ci_high"] = s.ci_high
    return out


# ============================================================================ running


@dataclass
class RunOutcome:
    spec: RunSpec
    status: str  # finished | skipped | failed | error | previously-failed
    run_id: str = ""
    reason: str = ""
    seconds: float = 0.0
    resumed_from_epoch: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "skipped")


@dataclass
class SweepResult:
    plan: SweepPlan
    sweep_run_id: str
    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]


class SweepObserver:
    """Progress callbacks of :func:`run_sweep` (all no-ops; the CLI draws Rich progress)."""

    def sweep_started(self, plan: SweepPlan, sweep_run_id: str, resumed: bool) -> None: ...

    def run_started(self, spec: RunSpec, index: int, resumed_from_epoch: int | None) -> None: ...

    def epoch_done(self, spec: RunSpec, epoch: int, row: dict[str, float]) -> None: ...

    def run_done(self, outcome: RunOutcome, index: int) -> None: ...


def _is_tracking_error(exc: BaseException) -> bool:
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    return isinstance(exc, (MlflowException, RequestException))


def _search(tracker: Tracker, experiment_id: str, filter_string: str,
            order_by: list[str] | None = None) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = tracker.client.search_runs([experiment_id], filter_string=filter_string,
                                          max_results=1000, order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def _latest(runs: Iterable[Any]) -> Any | None:
    return max(runs, key=lambda r: r.info.start_time or 0, default=None)


def _kill_stale(tracker: Tracker, runs: Iterable[Any], why: str) -> None:
    for run in runs:
        tracker.set_tags(run.info.run_id, {TAG_REASON: why[:500]})
        tracker.end(run.info.run_id, "KILLED")


class _Sweep:
    """One execution of a plan: holds the tracker, the MLflow ids and the outcomes."""

    def __init__(self, plan: SweepPlan, catalogue: Catalogue, tracker: Tracker,
                 observer: SweepObserver, retry_failed: bool, checkpoint_dir: Path) -> None:
        self.plan, self.catalogue, self.tracker = plan, catalogue, tracker
        self.observer, self.retry_failed = observer, retry_failed
        self.checkpoint_dir = checkpoint_dir
        self.experiment_id = ""
        self.device = "cpu"

    # ------------------------------------------------------------------ parent runs
    def _common_tags(self) -> dict[str, str]:
        return {TAG_SWEEP: self.plan.sweep_id, TAG_DESIGN: self.plan.design.kind,
                **environment_tags(self.device)}

    def open_sweep_run(self) -> tuple[str, bool]:
        plan = self.plan
        found = _latest(_search(self.tracker, self.experiment_id,
                                f"tags.`{TAG_SWEEP}` = {_quote(plan.sweep_id)} and "
                                f"tags.`{TAG_KIND}` = 'sweep'"))
        if found is not None:
            self.tracker.client.update_run(found.info.run_id, status="RUNNING")
            return found.info.run_id, True
        options = plan.options
        tags = {**self._common_tags(), TAG_KIND: "sweep", "bionic.sweep_name": plan.name,
                "bionic.anchor": plan.anchor, "bionic.factors": ",".join(options.factors),
                "bionic.seeds": ",".join(map(str, plan.seeds)),
                "bionic.n_runs": str(len(plan.runs)),
                "bionic.dataset": plan.base.dataset,
                "bionic.dropped": json.dumps([[d.name, d.reason]
                                              for d in plan.design.dropped])[:5000]}
        params = {"design": plan.design.kind, "seeds": json.dumps(list(plan.seeds)),
                  "n_configurations": str(len(plan.configurations)),
                  "n_runs": str(len(plan.runs)),
                  "reference": ",".join(options.reference or ()),
                  "baseline": "" if options.baseline is None else ",".join(options.baseline),
                  "factors": ",".join(options.factors),
                  "sample": str(options.sample), "sample_seed": str(options.sample_seed)}
        spec = {k: v for k, v in plan.base.spec().items() if k not in ("seed", "features",
                                                                      "params")}
        params.update({f"base.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                       for k, v in spec.items()})
        run_id = self.tracker.start(plan.experiment, f"sweep {plan.name}", tags=tags,
                                    params=params)
        self.tracker.log_json(run_id, "plan.json", plan.as_dict())
        return run_id, False

    def open_configuration_run(self, sweep_run_id: str, index: int,
                               planned: PlannedConfiguration) -> str:
        found = _latest(_search(self.tracker, self.experiment_id,
                                f"tags.`{PARENT}` = {_quote(sweep_run_id)} and "
                                f"tags.`{TAG_CONFIG_KEY}` = {_quote(planned.key)}"))
        if found is not None:
            self.tracker.client.update_run(found.info.run_id, status="RUNNING")
            return found.info.run_id
        c = planned.configuration
        tags = {**self._common_tags(), TAG_KIND: "configuration", TAG_CONFIGURATION: c.name,
                TAG_CONFIG_KEY: planned.key, "bionic.order": str(index),
                "bionic.features": ",".join(sorted(c.features)) or "(none)",
                "bionic.removed": ",".join(c.removed), "bionic.added": ",".join(c.added),
                "bionic.group": planned.group,
                "bionic.run_keys": ",".join(f"{r.seed}:{r.key}" for r in planned.runs)}
        spec = planned.config.spec()
        spec.pop("seed")
        # Every resolved hyper-parameter: feature parameters with their defaults filled in.
        spec["params"] = {f: planned.config.feature_params(f, self.catalogue[f])
                          for f in sorted(planned.config.features)}
        params = flatten_params(spec, sorted(self.catalogue.entries))
        params["seeds"] = json.dumps(list(self.plan.seeds))
        return self.tracker.start(self.plan.experiment, c.name, tags=tags, params=params,
                                  parent_id=sweep_run_id)

    # ------------------------------------------------------------------ seed runs
    def runs_with_key(self, key: str) -> list[Any]:
        return _search(self.tracker, self.experiment_id, f"tags.`{TAG_KEY}` = {_quote(key)}")

    def run_one(self, spec: RunSpec, index: int, configuration_run_id: str) -> RunOutcome:
        decided = self.decide(spec)
        if isinstance(decided, RunOutcome):
            return decided
        return self.execute(spec, index, configuration_run_id, *decided)

    def decide(self, spec: RunSpec) -> RunOutcome | tuple[str | None, int | None]:
        """The outcome of a run that needs no training (finished, previously failed), else the
        interrupted MLflow run to continue (or None) and the epoch it resumes after."""
        existing = self.runs_with_key(spec.key)
        checkpoint = checkpoint_path(spec.config, self.checkpoint_dir)
        finished = [r for r in existing if r.info.status == "FINISHED"]
        if finished:
            checkpoint.unlink(missing_ok=True)  # left over when killed right after finishing
            return RunOutcome(spec, "skipped", _latest(finished).info.run_id,
                              "already finished")
        diverged = [r for r in existing if r.info.status == "FAILED"
                    and r.data.tags.get(TAG_STATUS) == "failed"]
        if diverged and not self.retry_failed:
            run = _latest(diverged)
            return RunOutcome(spec, "previously-failed", run.info.run_id,
                              run.data.tags.get(TAG_REASON, "failed"))
        # Interrupted runs of this key (not tuning trials, which have their own life cycle).
        stale = [r for r in existing if r.info.status in ("RUNNING", "KILLED", "SCHEDULED")
                 and r.data.tags.get(TAG_KIND) == "run"]
        adopt = _latest(stale) if checkpoint.is_file() else None
        _kill_stale(self.tracker, [r for r in stale if r is not adopt and
                                   r.info.status != "KILLED"],
                    "interrupted; superseded by a later attempt of the same run key")
        resumed_from = None
        if adopt is not None:
            import torch

            resumed_from = int(torch.load(checkpoint, map_location="cpu",
                                          weights_only=True).get("epoch", 0))
        return (adopt.info.run_id if adopt is not None else None), resumed_from

    def _extra_tags(self, spec: RunSpec) -> dict[str, str]:
        return {TAG_SWEEP: self.plan.sweep_id, TAG_DESIGN: self.plan.design.kind,
                TAG_CONFIGURATION: spec.configuration}

    def execute(self, spec: RunSpec, index: int, configuration_run_id: str,
                adopt_id: str | None, resumed_from: int | None) -> RunOutcome:
        self.observer.run_started(spec, index, resumed_from)
        began = time.perf_counter()
        try:
            result, run_id = run_tracked(
                spec.config, self.catalogue, self.tracker,
                run_name=f"{spec.configuration} s{spec.seed}", parent_id=configuration_run_id,
                extra_tags=self._extra_tags(spec), checkpoint_dir=self.checkpoint_dir,
                on_epoch=lambda epoch, row: self.observer.epoch_done(spec, epoch, row),
                run_id=adopt_id)
        except BionicError:
            raise
        except Exception as exc:
            if _is_tracking_error(exc):
                raise
            found = [r for r in self.runs_with_key(spec.key) if r.info.status == "FAILED"]
            return RunOutcome(spec, "error", _latest(found).info.run_id if found else "",
                              f"{type(exc).__name__}: {exc}", time.perf_counter() - began)
        status = "finished" if result.status == "finished" else "failed"
        return RunOutcome(spec, status, run_id, result.reason, time.perf_counter() - began,
                          result.resumed_from_epoch)

    def run_together(self, pending: list[tuple[RunSpec, int, str, str | None, int | None]],
                     report: Callable[[RunOutcome], None]) -> None:
        """Train runs together with the multi-model engine, each recorded as its own MLflow
        run; ``pending`` holds ``(spec, index, configuration run id, run id to continue,
        resumed epoch)``. If the group fails, its unfinished runs are trained one by one from
        their checkpoints, so an error lands on the run that causes it."""
        from bionic_core.studies.tracked_run import fail_tracked, finish_tracked, start_tracked
        from bionic_core.training.multimodel import train_many

        if len(pending) == 1:
            report(self.execute(*pending[0]))
            return
        tracked = []
        for spec, index, configuration_run_id, adopt_id, resumed_from in pending:
            self.observer.run_started(spec, index, resumed_from)
            tracked.append(start_tracked(
                spec.config, self.catalogue, self.tracker,
                run_name=f"{spec.configuration} s{spec.seed}", parent_id=configuration_run_id,
                extra_tags={**self._extra_tags(spec), "bionic.trained_with": str(len(pending))},
                checkpoint_dir=self.checkpoint_dir, run_id=adopt_id,
                on_epoch=lambda epoch, row, spec=spec: self.observer.epoch_done(spec, epoch, row)))
        done: set[int] = set()

        def finished(i: int, result: Any) -> None:
            finish_tracked(self.tracker, tracked[i], result)
            done.add(i)
            report(RunOutcome(pending[i][0], "finished" if result.status == "finished"
                              else "failed", tracked[i].run_id, result.reason,
                              result.train_seconds, result.resumed_from_epoch))

        try:
            train_many([t.config for t in tracked], self.catalogue,
                       checkpoints=[t.checkpoint for t in tracked],
                       on_epoch=[t.on_epoch for t in tracked], data=tracked[0].data,
                       on_finished=finished)
        except BaseException as exc:
            unfinished = [i for i in range(len(tracked)) if i not in done]
            if isinstance(exc, BionicError) or not isinstance(exc, Exception) or \
                    _is_tracking_error(exc):
                for i in unfinished:
                    fail_tracked(self.tracker, tracked[i], exc)
                raise
            for i in unfinished:  # continue alone; each adopts its run and checkpoint
                self.tracker.end(tracked[i].run_id, "KILLED")
            for i in unfinished:
                report(self.run_one(*pending[i][:3]))

    def close_configuration(self, run_id: str, planned: PlannedConfiguration) -> bool:
        """Log the seed aggregates on the configuration run; True when every seed finished."""
        per_seed = []
        for spec in planned.runs:
            finished = [r for r in self.runs_with_key(spec.key) if r.info.status == "FINISHED"]
            run = _latest(finished)
            if run is not None:
                per_seed.append({k: v for k, v in run.data.metrics.items()
                                 if k.startswith("final_")})
        aggregates = aggregate_metrics(per_seed)
        aggregates["seeds_finished"] = float(len(per_seed))
        aggregates["seeds_planned"] = float(len(planned.runs))
        self.tracker.log_metrics(run_id, aggregates)
        complete = len(per_seed) == len(planned.runs)
        self.tracker.end(run_id, "FINISHED" if complete else "FAILED")
        return complete


def preflight(plan: SweepPlan, tracker: Tracker) -> str:
    """Fail now, before anything is written, on what the user can get wrong: the device, the
    dataset, the tracking store. Returns the device the runs will use."""
    from bionic_core.training.loop import load_run_data
    from bionic_core.training.seeding import resolve_device

    device = str(resolve_device(plan.base.device))
    load_run_data(plan.base)
    tracker.experiment_id(plan.experiment)
    return device


def _run_grouped(sweep: _Sweep, sweep_run_id: str, result: SweepResult,
                 open_runs: list[str]) -> bool:
    """Run the plan with the multi-model engine: decide every run first (skip, continue, or
    train), then train the pending ones in the engine's groups (same data and batch size; on a
    GPU also one network shape). Returns "every seed finished"."""
    from bionic_core.training.multimodel import compatible_groups

    plan = sweep.plan
    config_runs = {}
    for order, planned in enumerate(plan.configurations):
        config_runs[planned.name] = sweep.open_configuration_run(sweep_run_id, order, planned)
        open_runs.append(config_runs[planned.name])
    outcomes: dict[str, RunOutcome] = {}

    def report(outcome: RunOutcome) -> None:
        outcomes[outcome.spec.key] = outcome
        sweep.observer.run_done(outcome, len(outcomes) - 1)

    pending = []
    for index, spec in enumerate(plan.runs):
        decided = sweep.decide(spec)
        if isinstance(decided, RunOutcome):
            report(decided)
        else:
            pending.append((spec, index, config_runs[spec.configuration], *decided))
    for group in compatible_groups([p[0].config for p in pending], sweep.catalogue):
        sweep.run_together([pending[i] for i in group], report)
    result.outcomes.extend(outcomes[spec.key] for spec in plan.runs if spec.key in outcomes)
    complete = True
    for planned in plan.configurations:
        complete &= sweep.close_configuration(config_runs[planned.name], planned)
        open_runs.remove(config_runs[planned.name])
    return complete


def run_sweep(plan: SweepPlan, catalogue: Catalogue, tracker: Tracker, *,
              observer: SweepObserver | None = None, retry_failed: bool = False,
              checkpoint_dir: Path = CHECKPOINT_DIR) -> SweepResult:
    """Run every planned run that has not finished yet; see the module docstring.

    A run that diverges or raises is recorded as failed and the sweep goes on; a user error
    (BionicError) or a tracking failure stops it (rerun the same command to resume).
    """
    observer = observer or SweepObserver()
    sweep = _Sweep(plan, catalogue, tracker, observer, retry_failed, checkpoint_dir)
    sweep.device = preflight(plan, tracker)
    sweep.experiment_id = tracker.experiment_id(plan.experiment)

    sweep_run_id = ""
    open_runs: list[str] = []
    try:
        sweep_run_id, resumed = sweep.open_sweep_run()
        open_runs.append(sweep_run_id)
        result = SweepResult(plan, sweep_run_id)
        observer.sweep_started(plan, sweep_run_id, resumed)
        index = 0
        complete = True
        if plan.base.multimodel:  # runs train together (bionic_core.training.multimodel)
            complete = _run_grouped(sweep, sweep_run_id, result, open_runs)
        else:
            for order, planned in enumerate(plan.configurations):
                config_run_id = sweep.open_configuration_run(sweep_run_id, order, planned)
                open_runs.append(config_run_id)
                for spec in planned.runs:
                    outcome = sweep.run_one(spec, index, config_run_id)
                    result.outcomes.append(outcome)
                    observer.run_done(outcome, index)
                    index += 1
                complete &= sweep.close_configuration(config_run_id, planned)
                open_runs.remove(config_run_id)
        counts = {s: float(sum(o.status == s for o in result.outcomes))
                  for s in ("finished", "skipped", "failed", "error", "previously-failed")}
        tracker.log_metrics(sweep_run_id, {f"runs_{k.replace('-', '_')}": v
                                           for k, v in counts.items()})
        tracker.end(sweep_run_id, "FINISHED" if complete else "FAILED")
        open_runs.remove(sweep_run_id)
        return result
    except BaseException as exc:
        if not _is_tracking_error(exc):
            for run_id in reversed(open_runs):  # leave no parent run looking alive
                try:
                    tracker.end(run_id, "KILLED")
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
        if _is_tracking_error(exc):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BionicError(f"tracking URI {tracker.uri}: {first[:300]} (the sweep stopped; "
                              "rerun the same command to resume)") from exc
        raise
