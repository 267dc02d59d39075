"""One trial: the objective Optuna calls, which trains the configuration the trial suggests as
an MLflow run under the study's parent run, reports the metric every epoch so that the pruner
can stop a poor trial early, and records how the trial ended (COMPLETE, PRUNED, FAIL)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.tracking import TAG_KIND, MlflowStatus, Tracker
from bionic_core.studies.tuning.space import SearchSpace

TAG_STUDY = "bionic.study"
TAG_STORAGE = "bionic.study_storage"
TAG_TRIAL = "optuna.trial_number"
TAG_STATE = "optuna.state"


class TrialFailed(Exception):
    """A trial whose training diverged: recorded as FAIL, the study goes on."""


class TuneObserver:
    """Progress callbacks of :meth:`Tuning.optimize` (no-ops; the CLI draws Rich progress)."""

    def trial_started(self, number: int, values: dict[str, Any]) -> None: ...

    def epoch_done(self, number: int, epoch: int, row: dict[str, float]) -> None: ...

    def batch_done(self, number: int, epoch: int, done: int, batches: int) -> None:
        """Progress inside an epoch (at most twice a second)."""

    def trial_done(self, trial: Any) -> None: ...


def trial_run(tracker: Tracker, experiment: str, study: str, number: int,
              parent_id: str) -> str | None:
    """The MLflow run of trial ``number`` under ``parent_id`` (the latest), or None."""
    runs = tracker.find_runs(experiment, f"tags.`{TAG_STUDY}` = '{study}' and "
                                         f"tags.`{TAG_TRIAL}` = '{number}' and "
                                         f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return max(runs, key=lambda r: r.info.start_time or 0).info.run_id if runs else None


@dataclass
class TrialObjective:
    """The objective of one :meth:`Tuning.optimize` call: each call of it is one trial, one
    training run; it returns the trial's validation metric (``metric``)."""

    base: RunConfig
    space: SearchSpace
    catalogue: Catalogue
    tracker: Tracker
    metric: str
    study_name: str
    storage: str  # the URL shown without its password
    parent_id: str
    checkpoints: Path
    observer: TuneObserver
    new_trials: list[int] = field(default_factory=list)  # numbers of the trials run

    def __call__(self, trial: Any) -> float:
        import optuna

        from bionic_core.studies.tracked_run import run_tracked

        values = self.space.suggest(trial)
        config = self.space.apply(self.base, values)
        self.new_trials.append(trial.number)
        self.observer.trial_started(trial.number, values)
        try:
            result, run_id = run_tracked(config, self.catalogue, self.tracker,
                                         run_name=f"{self.study_name} trial {trial.number}",
                                         parent_id=self.parent_id,
                                         extra_tags=self._tags(trial, values),
                                         on_epoch=self._reporter(trial, config),
                                         checkpoint_dir=self.checkpoints,
                                         on_batch=self._batch_reporter(trial.number))
        except optuna.TrialPruned as exc:
            self._record_pruned(trial, config, exc)
            raise
        except BionicError:
            raise
        except BaseException:  # an error or an interrupt: Optuna records a FAIL
            self._record_failed(trial)
            raise
        return self._record_result(trial, result, run_id)

    def _tags(self, trial: Any, values: dict[str, Any]) -> dict[str, str]:
        return {TAG_KIND: "trial", TAG_STUDY: self.study_name, TAG_STORAGE: self.storage,
                TAG_TRIAL: str(trial.number), TAG_STATE: MlflowStatus.RUNNING,
                "optuna.params": json.dumps(values, default=str)[:5000]}

    def _batch_reporter(self, number: int) -> Any:
        """The ``on_batch`` callback: tells the observer."""
        return lambda epoch, done, batches: self.observer.batch_done(number, epoch, done, batches)

    def _reporter(self, trial: Any, config: RunConfig) -> Any:
        """The ``on_epoch`` callback: report the metric, prune a poor trial."""
        import optuna

        metric, observer = self.metric, self.observer

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            trial.report(row[metric], epoch)
            observer.epoch_done(trial.number, epoch, row)
            # A trial that trained all its epochs completes: pruning it saves nothing.
            if epoch < config.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"{metric} {row[metric]:.4f} after epoch {epoch}")

        return on_epoch

    def _run_id(self, trial: Any) -> str | None:
        return trial_run(self.tracker, self.base.experiment, self.study_name, trial.number,
                         self.parent_id)

    def _record_pruned(self, trial: Any, config: RunConfig, exc: BaseException) -> None:
        run_id = self._run_id(trial)
        if run_id is not None:  # run_tracked recorded an error: it is a pruned trial
            self.tracker.set_tags(run_id, {TAG_STATE: "PRUNED", "bionic.status": "pruned",
                                           "bionic.reason": f"pruned: {exc}"})
            self.tracker.end(run_id, MlflowStatus.KILLED)  # not FINISHED: no sweep may reuse it
            trial.set_user_attr("mlflow_run_id", run_id)
        (self.checkpoints / f"{config.key()}.pt").unlink(missing_ok=True)

    def _record_failed(self, trial: Any) -> None:
        run_id = self._run_id(trial)
        if run_id is not None:
            self.tracker.set_tags(run_id, {TAG_STATE: "FAIL"})

    def _record_result(self, trial: Any, result: Any, run_id: str) -> float:
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("run_key", result.key)
        trial.set_user_attr("epochs_run", result.epochs_run)
        if result.status != "finished":
            self.tracker.set_tags(run_id, {TAG_STATE: "FAIL"})
            raise TrialFailed(result.reason)
        self.tracker.set_tags(run_id, {TAG_STATE: "COMPLETE"})
        return float(result.val[self.metric.removeprefix("val_")])
