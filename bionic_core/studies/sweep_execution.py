"""Executing a sweep's runs in MLflow, one run at a time or several together.

A sweep run (parent) holds one configuration run per configuration, which holds one seed run
per seed. Each of them is found again by its tags when the sweep is rerun. A seed run is
skipped when its key already finished anywhere in the MLflow experiment (same key, same
result); copied into the experiment, not trained again, when it finished in another experiment
of the same store on the same data (the copy's ``bionic.copied_from`` names the original);
continued inside the same MLflow run from its epoch checkpoint when it was interrupted; and
trained otherwise. A run key is never recorded as finished twice in one experiment.

Used by a local sweep (:mod:`bionic_core.studies.sweep_run`) and by the workers of a queue
(:mod:`bionic_core.studies.work_queue`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue, FeatureFailure
from bionic_core.studies.seed_aggregates import aggregate_metrics
from bionic_core.studies.sweep_plan import PlannedConfiguration, RunSpec, SweepPlan, preflight
from bionic_core.studies.sweep_records import (
    PARENT,
    TAG_CONFIG_KEY,
    TAG_CONFIGURATION,
    TAG_DESIGN,
    TAG_REASON,
    TAG_RUN_KEYS,
    TAG_STATUS,
    TAG_SWEEP,
    Outcome,
    is_tracking_error,
    kill_runs,
    latest_run,
    quote,
    refuse_other_data,
    run_counts,
    search_runs,
)
from bionic_core.studies.tracked_run import (
    CHECKPOINT_DIR,
    checkpoint_path,
    failure_line,
    run_tracked,
)
from bionic_core.studies.tracking import (
    TAG_DATA_FINGERPRINT,
    TAG_KEY,
    TAG_KIND,
    TAG_PROVENANCE,
    TAG_SETTINGS_KEY,
    MlflowStatus,
    Tracker,
    environment_tags,
    flatten_params,
    origin_id,
)
from bionic_core.training.loop import RunStatus


@dataclass
class RunOutcome:
    spec: RunSpec
    status: Outcome
    run_id: str = ""
    reason: str = ""
    seconds: float = 0.0
    resumed_from_epoch: int = 0
    feature: str = ""  # the feature that raised, for an error outcome

    @property
    def ok(self) -> bool:
        return Outcome(self.status).ok


class SweepObserver:
    """Progress callbacks of a sweep's execution (all no-ops; the CLI draws Rich progress)."""

    def sweep_started(self, plan: SweepPlan, sweep_run_id: str, resumed: bool) -> None: ...

    def run_started(self, spec: RunSpec, index: int, resumed_from_epoch: int | None) -> None: ...

    def epoch_done(self, spec: RunSpec, epoch: int, row: dict[str, float]) -> None: ...

    def batch_done(self, spec: RunSpec, epoch: int, done: int, batches: int) -> None:
        """Progress inside an epoch (at most twice a second per training loop)."""

    def run_done(self, outcome: RunOutcome, index: int) -> None: ...

    def run_note(self, spec: RunSpec, note: str) -> None:
        """One line about a run worth telling (e.g. why a finished run is not reused)."""


class PendingRun(NamedTuple):
    """A seed run to train (see :meth:`SweepExecution.decide`)."""

    spec: RunSpec
    index: int  # in the plan's runs
    configuration_run_id: str
    adopt_id: str | None  # the interrupted MLflow run it continues, or None for a new one
    resumed_from: int | None  # the epoch of the checkpoint it continues from


def _run_keys(planned: PlannedConfiguration) -> str:
    return ",".join(f"{r.seed}:{r.key}" for r in planned.runs)


def _run_name(spec: RunSpec) -> str:
    return f"{spec.configuration} s{spec.seed}"


def _outcome(spec: RunSpec, result: Any, run_id: str, seconds: float) -> RunOutcome:
    """The outcome of a trained run (``result``: a training RunResult)."""
    status = Outcome.FINISHED if result.status == RunStatus.FINISHED else Outcome.FAILED
    return RunOutcome(spec, status, run_id, result.reason, seconds, result.resumed_from_epoch)


def _stops_the_sweep(exc: BaseException) -> bool:
    """A user error, the tracking store or an interrupt: not a failure of one run."""
    return (isinstance(exc, BionicError) or not isinstance(exc, Exception)
            or is_tracking_error(exc))


class SweepExecution:
    """One execution of a plan: the tracker, the MLflow ids and how its runs are trained."""

    def __init__(self, plan: SweepPlan, catalogue: Catalogue, tracker: Tracker,
                 observer: SweepObserver, retry_failed: bool, checkpoint_dir: Path) -> None:
        self.plan, self.catalogue, self.tracker = plan, catalogue, tracker
        self.observer, self.retry_failed = observer, retry_failed
        self.checkpoint_dir = checkpoint_dir
        self.experiment_id = ""
        self.device = "cpu"
        self.data_fingerprint = ""

    @classmethod
    def prepare(cls, plan: SweepPlan, catalogue: Catalogue, tracker: Tracker,
                observer: SweepObserver, retry_failed: bool = False,
                checkpoint_dir: Path = CHECKPOINT_DIR) -> SweepExecution:
        """Check the device, dataset and tracking store first (:func:`preflight`), then
        attach to the plan's MLflow experiment."""
        sweep = cls(plan, catalogue, tracker, observer, retry_failed, checkpoint_dir)
        sweep.device = preflight(plan, tracker)
        sweep.experiment_id = tracker.experiment_id(plan.experiment)
        from bionic_core.training.loop import load_run_data  # cached: preflight loaded it

        sweep.data_fingerprint = load_run_data(plan.base).fingerprint()
        return sweep

    def _check_same_data(self, run: Any, what: str) -> None:
        """Refuse to mix runs trained on other data (same path, other content) into this
        sweep (:func:`preflight` checked already; this guards runs recorded since)."""
        refuse_other_data(run, what, self.plan.base.dataset, self.data_fingerprint)

    # ------------------------------------------------------------------ parent runs
    def _common_tags(self) -> dict[str, str]:
        return {TAG_SWEEP: self.plan.sweep_id, TAG_DESIGN: self.plan.design.kind,
                **environment_tags(self.device)}

    def _reopen(self, filter_string: str) -> str | None:
        """The latest run that matches ``filter_string``, marked RUNNING again, or None."""
        found = latest_run(search_runs(self.tracker, [self.experiment_id], filter_string))
        if found is None:
            return None
        self.tracker.reopen(found.info.run_id)
        return found.info.run_id

    def open_sweep_run(self) -> tuple[str, bool]:
        """The sweep run's id, and whether it was found again (else it is started now)."""
        plan = self.plan
        previous = latest_run(search_runs(
            self.tracker, [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = {quote(plan.sweep_id)} and tags.`{TAG_KIND}` = 'sweep'"))
        if previous is not None:
            self._check_same_data(previous, f"sweep {plan.name}")
            self.tracker.reopen(previous.info.run_id)
            return previous.info.run_id, True
        run_id = self.tracker.start(plan.experiment, f"sweep {plan.name}",
                                    tags=self._sweep_tags(), params=self._sweep_params())
        self.tracker.log_json(run_id, "plan.json", plan.as_dict())
        return run_id, False

    def _sweep_tags(self) -> dict[str, str]:
        plan = self.plan
        return {**self._common_tags(), TAG_KIND: "sweep", "bionic.sweep_name": plan.name,
                TAG_DATA_FINGERPRINT: self.data_fingerprint,
                "bionic.anchor": plan.anchor, "bionic.factors": ",".join(plan.options.factors),
                "bionic.seeds": ",".join(map(str, plan.seeds)),
                "bionic.n_runs": str(len(plan.runs)),
                "bionic.dataset": plan.base.dataset,
                "bionic.dropped": json.dumps([[d.name, d.reason]
                                              for d in plan.design.dropped])[:5000]}

    def _sweep_params(self) -> dict[str, str]:
        plan, options = self.plan, self.plan.options
        params = {"design": plan.design.kind, "seeds": json.dumps(list(plan.seeds)),
                  "n_configurations": str(len(plan.configurations)),
                  "n_runs": str(len(plan.runs)),
                  "reference": ",".join(options.reference or ()),
                  "baseline": "" if options.baseline is None else ",".join(options.baseline),
                  "factors": ",".join(options.factors),
                  "sample": str(options.sample), "sample_seed": str(options.sample_seed)}
        spec = {k: v for k, v in plan.base.spec().items()
                if k not in ("seed", "features", "params")}
        params.update({f"base.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                       for k, v in spec.items()})
        return params

    def open_configuration_run(self, sweep_run_id: str, index: int,
                               planned: PlannedConfiguration) -> str:
        """The configuration run's id (found again below the sweep run, or started now). A
        run found again is told the plan's run keys (an imported sweep knows only the keys
        its export had runs of)."""
        found = self._reopen(f"tags.`{PARENT}` = {quote(sweep_run_id)} and "
                             f"tags.`{TAG_CONFIG_KEY}` = {quote(planned.key)}")
        if found is not None:
            self.tracker.set_tags(found, {TAG_RUN_KEYS: _run_keys(planned)})
            return found
        return self.tracker.start(self.plan.experiment, planned.name,
                                  tags=self._configuration_tags(index, planned),
                                  params=self._configuration_params(planned),
                                  parent_id=sweep_run_id)

    def _configuration_tags(self, index: int, planned: PlannedConfiguration) -> dict[str, str]:
        c = planned.configuration
        return {**self._common_tags(), TAG_KIND: "configuration", TAG_CONFIGURATION: c.name,
                TAG_CONFIG_KEY: planned.key, "bionic.order": str(index),
                "bionic.features": ",".join(sorted(c.features)) or "(none)",
                "bionic.removed": ",".join(c.removed), "bionic.added": ",".join(c.added),
                "bionic.group": planned.group,
                **({"bionic.settings": "; ".join(c.settings)} if c.settings else {}),
                TAG_RUN_KEYS: _run_keys(planned)}

    def _configuration_params(self, planned: PlannedConfiguration) -> dict[str, str]:
        # Every resolved hyper-parameter: the plan's configs carry every feature parameter.
        params = flatten_params(planned.config.spec_without_seed(),
                                sorted(self.catalogue.entries))
        params["seeds"] = json.dumps(list(self.plan.seeds))
        return params

    def close_configuration(self, run_id: str, planned: PlannedConfiguration) -> bool:
        """Log the seed aggregates on the configuration run; True when every seed finished."""
        per_seed = []
        for spec in planned.runs:
            run = latest_run(self.runs_with_key(spec.key, MlflowStatus.FINISHED))
            if run is not None:
                per_seed.append({k: v for k, v in run.data.metrics.items()
                                 if k.startswith("final_")})
        aggregates = aggregate_metrics(per_seed)
        aggregates["seeds_finished"] = float(len(per_seed))
        aggregates["seeds_planned"] = float(len(planned.runs))
        self.tracker.log_metrics(run_id, aggregates)
        complete = len(per_seed) == len(planned.runs)
        self.tracker.end(run_id, MlflowStatus.FINISHED if complete else MlflowStatus.FAILED)
        return complete

    def close_sweep_run(self, sweep_run_id: str, complete: bool, statuses: Iterable[str]) -> None:
        """Log how many runs ended in each status and the comparison (tables, plot, Δ and p
        metrics: :mod:`~bionic_core.studies.sweep_report`) on the sweep run, and end it (FAILED
        unless every seed of every configuration finished)."""
        from bionic_core.studies.sweep_report import log_comparison

        self.tracker.log_metrics(sweep_run_id, run_counts(statuses))
        log_comparison(self.tracker, sweep_run_id, self.plan.sweep_id)
        self.tracker.end(sweep_run_id, MlflowStatus.FINISHED if complete else MlflowStatus.FAILED)

    # ------------------------------------------------------------------ seed runs
    def runs_with_key(self, key: str, status: str | None = None) -> list[Any]:
        """The MLflow runs of a run key (only those in MLflow ``status`` when given)."""
        runs = search_runs(self.tracker, [self.experiment_id], f"tags.`{TAG_KEY}` = {quote(key)}")
        return runs if status is None else [r for r in runs if r.info.status == status]

    def run_one(self, spec: RunSpec, index: int, configuration_run_id: str) -> RunOutcome:
        """Skip, copy, continue or train one seed run."""
        decided = self.decide(spec, configuration_run_id)
        if isinstance(decided, RunOutcome):
            return decided
        return self.execute(spec, index, configuration_run_id, *decided)

    def decide(self, spec: RunSpec,
               configuration_run_id: str) -> RunOutcome | tuple[str | None, int | None]:
        """The outcome of a run that needs no training (finished here, previously failed,
        finished in another experiment and copied under ``configuration_run_id``), else the
        interrupted MLflow run to continue (or None) and the epoch it resumes after."""
        existing = self.runs_with_key(spec.key)
        checkpoint = checkpoint_path(spec.config, self.checkpoint_dir)
        known = (self._known_outcome(spec, existing, checkpoint)
                 or self._copy_from_store(spec, configuration_run_id, existing, checkpoint))
        if known is not None:
            return known
        if not existing:
            self._note_stale_code(spec)
        return self._resume_point(spec, existing, checkpoint)

    def _copy_from_store(self, spec: RunSpec, configuration_run_id: str, existing: list[Any],
                         checkpoint: Path) -> RunOutcome | None:
        """When the key finished as a seed run in another experiment of this store, on the
        same data (fingerprint), copy the latest such run into this sweep (the same result:
        the key names the computation) instead of training it again; the key's interrupted
        runs here are ended as KILLED and its checkpoint removed."""
        others = [e for e in self.tracker.experiments() if e != self.experiment_id]
        if not others:
            return None
        found = latest_run(
            r for r in search_runs(self.tracker, others, f"tags.`{TAG_KEY}` = {quote(spec.key)} "
                                   "and attributes.status = 'FINISHED'")
            if r.data.tags.get(TAG_KIND) == "run"
            and r.data.tags.get(TAG_DATA_FINGERPRINT) == self.data_fingerprint)
        if found is None:
            return None
        copy_id = self.tracker.copy_run(
            found.info.run_id, self.plan.experiment, _run_name(spec),
            tags=self._extra_tags(spec), parent_id=configuration_run_id)
        origin = origin_id(found)
        kill_runs(self.tracker, [r for r in existing if r.info.status != MlflowStatus.KILLED
                                 and r.data.tags.get(TAG_KIND) == "run"],
                  f"superseded by a copy of finished run {origin}")
        checkpoint.unlink(missing_ok=True)
        return RunOutcome(spec, Outcome.SKIPPED, copy_id, f"copied from finished run {origin}")

    def _note_stale_code(self, spec: RunSpec) -> None:
        """Tell the observer when a finished run of the same settings exists but its features'
        code (provenance) differs: it is not reused, and the line says what changed."""
        same = search_runs(self.tracker, [self.experiment_id],
                           f"tags.`{TAG_SETTINGS_KEY}` = {quote(spec.config.settings_key())} "
                           "and attributes.status = 'FINISHED'")
        if not same:
            return
        old = dict(part.split("=", 1) for part in
                   latest_run(same).data.tags.get(TAG_PROVENANCE, "").split("; ") if "=" in part)
        new = spec.config.feature_provenance
        changed = [f"{name} {old.get(name, '?')} → {new[name]}" for name in sorted(new)
                   if old.get(name) != new[name]]
        self.observer.run_note(spec, f"{spec.configuration} seed {spec.seed}: retrained, not "
                               f"reused: feature code changed ({'; '.join(changed)})")

    def _known_outcome(self, spec: RunSpec, existing: list[Any],
                       checkpoint: Path) -> RunOutcome | None:
        finished = [r for r in existing if r.info.status == MlflowStatus.FINISHED]
        if finished:
            self._check_same_data(latest_run(finished),
                                  f"{spec.configuration} seed {spec.seed} (run key {spec.key})")
            checkpoint.unlink(missing_ok=True)  # left over when killed right after finishing
            return RunOutcome(spec, Outcome.SKIPPED, latest_run(finished).info.run_id,
                              "already finished")
        diverged = [r for r in existing if r.info.status == MlflowStatus.FAILED
                    and r.data.tags.get(TAG_STATUS) == "failed"]
        if diverged and not self.retry_failed:
            run = latest_run(diverged)
            return RunOutcome(spec, Outcome.PREVIOUSLY_FAILED, run.info.run_id,
                              run.data.tags.get(TAG_REASON, "failed"))
        return None

    def _resume_point(self, spec: RunSpec, existing: list[Any],
                      checkpoint: Path) -> tuple[str | None, int | None]:
        """The interrupted run to continue (the latest, when its checkpoint is here) and the
        epoch it resumes after; the key's other interrupted runs are ended as KILLED. An
        interrupted run whose checkpoint is not here (another machine, another working
        directory) is trained afresh, and the observer is told where the checkpoint was sought."""
        # Interrupted runs of this key (not tuning trials, which have their own life cycle).
        stale = [r for r in existing if r.info.status in (MlflowStatus.RUNNING, MlflowStatus.KILLED,
                                                        MlflowStatus.SCHEDULED)
                 and r.data.tags.get(TAG_KIND) == "run"]
        adopt = latest_run(stale) if checkpoint.is_file() else None
        if stale and adopt is None:
            self.observer.run_note(spec, f"{spec.configuration} seed {spec.seed}: an earlier "
                                   f"attempt was interrupted, but its checkpoint is not in "
                                   f"{checkpoint.parent.resolve()}: training from epoch 1 (start "
                                   "in the directory that attempt ran in to continue it)")
        kill_runs(self.tracker, [r for r in stale if r is not adopt and
                                 r.info.status != MlflowStatus.KILLED],
                  "interrupted; superseded by a later attempt of the same run key")
        if adopt is None:
            return None, None
        from bionic_core.training.saved_state import load_checkpoint

        epoch = load_checkpoint(checkpoint, "cpu").get("epoch", 0)
        return adopt.info.run_id, int(epoch)

    def _extra_tags(self, spec: RunSpec) -> dict[str, str]:
        return {TAG_SWEEP: self.plan.sweep_id, TAG_DESIGN: self.plan.design.kind,
                TAG_CONFIGURATION: spec.configuration}

    def execute(self, spec: RunSpec, index: int, configuration_run_id: str,
                adopt_id: str | None, resumed_from: int | None) -> RunOutcome:
        """Train one run (continuing ``adopt_id`` when given); an exception of the run itself
        becomes an ``error`` outcome."""
        self.observer.run_started(spec, index, resumed_from)
        began = time.perf_counter()
        try:
            result, run_id = run_tracked(
                spec.config, self.catalogue, self.tracker, run_name=_run_name(spec),
                parent_id=configuration_run_id, extra_tags=self._extra_tags(spec),
                checkpoint_dir=self.checkpoint_dir,
                on_epoch=lambda epoch, row: self.observer.epoch_done(spec, epoch, row),
                on_batch=self._batch_reporter(spec), run_id=adopt_id)
        except Exception as exc:
            if _stops_the_sweep(exc):
                raise
            found = self.runs_with_key(spec.key, MlflowStatus.FAILED)
            return RunOutcome(spec, Outcome.ERROR, latest_run(found).info.run_id if found else "",
                              failure_line(exc), time.perf_counter() - began,
                              feature=exc.feature if isinstance(exc, FeatureFailure) else "")
        return _outcome(spec, result, run_id, time.perf_counter() - began)

    def run_together(self, pending: list[PendingRun],
                     report: Callable[[RunOutcome], None]) -> None:
        """Train runs together with the multi-model engine, each recorded as its own MLflow
        run. If the group fails, its unfinished runs are trained one by one from their
        checkpoints, so an error lands on the run that causes it."""
        from bionic_core.studies.tracked_run import fail_tracked, finish_tracked
        from bionic_core.training.multimodel import train_many

        if len(pending) == 1:
            report(self.execute(*pending[0]))
            return
        tracked = [self._start_together(p, len(pending)) for p in pending]
        done: set[int] = set()

        def finished(i: int, result: Any) -> None:
            finish_tracked(self.tracker, tracked[i], result)
            done.add(i)
            report(_outcome(pending[i].spec, result, tracked[i].run_id, result.train_seconds))

        try:
            train_many([t.config for t in tracked], self.catalogue,
                       checkpoints=[t.checkpoint for t in tracked],
                       on_epoch=[t.on_epoch for t in tracked], data=tracked[0].data,
                       on_finished=finished, on_batch=[t.on_batch for t in tracked])
        except BaseException as exc:
            unfinished = [i for i in range(len(tracked)) if i not in done]
            if _stops_the_sweep(exc):
                for i in unfinished:
                    fail_tracked(self.tracker, tracked[i], exc)
                raise
            for i in unfinished:  # continue alone; each adopts its run and checkpoint
                self.tracker.end(tracked[i].run_id, MlflowStatus.KILLED)
            for i in unfinished:
                report(self.run_one(*pending[i][:3]))

    def _start_together(self, run: PendingRun, group_size: int) -> Any:
        """Start the MLflow run of a run trained in a group of ``group_size``."""
        from bionic_core.studies.tracked_run import start_tracked

        spec = run.spec
        self.observer.run_started(spec, run.index, run.resumed_from)
        return start_tracked(
            spec.config, self.catalogue, self.tracker, run_name=_run_name(spec),
            parent_id=run.configuration_run_id,
            extra_tags={**self._extra_tags(spec), "bionic.trained_with": str(group_size)},
            checkpoint_dir=self.checkpoint_dir, run_id=run.adopt_id,
            on_epoch=lambda epoch, row: self.observer.epoch_done(spec, epoch, row),
            on_batch=self._batch_reporter(spec))

    def _batch_reporter(self, spec: RunSpec) -> Callable[[int, int, int], None]:
        """The ``on_batch`` callback of ``spec``'s training: tells the observer."""
        return lambda epoch, done, batches: self.observer.batch_done(spec, epoch, done, batches)
