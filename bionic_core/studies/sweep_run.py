"""Running an ablation sweep on this machine, with resume: rerunning the same sweep skips every
run that already finished and continues an interrupted one (see
:mod:`bionic_core.studies.sweep_execution` for how each run is recorded in MLflow).

Runs train one after the other, configuration by configuration, or, when the experiment asks
for the multi-model engine, together in groups (:mod:`bionic_core.training.multimodel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bionic_core.contract.errors import BionicError, first_line
from bionic_core.host import Catalogue
from bionic_core.studies.sweep_execution import (
    PendingRun,
    RunOutcome,
    SweepExecution,
    SweepObserver,
)
from bionic_core.studies.sweep_plan import SweepPlan
from bionic_core.studies.sweep_records import is_tracking_error
from bionic_core.studies.tracked_run import CHECKPOINT_DIR
from bionic_core.studies.tracking import MlflowStatus, Tracker


@dataclass
class SweepResult:
    plan: SweepPlan
    sweep_run_id: str
    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]


def run_sweep(plan: SweepPlan, catalogue: Catalogue, tracker: Tracker, *,
              observer: SweepObserver | None = None, retry_failed: bool = False,
              checkpoint_dir: Path = CHECKPOINT_DIR) -> SweepResult:
    """Run every planned run that has not finished yet; see the module docstring.

    A run that diverges or raises is recorded as failed and the sweep goes on; a user error
    (BionicError) or a tracking failure stops it (rerun the same command to resume).
    """
    observer = observer or SweepObserver()
    sweep = SweepExecution.prepare(plan, catalogue, tracker, observer, retry_failed,
                                   checkpoint_dir)
    open_runs: list[str] = []  # parent runs to end as KILLED if the sweep stops
    try:
        sweep_run_id, resumed = sweep.open_sweep_run()
        open_runs.append(sweep_run_id)
        result = SweepResult(plan, sweep_run_id)
        observer.sweep_started(plan, sweep_run_id, resumed)
        run_all = _run_grouped if plan.base.multimodel else _run_in_order
        complete = run_all(sweep, sweep_run_id, result, open_runs)
        sweep.close_sweep_run(sweep_run_id, complete, (o.status for o in result.outcomes))
        open_runs.remove(sweep_run_id)
        return result
    except BaseException as exc:
        if not is_tracking_error(exc):
            _kill_open_runs(tracker, open_runs)
            raise
        raise BionicError(f"tracking URI {tracker.uri}: {first_line(exc)[:300]} (the sweep "
                          "stopped; "
                          "rerun the same command to resume)") from exc


def _kill_open_runs(tracker: Tracker, open_runs: list[str]) -> None:
    """Leave no parent run looking alive."""
    for run_id in reversed(open_runs):
        try:
            tracker.end(run_id, MlflowStatus.KILLED)
        except Exception:  # noqa: BLE001 - the original error matters more
            pass


def _run_in_order(sweep: SweepExecution, sweep_run_id: str, result: SweepResult,
                  open_runs: list[str]) -> bool:
    """Run the plan run by run, configuration by configuration. Returns "every seed
    finished"."""
    index = 0
    complete = True
    for order, planned in enumerate(sweep.plan.configurations):
        config_run_id = sweep.open_configuration_run(sweep_run_id, order, planned)
        open_runs.append(config_run_id)
        for spec in planned.runs:
            outcome = sweep.run_one(spec, index, config_run_id)
            result.outcomes.append(outcome)
            sweep.observer.run_done(outcome, index)
            index += 1
        complete &= sweep.close_configuration(config_run_id, planned)
        open_runs.remove(config_run_id)
    return complete


def _run_grouped(sweep: SweepExecution, sweep_run_id: str, result: SweepResult,
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
        decided = sweep.decide(spec, config_runs[spec.configuration])
        if isinstance(decided, RunOutcome):
            report(decided)
        else:
            pending.append(PendingRun(spec, index, config_runs[spec.configuration], *decided))
    for group in compatible_groups([p.spec.config for p in pending], sweep.catalogue):
        sweep.run_together([pending[i] for i in group], report)
    result.outcomes.extend(outcomes[spec.key] for spec in plan.runs if spec.key in outcomes)
    complete = True
    for planned in plan.configurations:
        complete &= sweep.close_configuration(config_runs[planned.name], planned)
        open_runs.remove(config_runs[planned.name])
    return complete
