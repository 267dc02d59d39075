"""A tracked run: one run spec trained with its checkpoint and recorded in MLflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bionic_core.config import RunConfig
from bionic_core.plugin_manager import Catalogue
from bionic_core.tracking import (
    TAG_KEY,
    TAG_KIND,
    Tracker,
    environment_tags,
    flatten_params,
    log_run_result,
)
from bionic_core.training import RunResult, load_run_data, train_run

CHECKPOINT_DIR = Path(".bionic") / "checkpoints"


def checkpoint_path(config: RunConfig, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path:
    return checkpoint_dir / f"{config.key()}.pt"


def run_tracked(
    config: RunConfig,
    catalogue: Catalogue,
    tracker: Tracker,
    *,
    run_name: str | None = None,
    parent_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: Path = CHECKPOINT_DIR,
) -> tuple[RunResult, str]:
    """Train ``config`` and record it as one MLflow run; returns ``(result, run_id)``.

    The epoch checkpoint lives under ``checkpoint_dir`` by run key, so an interrupted run
    continues where it stopped; it is deleted once the run is recorded as finished.
    """
    from bionic_core.seeding import resolve_device

    data = load_run_data(config)
    device = str(resolve_device(config.device))
    spec = config.spec()
    tags = {TAG_KEY: config.key(), TAG_KIND: "run", "bionic.seed": str(config.seed),
            "bionic.dataset": data.name, "bionic.dataset_fingerprint": data.fingerprint(),
            "bionic.dataset_is_demo": str(data.is_demo),
            "bionic.features": ",".join(sorted(config.features)) or "(none)",
            **environment_tags(device), **(extra_tags or {})}
    run_id = tracker.start(config.experiment, run_name or f"{config.experiment}-s{config.seed}",
                           tags=tags, params=flatten_params(spec, sorted(catalogue.entries)),
                           parent_id=parent_id)

    def epoch_done(epoch: int, row: dict[str, float]) -> None:
        tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, row)

    checkpoint = checkpoint_path(config, checkpoint_dir)
    try:
        result = train_run(config, catalogue, checkpoint=checkpoint, on_epoch=epoch_done,
                           data=data)
    except BaseException:
        tracker.end(run_id, "KILLED")
        raise
    log_run_result(tracker, run_id, result)
    tracker.end(run_id, "FINISHED" if result.status == "finished" else "FAILED")
    checkpoint.unlink(missing_ok=True)
    return result, run_id
