"""A sweep's runs as shared work in Optuna's RDB storage, for workers on any number of machines.

``bionic ablate X --queue URL`` stores the plan (the experiment's resolved config and design) as
a *queue study* and each planned run as one WAITING trial carrying its run key; a key is queued
once, however often the command is repeated. ``bionic worker --queue URL`` claims WAITING trials
(Optuna's atomic WAITING → RUNNING), runs each through the ablation engine
(:mod:`bionic_core.studies.sweep_execution`: same MLflow hierarchy, skip when MLflow already holds a
finished run of the key, resume from a local checkpoint) and marks the trial COMPLETE or FAIL.

Exactly once: a claimed trial runs only when no lower-numbered trial of its key is waiting,
running or complete (so even keys queued twice by two concurrent commands run once), and only
when MLflow has no finished run of the key. A worker that dies stops its heartbeat; after the
grace period any live worker fails its trial and Optuna's retry callback queues a copy
(``RetryHeartbeatStaleTrialCallback``), so no run is held forever.
"""

from bionic_core.studies.work_queue.enqueue import EnqueueResult, enqueue_plan, plan_from_record
from bionic_core.studies.work_queue.queue_records import (
    ATTR_PLAN,
    ATTR_SWEEP,
    ATTR_TRACKING,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_RETRY,
    KEY,
    OUTCOME,
)
from bionic_core.studies.work_queue.worker import Worker, WorkerObserver, WorkRecord, work

__all__ = ["ATTR_PLAN", "ATTR_SWEEP", "ATTR_TRACKING", "DEFAULT_HEARTBEAT", "DEFAULT_MAX_RETRY",
           "KEY", "OUTCOME", "EnqueueResult", "WorkRecord", "Worker", "WorkerObserver",
           "enqueue_plan", "plan_from_record", "work"]
