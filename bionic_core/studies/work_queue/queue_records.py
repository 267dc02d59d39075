"""What a queue study stores: its attributes, the trial user attributes, the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bionic_core.studies.sweep_execution import SweepExecution
from bionic_core.studies.sweep_plan import RunSpec, SweepPlan
from bionic_core.studies.tracking import Tracker

ATTR_SWEEP = "bionic.sweep_id"
ATTR_PLAN = "bionic.plan"  # base config, design options, seeds: enough to plan the sweep again
ATTR_TRACKING = "bionic.tracking_uri"
KEY = "run_key"  # trial user attributes
OUTCOME = "outcome"  # finished | skipped | duplicate | failed | error | previously-failed
DEFAULT_HEARTBEAT = 60  # seconds between heartbeats of a running trial
DEFAULT_MAX_RETRY = 3  # times a run of a dead worker is queued again


def _trial_state() -> Any:
    from optuna.trial import TrialState

    return TrialState


@dataclass
class QueueView:
    """One queue study as a worker sees it."""

    study: Any  # optuna.Study
    plan: SweepPlan
    tracker: Tracker
    sweep: SweepExecution
    specs: dict[str, tuple[int, int, RunSpec]]  # key → (configuration order, index, spec)


def finalize_queue(queue: QueueView) -> None:
    """When nothing of the queue is waiting or running: seed aggregates on the configuration
    runs and run counts on the sweep run (the same as a local sweep leaves)."""
    TrialState = _trial_state()
    trials = queue.study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
        return
    sweep = queue.sweep
    sweep_run_id, _ = sweep.open_sweep_run()
    complete = True
    for order, planned in enumerate(queue.plan.configurations):
        run_id = sweep.open_configuration_run(sweep_run_id, order, planned)
        complete &= sweep.close_configuration(run_id, planned)
    latest: dict[str, str] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.user_attrs.get(OUTCOME) not in (None, "duplicate"):
            latest[t.user_attrs[KEY]] = t.user_attrs[OUTCOME]
    sweep.close_sweep_run(sweep_run_id, complete, latest.values())
