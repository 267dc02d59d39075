"""The shared work queue of a sweep: `bionic ablate --queue` fills it, `bionic worker` runs it."""

from __future__ import annotations

import json
import signal
from typing import Any

import typer
from bionic_cli.console import err_console, out_console
from bionic_cli.options import DeviceOpt, JsonOpt, QuietOpt, number_range
from bionic_cli.progress import Board
from bionic_cli.progress_observers import worker_observer
from rich.table import Table

from bionic_core.host import load_catalogue


# ---------------------------------------------------------------- bionic ablate --queue
def enqueue_sweep(plan: Any, catalogue: Any, tracking_uri: str | None, queue: str,
                  retry_failed: bool, as_json: bool) -> None:
    """`bionic ablate EXPERIMENT --queue URL`: queue the plan's runs for `bionic worker`."""
    from bionic_core.studies.tracking import Tracker
    from bionic_core.studies.work_queue import enqueue_plan

    tracker = Tracker(tracking_uri)
    result = enqueue_plan(plan, catalogue, tracker, queue, retry_failed=retry_failed)
    if as_json:
        typer.echo(json.dumps({
            "queue": result.storage, "study": result.study, "sweep_id": result.sweep_id,
            "sweep_run_id": result.sweep_run_id, "tracking_uri": tracker.uri,
            "n_runs": len(plan.runs), "enqueued": result.enqueued, "present": result.present,
            "held_back": result.held_back}))
        return
    err_console.print(f"queue {result.study} in {result.storage}: {len(result.enqueued)} runs "
                      f"queued, {len(result.present)} already queued, running or done"
                      + (f", {len(result.held_back)} diverged before (--retry-failed queues "
                         "them)" if result.held_back else "")
                      + f"; sweep {plan.sweep_id}, MLflow {tracker.uri}")
    if tracker.uri.startswith(("sqlite:", "file:")) or "://" not in tracker.uri:
        err_console.print("note: the tracking store is a local file: workers on other machines "
                          "need --tracking-uri of a shared MLflow server")
    err_console.print(f"start workers with: bionic worker --queue {result.storage}")


# ---------------------------------------------------------------- bionic worker
QueueOpt = typer.Option(..., "--queue", help="the queue's storage URL (as given to "
                        "`bionic ablate EXPERIMENT --queue URL`)")
StudyOpt = typer.Option(None, "--study", help="work on this queue only "
                        "(default: every queue in the storage)")
WorkerTrackingOpt = typer.Option(
    None, "--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else "
    "the one the queue was made with)")
MaxRunsOpt = typer.Option(None, "--max-runs", help="stop after this many runs (at least 1)",
                          callback=number_range(1))
NoWaitOpt = typer.Option(False, "--no-wait", help="stop when nothing is waiting, "
                         "even if other workers still run (default: wait, to take "
                         "over the runs of workers that die)")
HeartbeatOpt = typer.Option(60, "--heartbeat-interval",
                            help="seconds between heartbeats of a run (at least 1)",
                            callback=number_range(1))
GracePeriodOpt = typer.Option(
    None, "--grace-period", help="seconds without heartbeat before a run counts as dead "
    "and is queued again (at least 1; default: twice the heartbeat interval)",
    callback=number_range(1))
MaxRetryOpt = typer.Option(3, "--max-retry", help="times a dead worker's run is "
                           "queued again (0 or more)", callback=number_range(0))


def worker(
    queue: str = QueueOpt,
    study: str | None = StudyOpt,
    tracking_uri: str | None = WorkerTrackingOpt,
    device: str | None = DeviceOpt,
    max_runs: int | None = MaxRunsOpt,
    no_wait: bool = NoWaitOpt,
    heartbeat_interval: int = HeartbeatOpt,
    grace_period: int | None = GracePeriodOpt,
    max_retry: int = MaxRetryOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Run queued sweep runs until none is left (start one per machine or per GPU)."""
    with Board(quiet=quiet) as board:
        board.phase(f"opening the queue {queue} …")
        from bionic_core.studies.work_queue import Worker

        opened = Worker(queue, load_catalogue(), study=study, tracking_uri=tracking_uri,
                        device=device, heartbeat_interval=heartbeat_interval,
                        grace_period=grace_period, max_retry=max_retry)
        records = _work(opened, board, max_runs=max_runs, wait=not no_wait)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if as_json:
        typer.echo(json.dumps(_worker_summary(counts, records)))
    else:
        out_console.print(_worker_table(counts, records))
    if any(r.outcome in ("failed", "error") for r in records):
        raise typer.Exit(1)


def _terminate(signum: int, frame: Any) -> None:
    """`kill`: stop like Ctrl-C, so that the worker gives its run back first."""
    raise KeyboardInterrupt


def _work(opened: Any, board: Board, *, max_runs: int | None, wait: bool) -> list[Any]:
    """Run the worker on ``board``, SIGTERM handled as Ctrl-C; its run records."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        board.start_sweep("worker: runs done", max_runs)
        return opened.run(max_runs=max_runs, wait=wait, observer=worker_observer(board))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_summary(counts: dict[str, int], records: list[Any]) -> dict[str, Any]:
    """The JSON document of `bionic worker --json`."""
    return {"counts": counts, "runs": [
        {"study": r.study, "trial": r.trial, "key": r.key, "configuration": r.configuration,
         "seed": r.seed, "outcome": r.outcome, "run_id": r.run_id, "reason": r.reason,
         "seconds": round(r.seconds, 3)} for r in records]}


def _worker_table(counts: dict[str, int], records: list[Any]) -> Table:
    table = Table(title="runs of this worker: " + (", ".join(
        f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    for column in ("queue", "configuration", "seed", "key", "outcome", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        table.add_row(r.study, r.configuration, str(r.seed), r.key, r.outcome,
                      f"{r.seconds:.1f}")
    return table
