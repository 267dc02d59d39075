"""How an ablation sweep is recorded in MLflow: the tags of its runs, finding them again, the
run counts of a finished sweep, and telling a tracking-store failure from any other error.

MLflow holds the hierarchy sweep (parent) → configuration → seed runs; the tags below tie them
together, so that a rerun finds its sweep and configuration runs again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.studies.tracking import TAG_DATA_FINGERPRINT, MlflowStatus, Tracker

TAG_SWEEP = "bionic.sweep_id"
TAG_DESIGN = "bionic.design"
TAG_CONFIGURATION = "bionic.configuration"
TAG_CONFIG_KEY = "bionic.config_key"
TAG_STATUS = "bionic.status"  # on seed runs: finished | failed (diverged) | error (exception)
TAG_REASON = "bionic.reason"
TAG_RUN_KEYS = "bionic.run_keys"  # on a configuration run: seed:key,... of its planned seeds
PARENT = "mlflow.parentRunId"
class Outcome(StrEnum):
    """How a planned run of a sweep ended (see sweep_execution.RunOutcome)."""

    FINISHED = "finished"  # trained to the end now
    SKIPPED = "skipped"  # finished before: reused
    FAILED = "failed"  # diverged (a result, recorded)
    ERROR = "error"  # raised (a feature or the machine failed)
    PREVIOUSLY_FAILED = "previously-failed"  # diverged before; not retried

    @property
    def ok(self) -> bool:
        return self in (Outcome.FINISHED, Outcome.SKIPPED)


RUN_STATUSES = tuple(Outcome)


def is_tracking_error(exc: BaseException) -> bool:
    """True for a failure of the tracking store (MLflow, its HTTP server), not of a run."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    return isinstance(exc, (MlflowException, RequestException))


def search_runs(tracker: Tracker, experiment_ids: Sequence[str], filter_string: str,
                order_by: list[str] | None = None) -> list[Any]:
    """Every run of ``experiment_ids`` that matches ``filter_string`` (all result pages)."""
    return tracker.search_runs(list(experiment_ids), filter_string, order_by)


def quote(value: str) -> str:
    """``value`` as a string literal of an MLflow filter."""
    return "'" + value.replace("'", "\\'") + "'"


def latest_run(runs: Iterable[Any]) -> Any | None:
    """The run that started last, or None."""
    return max(runs, key=lambda r: r.info.start_time or 0, default=None)


def kill_runs(tracker: Tracker, runs: Iterable[Any], why: str) -> None:
    """End ``runs`` as KILLED, with ``why`` as their reason."""
    for run in runs:
        tracker.set_tags(run.info.run_id, {TAG_REASON: why[:500]})
        tracker.end(run.info.run_id, MlflowStatus.KILLED)


def run_counts(statuses: Iterable[str]) -> dict[str, float]:
    """The ``runs_<status>`` metrics of a sweep run: how many runs ended in each status."""
    statuses = list(statuses)
    return {f"runs_{s.replace('-', '_')}": float(sum(v == s for v in statuses))
            for s in RUN_STATUSES}


def refuse_other_data(run: Any, what: str, dataset: str, fingerprint: str) -> None:
    """Raise one line when ``run`` was trained on other data than ``fingerprint`` (the same
    path with other content): its results must not be mixed into this sweep."""
    theirs = run.data.tags.get(TAG_DATA_FINGERPRINT)
    if theirs and theirs != fingerprint:
        raise BionicError(
            f"{what} (MLflow run {run.info.run_id}) was trained on data with fingerprint "
            f"{theirs}, but {dataset} now has fingerprint {fingerprint}: refusing to mix them "
            "(restore the data, or record this sweep in another MLflow store or under another "
            "experiment name)")
