"""A worker: claims queued runs one at a time, runs each through the sweep engine, keeps a
heartbeat, and gives a run back when it stops."""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.sweep_execution import RunOutcome, SweepExecution, SweepObserver
from bionic_core.studies.sweep_plan import RunSpec
from bionic_core.studies.sweep_records import is_tracking_error
from bionic_core.studies.tracked_run import CHECKPOINT_DIR
from bionic_core.studies.tracking import Tracker
from bionic_core.studies.tuning import (
    ATTR_KIND,
    absolute_url,
    display_url,
    open_storage,
    study_attrs,
)
from bionic_core.studies.work_queue.enqueue import plan_from_record
from bionic_core.studies.work_queue.queue_records import (
    ATTR_PLAN,
    ATTR_SWEEP,
    ATTR_TRACKING,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_RETRY,
    KEY,
    OUTCOME,
    QueueView,
    _trial_state,
    finalize_queue,
)


class _Heartbeat:
    """Records the trial's heartbeat now and then every ``interval`` seconds in a thread."""

    def __init__(self, storage: Any, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="bionic-heartbeat")

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the run goes on
                pass

    def __enter__(self) -> _Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class WorkerObserver:
    """Progress callbacks of :func:`work` (no-ops; the CLI draws Rich progress)."""

    def queue_opened(self, studies: list[str], tracking_uri: str) -> None: ...

    def run_started(self, study: str, spec: RunSpec, resumed_from_epoch: int | None) -> None: ...

    def epoch_done(self, spec: RunSpec, epoch: int, row: dict[str, float]) -> None: ...

    def batch_done(self, spec: RunSpec, epoch: int, done: int, batches: int) -> None:
        """Progress inside an epoch (at most twice a second)."""

    def run_note(self, spec: RunSpec, note: str) -> None:
        """A line about a run before it trains (retrained for changed code, not resumed)."""

    def run_done(self, record: WorkRecord) -> None: ...

    def waiting(self, running: int) -> None: ...


@dataclass
class WorkRecord:
    study: str
    trial: int
    key: str
    configuration: str
    seed: int
    outcome: str
    run_id: str = ""
    reason: str = ""
    seconds: float = 0.0


def _queue_studies(storage: Any, url: str, only: str | None) -> list[str]:
    names = [s.study_name for s in storage.get_all_studies()
             if s.user_attrs.get(ATTR_KIND) == "queue"]
    if only is not None:
        attrs = study_attrs(storage, only)
        if attrs is None:
            known = ", ".join(names) or "none"
            raise BionicError(f"--study {only}: no such study in {display_url(url)} "
                              f"(queue studies: {known})")
        if attrs.get(ATTR_KIND) != "queue":
            raise BionicError(f"--study {only}: not a work queue (a {attrs.get(ATTR_KIND)} "
                              "study); queues are made by `bionic ablate X --queue URL`")
        return [only]
    if not names:
        raise BionicError(f"--queue {display_url(url)}: no work queue in this storage "
                          "(make one with `bionic ablate EXPERIMENT --queue URL`)")
    return names


def _open_queue(storage: Any, name: str, catalogue: Catalogue, tracking_uri: str | None,
                device: str | None, checkpoint_dir: Path, adapter: SweepObserver) -> QueueView:
    import optuna

    attrs = study_attrs(storage, name) or {}
    record = dict(attrs[ATTR_PLAN])
    if device is not None:  # the device is not part of a run's identity: keys stay the same
        record["base"] = {**record["base"], "device": device}
    plan = plan_from_record(record, catalogue)
    if plan.sweep_id != attrs.get(ATTR_SWEEP):
        raise BionicError(f"queue {name}: this machine plans the sweep differently (sweep id "
                          f"{plan.sweep_id}, queued {attrs.get(ATTR_SWEEP)}): install the same "
                          "bionic version and feature plugins as the machine that queued it")
    uri = (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or attrs.get(ATTR_TRACKING))
    tracker = Tracker(uri)
    # Dataset and tracking store, before claiming.
    sweep = SweepExecution.prepare(plan, catalogue, tracker, adapter, False, checkpoint_dir)
    specs = {}
    index = 0
    for order, planned in enumerate(plan.configurations):
        for spec in planned.runs:
            specs[spec.key] = (order, index, spec)
            index += 1
    study = optuna.load_study(study_name=name, storage=storage)
    return QueueView(study, plan, tracker, sweep, specs)


def _claim(storage: Any, queue: QueueView) -> tuple[int, Any] | None:
    """Claim the first WAITING trial (atomic WAITING → RUNNING): its storage id (what every
    storage call takes) and the trial, or None."""
    from optuna.exceptions import UpdateFinishedTrialError

    study_id = storage.get_study_id_from_name(queue.study.study_name)
    for trial in storage.get_all_trials(study_id, deepcopy=False,
                                        states=(_trial_state().WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, state=_trial_state().RUNNING):
                return trial_id, storage.get_trial(trial_id)
        except UpdateFinishedTrialError:  # finished meanwhile by someone else
            continue
    return None


def _superseded(queue: QueueView, trial: Any) -> bool:
    """True when a lower-numbered trial of the same key is waiting, running or complete: that
    one is the key's run, this one a duplicate."""
    TrialState = _trial_state()
    key = trial.user_attrs.get(KEY)
    for other in queue.study.get_trials(deepcopy=False):
        if (other.number < trial.number and other.user_attrs.get(KEY) == key
                and other.user_attrs.get(OUTCOME) != "duplicate"
                and other.state in (TrialState.WAITING, TrialState.RUNNING,
                                    TrialState.COMPLETE)):
            return True
    return False


def _final_value(queue: QueueView, run_id: str) -> float | None:
    if not run_id:
        return None
    metrics = queue.tracker.get_run(run_id).data.metrics
    value = metrics.get("final_val_accuracy")
    return None if value is None else float(value)


class _Adapter(SweepObserver):
    def __init__(self, observer: WorkerObserver) -> None:
        self.observer, self.study = observer, ""

    def run_started(self, spec: RunSpec, index: int, resumed_from_epoch: int | None) -> None:
        self.observer.run_started(self.study, spec, resumed_from_epoch)

    def epoch_done(self, spec: RunSpec, epoch: int, row: dict[str, float]) -> None:
        self.observer.epoch_done(spec, epoch, row)

    def batch_done(self, spec: RunSpec, epoch: int, done: int, batches: int) -> None:
        self.observer.batch_done(spec, epoch, done, batches)

    def run_note(self, spec: RunSpec, note: str) -> None:
        self.observer.run_note(spec, note)


def _retry_later(storage: Any, queue: QueueView, trial_id: int, callback: Any, why: str) -> None:
    """Give the run back: this trial FAIL (with the reason) and a WAITING copy queued."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        storage.set_trial_user_attr(trial_id, OUTCOME, "error")
        storage.set_trial_user_attr(trial_id, "reason", why[:500])
        storage.set_trial_state_values(trial_id, state=_trial_state().FAIL)
    except UpdateFinishedTrialError:  # already failed as stale (and queued) by another worker
        return
    failed = storage.get_trial(trial_id)
    failed.user_attrs = {k: v for k, v in failed.user_attrs.items()
                         if k not in (OUTCOME, "reason", "worker")}  # the copy starts clean
    callback(queue.study, failed)


class Worker:
    """A worker attached to the queue studies of one storage; :meth:`run` does the work.

    Opening checks everything a user can get wrong (storage URL, study, dataset, tracking
    store, a plan this machine would plan differently) before any run is claimed.
    """

    def __init__(self, url: str, catalogue: Catalogue, *, study: str | None = None,
                 tracking_uri: str | None = None, device: str | None = None,
                 heartbeat_interval: int = DEFAULT_HEARTBEAT, grace_period: int | None = None,
                 max_retry: int = DEFAULT_MAX_RETRY,
                 checkpoint_dir: Path = CHECKPOINT_DIR) -> None:
        import optuna

        try:
            from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
            stale_arg = "heartbeat_stale_trial_callback"
        except ImportError:  # Optuna < 4.9
            from optuna.storages import RetryFailedTrialCallback as Retry
            stale_arg = "failed_trial_callback"

        if heartbeat_interval < 1:
            raise BionicError(f"--heartbeat-interval {heartbeat_interval}: expected at least 1")
        if grace_period is not None and grace_period <= heartbeat_interval:
            raise BionicError(f"--grace-period {grace_period}: must exceed the heartbeat "
                              f"interval ({heartbeat_interval} s)")
        if max_retry < 0:
            raise BionicError(f"--max-retry {max_retry}: expected 0 or more")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.url = absolute_url(url)
        self.catalogue, self.only, self.tracking_uri = catalogue, study, tracking_uri
        self.device, self.checkpoint_dir = device, checkpoint_dir
        self.heartbeat_interval = heartbeat_interval
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental heartbeat, deprecated aliases
            self.callback = Retry(max_retry=max_retry)
        self.storage = open_storage(self.url, "--queue", heartbeat_interval=heartbeat_interval,
                                    grace_period=grace_period, **{stale_arg: self.callback})
        self.adapter = _Adapter(WorkerObserver())
        self.queues: list[QueueView] = []
        self._open_new(_queue_studies(self.storage, self.url, study))
        self.me = f"{socket.gethostname()}:{os.getpid()}"

    def _open_new(self, names: list[str]) -> None:
        seen = {q.study.study_name for q in self.queues}
        self.queues += [_open_queue(self.storage, name, self.catalogue, self.tracking_uri,
                                    self.device, self.checkpoint_dir, self.adapter)
                        for name in names if name not in seen]

    def _claim_any(self) -> tuple[QueueView, int, Any] | None:
        """The queue, storage id and trial of the first trial claimed, or None."""
        return next(((q, *c) for q in self.queues if (c := _claim(self.storage, q)) is not None),
                    None)

    def _fail_stale(self) -> None:
        """Dead workers' runs: FAIL, and a WAITING copy queued."""
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for queue in self.queues:
                optuna.storages.fail_stale_trials(queue.study)

    def _running(self) -> int:
        """How many runs of the queues are running (here or elsewhere)."""
        running = (_trial_state().RUNNING,)
        return sum(len(q.study.get_trials(deepcopy=False, states=running)) for q in self.queues)

    def run(self, *, max_runs: int | None = None, wait: bool = True,
            observer: WorkerObserver | None = None) -> list[WorkRecord]:
        """Claim and run queued runs until none is waiting (and, with ``wait``, none is running
        elsewhere either: a dead worker's run comes back after the grace period)."""
        observer = observer or WorkerObserver()
        self.adapter.observer = observer
        observer.queue_opened([q.study.study_name for q in self.queues],
                              ", ".join(sorted({q.tracker.uri for q in self.queues})))
        records: list[WorkRecord] = []
        while max_runs is None or len(records) < max_runs:
            self._fail_stale()
            claimed = self._claim_any()
            if claimed is None and self.only is None:  # queues made since this one started
                self._open_new(_queue_studies(self.storage, self.url, None))
                claimed = self._claim_any()
            if claimed is None:
                running = self._running()
                if not wait or running == 0:
                    break
                observer.waiting(running)
                time.sleep(min(self.heartbeat_interval, 10))
                continue
            queue, trial_id, trial = claimed
            with _Heartbeat(self.storage, trial_id, self.heartbeat_interval):
                records.append(_run_claimed(self.storage, queue, trial_id, trial, self.adapter,
                                            self.callback, self.me))
            observer.run_done(records[-1])
            finalize_queue(queue)
        return records


def work(url: str, catalogue: Catalogue, *, max_runs: int | None = None, wait: bool = True,
         observer: WorkerObserver | None = None, **options: Any) -> list[WorkRecord]:
    """``Worker(url, catalogue, **options).run(...)``: see :class:`Worker`."""
    return Worker(url, catalogue, **options).run(max_runs=max_runs, wait=wait,
                                                 observer=observer)


def _close_trial(storage: Any, trial_id: int, record: WorkRecord, state: Any, outcome: str,
                 reason: str = "", value: float | None = None) -> None:
    """Record the outcome (on the trial and in ``record``) and set the trial's final state."""
    from optuna.exceptions import UpdateFinishedTrialError

    record.outcome, record.reason = outcome, reason
    try:
        storage.set_trial_user_attr(trial_id, OUTCOME, outcome)
        if reason:
            storage.set_trial_user_attr(trial_id, "reason", reason[:500])
        if record.run_id:
            storage.set_trial_user_attr(trial_id, "mlflow_run_id", record.run_id)
        storage.set_trial_state_values(trial_id, state=state,
                                       values=None if value is None else [value])
    except UpdateFinishedTrialError:
        # Failed as stale by another worker meanwhile (a heartbeat was missed): the run
        # itself is recorded in MLflow, and its retry will find it finished there.
        record.reason = f"{reason} (the trial was already closed as stale)".strip()


def _run_key(storage: Any, queue: QueueView, trial_id: int, trial: Any, callback: Any,
             me: str) -> RunOutcome:
    """Run the trial's run key through the sweep machinery. Any exception gives the run back
    to the queue and stops this worker."""
    order, index, spec = queue.specs[trial.user_attrs.get(KEY, "")]
    sweep = queue.sweep
    sweep.retry_failed = bool(trial.user_attrs.get("retry_failed", False))
    try:
        sweep_run_id, _ = sweep.open_sweep_run()
        config_run_id = sweep.open_configuration_run(sweep_run_id, order,
                                                     queue.plan.configurations[order])
        return sweep.run_one(spec, index, config_run_id)
    except BaseException as exc:  # a user error, the tracking store, an interrupt:
        why = f"{type(exc).__name__}: {exc}"  # the run goes back to the queue, this worker stops
        _retry_later(storage, queue, trial_id, callback, f"worker {me} stopped: {why}")
        if (isinstance(exc, Exception) and not isinstance(exc, BionicError)
                and is_tracking_error(exc)):
            raise BionicError(f"tracking URI {queue.tracker.uri}: {why[:300]} (the run "
                              "went back to the queue)") from exc
        raise


def _run_claimed(storage: Any, queue: QueueView, trial_id: int, trial: Any, adapter: _Adapter,
                 callback: Any, me: str) -> WorkRecord:
    """Run a claimed trial (unless its key is unknown or another trial of the key comes
    first) and close it: COMPLETE when its run finished or was done already, else FAIL."""
    TrialState = _trial_state()
    key = trial.user_attrs.get(KEY, "")
    name = queue.study.study_name
    storage.set_trial_user_attr(trial_id, "worker", me)
    record = WorkRecord(name, trial.number, key, trial.user_attrs.get("configuration", "?"),
                        int(trial.user_attrs.get("seed", -1)), "error")
    if key not in queue.specs:
        _close_trial(storage, trial_id, record, TrialState.FAIL, "error",
                     f"run key {key!r} is not in the plan of {name}")
        return record
    if _superseded(queue, trial):
        _close_trial(storage, trial_id, record, TrialState.PRUNED, "duplicate",
                     "another trial of this run key comes first")
        return record
    adapter.study = name
    began = time.perf_counter()
    outcome = _run_key(storage, queue, trial_id, trial, callback, me)
    record.run_id, record.seconds = outcome.run_id, time.perf_counter() - began
    if outcome.ok:
        _close_trial(storage, trial_id, record, TrialState.COMPLETE, outcome.status,
                     outcome.reason, _final_value(queue, outcome.run_id) or 0.0)
    else:
        _close_trial(storage, trial_id, record, TrialState.FAIL, outcome.status, outcome.reason)
    return record
