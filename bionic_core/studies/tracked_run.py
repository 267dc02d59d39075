"""A tracked run: one run spec trained with its checkpoint and recorded in MLflow."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bionic_core.config import RunConfig, resolve_features
from bionic_core.contract.errors import error_line
from bionic_core.data import Dataset
from bionic_core.host import Catalogue, FeatureFailure
from bionic_core.studies.tracking import (
    TAG_EXPERIMENT,
    MlflowStatus,
    Tracker,
    environment_tags,
    flatten_params,
    log_run_result,
    seed_run_tags,
)
from bionic_core.studies.training_images import log_training_images
from bionic_core.training.batch_progress import BatchCallback
from bionic_core.training.loop import RunResult, RunStatus, load_run_data, train_run

CHECKPOINT_DIR = Path(".bionic") / "checkpoints"


def checkpoint_path(config: RunConfig, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path:
    return checkpoint_dir / f"{config.key()}.pt"


@dataclass
class TrackedRun:
    """An MLflow run opened for one run spec, waiting for its training result."""

    config: RunConfig
    run_id: str
    checkpoint: Path
    data: Dataset
    on_epoch: Callable[[int, dict[str, float]], None]  # logs the epoch's row, then reports it
    on_batch: BatchCallback | None = None  # progress inside an epoch (not recorded)


def start_tracked(
    config: RunConfig,
    catalogue: Catalogue,
    tracker: Tracker,
    *,
    run_name: str | None = None,
    parent_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    run_id: str | None = None,
    on_batch: BatchCallback | None = None,
) -> TrackedRun:
    """Open (or continue, with ``run_id``) the MLflow run of ``config``; see :func:`run_tracked`."""
    from bionic_core.training.seeding import resolve_device

    config = resolve_features(config, catalogue, "run config")  # what training will key by
    data = load_run_data(config)
    device = str(resolve_device(config.device))
    spec = config.spec()  # resolved: every feature parameter with its default filled in
    tags = {**seed_run_tags(key=config.key(), seed=config.seed,
                            settings_key=config.settings_key(),
                            provenance=config.feature_provenance, dataset=data.name,
                            fingerprint=data.fingerprint(), is_demo=data.is_demo,
                            features=config.features),
            **environment_tags(device), **(extra_tags or {})}
    if run_id is None:
        run_id = tracker.start(config.experiment,
                               run_name or f"{config.experiment}-s{config.seed}", tags=tags,
                               params=flatten_params(spec, sorted(catalogue.entries)),
                               parent_id=parent_id)
    else:
        tracker.reopen(run_id)
        tracker.set_tags(run_id, {**tags, TAG_EXPERIMENT: config.experiment,
                                  **({"mlflow.parentRunId": parent_id} if parent_id else {})})

    def epoch_done(epoch: int, row: dict[str, float]) -> None:
        tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, row)

    return TrackedRun(config, run_id, checkpoint_path(config, checkpoint_dir), data, epoch_done,
                      on_batch)


def failure_line(exc: BaseException) -> str:
    """One line for a failed run: a feature's failure names the feature, its source and the
    hook; anything else is ``Type: first line of the message``."""
    return str(exc) if isinstance(exc, FeatureFailure) else error_line(exc)


def fail_tracked(tracker: Tracker, tracked: TrackedRun, exc: BaseException) -> None:
    """An exception marks the run FAILED (tag ``bionic.status`` = error, ``bionic.reason`` one
    line, ``bionic.failed_feature`` when a feature raised, the full traceback saved as the
    artifact ``traceback.txt``), an interrupt KILLED."""
    if isinstance(exc, Exception):
        tags = {"bionic.status": "error", "bionic.reason": failure_line(exc)[:500]}
        if isinstance(exc, FeatureFailure):
            tags.update({"bionic.failed_feature": exc.feature, "bionic.failed_hook": exc.hook})
        tracker.set_tags(tracked.run_id, tags)
        tracker.log_text(tracked.run_id, "".join(traceback.format_exception(exc)),
                         "traceback.txt")
        tracker.end(tracked.run_id, MlflowStatus.FAILED)
    else:
        tracker.end(tracked.run_id, MlflowStatus.KILLED)


def finish_tracked(tracker: Tracker, tracked: TrackedRun, result: RunResult) -> None:
    """Record the result, end the MLflow run and delete the checkpoint."""
    run_id = tracked.run_id
    if result.resumed_from_epoch:  # count the epochs trained before the interruption too
        result.train_seconds += sum(row.get("epoch_time", 0.0)
                                    for row in result.history[:result.resumed_from_epoch])
        # Epochs checkpointed before the interruption but not logged yet (or logged in an
        # earlier MLflow run) are logged now, each once.
        logged = {m.step for m in tracker.metric_history(run_id, "train_loss")}
        for row in result.history:
            if int(row["epoch"]) not in logged:
                tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"},
                                    step=int(row["epoch"]))
        tracker.set_tags(run_id, {"bionic.resumed_from_epoch": str(result.resumed_from_epoch)})
    log_run_result(tracker, run_id, result)
    if result.model_state is not None:  # what `bionic evaluate` checks its data against
        log_training_images(tracker, run_id, tracked.data)
    finished = result.status == RunStatus.FINISHED
    tracker.end(run_id, MlflowStatus.FINISHED if finished else MlflowStatus.FAILED)
    tracked.checkpoint.unlink(missing_ok=True)


def run_tracked(
    config: RunConfig,
    catalogue: Catalogue,
    tracker: Tracker,
    **options: Any,
) -> tuple[RunResult, str]:
    """Train ``config`` and record it as one MLflow run; returns ``(result, run_id)``.
    ``options`` are those of :func:`start_tracked` (run name, parent, tags, callbacks, the
    checkpoint folder, the interrupted run to continue).

    The epoch checkpoint lives under ``checkpoint_dir`` by run key, so an interrupted run
    continues where it stopped; it is deleted once the run is recorded as finished. ``run_id``
    continues that (interrupted) MLflow run instead of starting a new one: its params are
    write-once, so only its status and tags are updated. An exception marks the run FAILED
    (tag ``bionic.status`` = error, with the reason), an interrupt KILLED.
    """
    tracked = start_tracked(config, catalogue, tracker, **options)
    try:
        result = train_run(tracked.config, catalogue, checkpoint=tracked.checkpoint,
                           on_epoch=tracked.on_epoch, data=tracked.data,
                           on_batch=tracked.on_batch)
    except BaseException as exc:
        fail_tracked(tracker, tracked, exc)
        raise
    finish_tracked(tracker, tracked, result)
    return result, tracked.run_id
