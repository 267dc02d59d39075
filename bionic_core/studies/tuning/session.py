"""A tuning session: the study of an experiment opened and checked (:func:`open_tuning`), its
MLflow parent run, and :meth:`Tuning.optimize`, which runs trials under that parent and leaves
the best value and parameters on it."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.tracking import TAG_KIND, MlflowStatus, Tracker
from bionic_core.studies.tuning.space import SearchSpace
from bionic_core.studies.tuning.storage import DEFAULT_STORAGE, display_url, open_url, trial_count
from bionic_core.studies.tuning.study import (
    METRICS,
    base_fingerprint,
    default_study_name,
    make_pruner,
    make_sampler,
    open_study,
)
from bionic_core.studies.tuning.trials import (
    TAG_STORAGE,
    TAG_STUDY,
    TrialFailed,
    TrialObjective,
    TuneObserver,
)


@dataclass
class TuneResult:
    study_name: str
    storage: str  # shown without its password
    parent_run_id: str
    metric: str
    trials: list[Any]  # Optuna FrozenTrials of the whole study
    new_trials: list[int]  # numbers of the trials run by this call
    best: Any | None  # the best FrozenTrial, None when no trial completed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out


def _find_parent(tracker: Tracker, experiment: str, study: str, storage: str) -> str | None:
    runs = tracker.find_runs(experiment, f"tags.`{TAG_KIND}` = 'study' and "
                                         f"tags.`{TAG_STUDY}` = '{study}'")
    runs = [r for r in runs if r.data.tags.get(TAG_STORAGE) == storage]
    if not runs:
        return None
    # The first one made: processes that started a study together all agree on it.
    return min(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)).info.run_id


@dataclass
class Tuning:
    """An opened study, checked and ready: :meth:`optimize` runs its trials."""

    base: RunConfig
    catalogue: Catalogue
    tracker: Tracker
    space: SearchSpace
    study: Any  # optuna.Study
    storage: str  # the URL shown without its password
    metric: str
    sampler: str
    pruner: str

    @property
    def name(self) -> str:
        return self.study.study_name

    def _open_parent(self) -> str:
        tracker, experiment = self.tracker, self.base.experiment
        tags = {TAG_KIND: "study", TAG_STUDY: self.name, TAG_STORAGE: self.storage,
                "bionic.sampler": self.sampler, "bionic.pruner": self.pruner,
                "bionic.metric": self.metric}
        parent_id = _find_parent(tracker, experiment, self.name, self.storage)
        if parent_id is None:
            params = {"study": self.name, "storage": self.storage, "metric": self.metric,
                      "space": json.dumps(self.space.as_dict(), default=str)[:6000]}
            mine = tracker.start(experiment, f"tune {self.name}", tags=tags, params=params)
            # Another machine may have opened the same study at the same moment: keep one.
            parent_id = _find_parent(tracker, experiment, self.name, self.storage) or mine
            if parent_id != mine:
                tracker.delete(mine)
            return parent_id
        tracker.reopen(parent_id)
        tracker.set_tags(parent_id, tags)
        return parent_id

    def optimize(self, trials: int | None = 20, timeout: float | None = None,
                 observer: TuneObserver | None = None) -> TuneResult:
        """Run ``trials`` more trials (or until ``timeout`` seconds), each an MLflow run under
        the study's parent run; the parent then carries the best value and parameters."""
        observer = observer or TuneObserver()
        parent_id = self._open_parent()
        checkpoints = Path(tempfile.mkdtemp(prefix="bionic-tune-"))
        objective = TrialObjective(self.base, self.space, self.catalogue, self.tracker,
                                   self.metric, self.name, self.storage, parent_id, checkpoints,
                                   observer)

        def done(_: Any, trial: Any) -> None:
            observer.trial_done(trial)

        try:
            if trials is None or trials > 0:
                self.study.optimize(objective, n_trials=trials, timeout=timeout,
                                    callbacks=[done],
                                    catch=(TrialFailed, RuntimeError, ValueError,
                                           ArithmeticError))
        except BaseException:
            self.tracker.end(parent_id, MlflowStatus.KILLED)
            raise
        finally:
            for leftover in checkpoints.glob("*"):
                leftover.unlink(missing_ok=True)
            checkpoints.rmdir()
        return self._close_parent(parent_id, objective.new_trials)

    def _close_parent(self, parent_id: str, new_trials: list[int]) -> TuneResult:
        import optuna

        tracker = self.tracker
        all_trials = self.study.get_trials(deepcopy=False)
        complete = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value) if complete else None
        result = TuneResult(self.name, self.storage, parent_id, self.metric, all_trials,
                            new_trials, best)
        summary = {f"trials_{state}": float(n) for state, n in result.counts().items()}
        if best is not None:
            summary.update(best_value=float(best.value), best_trial=float(best.number))
            best_tags = {f"best.{k}": str(v) for k, v in best.params.items()}
            best_tags["best.trial"] = str(best.number)
            if "mlflow_run_id" in best.user_attrs:
                best_tags["best.run_id"] = str(best.user_attrs["mlflow_run_id"])
            tracker.set_tags(parent_id, best_tags)  # tags, not params: the best changes
            tracker.log_json(parent_id, "best_params.json",
                             {"trial": best.number, self.metric: best.value,
                              "params": best.params})
        tracker.log_metrics(parent_id, summary)
        tracker.end(parent_id, MlflowStatus.FINISHED)
        return result


def open_tuning(base: RunConfig, catalogue: Catalogue, tracker: Tracker, space: SearchSpace,
                *, storage_url: str = DEFAULT_STORAGE, study_name: str | None = None,
                sampler: str = "tpe", pruner: str = "median",
                metric: str = "val_accuracy") -> Tuning:
    """Open (create or continue) the study of ``base`` and check everything a user can get
    wrong — storage URL, study owner, tracking URI — before any trial runs."""
    import optuna

    if metric not in METRICS:
        raise BionicError(f"metric {metric}: expected one of {', '.join(METRICS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = study_name or default_study_name(base.experiment)
    url, storage = open_url(storage_url)
    tracker.experiment_id(base.experiment)  # a bad tracking URI fails before any trial
    n_before = trial_count(storage, study_name)
    # A rerun must not replay the first call's random draws: the seed moves on with the study.
    seed = base.seed * 100_003 + n_before
    fixed_base = space.apply(base, {})
    study = open_study(storage, url, study_name, experiment=base.experiment,
                       base=base_fingerprint(fixed_base, space), space=space,
                       sampler=make_sampler(sampler, seed),
                       pruner=make_pruner(pruner, base.epochs))
    if n_before == 0:  # the experiment's own values are the first point: the one to beat
        defaults = space.defaults(fixed_base, catalogue)
        if defaults:
            study.enqueue_trial(defaults, user_attrs={"bionic.origin": "experiment values"})
    return Tuning(base, catalogue, tracker, space, study, display_url(url), metric, sampler,
                  pruner)
