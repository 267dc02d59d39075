"""Putting a sweep's planned runs into a queue study, each key once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.sweep_execution import SweepExecution, SweepObserver
from bionic_core.studies.sweep_plan import DesignOptions, SweepPlan, plan_sweep
from bionic_core.studies.sweep_records import Outcome
from bionic_core.studies.tracked_run import CHECKPOINT_DIR
from bionic_core.studies.tracking import Tracker
from bionic_core.studies.tuning import (
    ATTR_EXPERIMENT,
    ATTR_KIND,
    absolute_url,
    display_url,
    open_storage,
    study_attrs,
)
from bionic_core.studies.work_queue.queue_records import (
    ATTR_PLAN,
    ATTR_SWEEP,
    ATTR_TRACKING,
    KEY,
    OUTCOME,
    QueueView,
    _trial_state,
    finalize_queue,
)


@dataclass
class EnqueueResult:
    study: str
    storage: str  # shown without its password
    sweep_id: str
    enqueued: list[str] = field(default_factory=list)  # run keys queued by this call
    present: list[str] = field(default_factory=list)  # already waiting, running or complete
    held_back: list[str] = field(default_factory=list)  # diverged before (see retry_failed)
    sweep_run_id: str = ""


def _plan_record(plan: SweepPlan) -> dict[str, Any]:
    return {"base": plan.base.as_dict(), "options": plan.options.as_dict(),
            "seeds": list(plan.seeds)}


def plan_from_record(record: dict[str, Any], catalogue: Catalogue) -> SweepPlan:
    """The sweep plan a queue study was created from, planned again on this machine."""
    from bionic_core.studies.saved_models import config_from_dict

    return plan_sweep(config_from_dict(record["base"]), catalogue,
                      DesignOptions.from_dict(record["options"]), seeds=record["seeds"])


def _by_key(trials: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for t in trials:
        if KEY in t.user_attrs:
            out.setdefault(t.user_attrs[KEY], []).append(t)
    return out


def enqueue_plan(plan: SweepPlan, catalogue: Catalogue, tracker: Tracker, url: str, *,
                 retry_failed: bool = False) -> EnqueueResult:
    """Queue every run of ``plan`` that is not queued, running or done yet (by run key).

    The study is named after the sweep (``plan.name``). The sweep and configuration runs are
    created in MLflow now, so that workers only add seed runs below them.
    """
    url = absolute_url(url)
    storage = open_storage(url, "--queue")
    attrs = study_attrs(storage, plan.name)
    if attrs is not None and (attrs.get(ATTR_KIND) != "queue"
                              or attrs.get(ATTR_SWEEP) != plan.sweep_id):
        raise BionicError(f"--queue {display_url(url)}: study {plan.name} exists and is not the "
                          f"queue of sweep {plan.sweep_id}")
    # Dataset, tracking store: fail before queuing.
    sweep = SweepExecution.prepare(plan, catalogue, tracker, SweepObserver(), retry_failed,
                                   CHECKPOINT_DIR)
    study = _queue_study(storage, plan, tracker, new=attrs is None)
    result = EnqueueResult(plan.name, display_url(url), plan.sweep_id)
    sweep_run_id, _ = sweep.open_sweep_run()
    result.sweep_run_id = sweep_run_id
    for order, planned in enumerate(plan.configurations):
        sweep.open_configuration_run(sweep_run_id, order, planned)
    _enqueue_runs(study, plan, result, retry_failed)
    # Nothing left to do (a repeated command): close the sweep's runs again, as workers do.
    finalize_queue(QueueView(study, plan, tracker, sweep, {}))
    return result


def _queue_study(storage: Any, plan: SweepPlan, tracker: Tracker, *, new: bool) -> Any:
    """The plan's queue study, created with what a worker needs when ``new``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=plan.name, direction="maximize",
                                load_if_exists=True)
    if new:
        study.set_user_attr(ATTR_KIND, "queue")
        study.set_user_attr(ATTR_EXPERIMENT, plan.experiment)
        study.set_user_attr(ATTR_SWEEP, plan.sweep_id)
        study.set_user_attr(ATTR_PLAN, _plan_record(plan))
    study.set_user_attr(ATTR_TRACKING, absolute_url(tracker.uri))
    return study


def _enqueue_runs(study: Any, plan: SweepPlan, result: EnqueueResult,
                  retry_failed: bool) -> None:
    """Queue each run of ``plan`` whose key is not waiting, running or complete yet, unless
    its last attempt diverged (then it is held back, but for ``retry_failed``)."""
    TrialState = _trial_state()
    existing = _by_key(study.get_trials(deepcopy=False))
    for spec in plan.runs:
        trials = existing.get(spec.key, [])
        if any(t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
               for t in trials):
            result.present.append(spec.key)
            continue
        last = max((t for t in trials if t.state == TrialState.FAIL), default=None,
                   key=lambda t: t.number)
        if (last is not None and not retry_failed
                and last.user_attrs.get(OUTCOME) in (Outcome.FAILED, Outcome.PREVIOUSLY_FAILED)):
            result.held_back.append(spec.key)
            continue
        study.enqueue_trial({}, user_attrs={KEY: spec.key, "configuration": spec.configuration,
                                            "seed": spec.seed, "retry_failed": retry_failed})
        result.enqueued.append(spec.key)


