"""The shared work queue of a sweep: `bionic ablate --queue` fills it, `bionic worker` runs it."""

from __future__ import annotations

import json
import signal
from typing import Any

import typer
from bionic_cli.console import err_console, out_console
from bionic_cli.options import DeviceOpt, JsonOpt, epoch_progress, epoch_status, start_run_task
from rich.table import Table

from bionic_core.contract.errors import BionicError
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
MaxRunsOpt = typer.Option(None, "--max-runs", help="stop after this many runs")
NoWaitOpt = typer.Option(False, "--no-wait", help="stop when nothing is waiting, "
                         "even if other workers still run (default: wait, to take "
                         "over the runs of workers that die)")
HeartbeatOpt = typer.Option(60, "--heartbeat-interval",
                            help="seconds between heartbeats of a run")
GracePeriodOpt = typer.Option(
    None, "--grace-period", help="seconds without heartbeat before a run counts as dead "
    "and is queued again (default: twice the heartbeat interval)")
MaxRetryOpt = typer.Option(3, "--max-retry", help="times a dead worker's run is "
                           "queued again")


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
) -> None:
    """Run queued sweep runs until none is left (start one per machine or per GPU)."""
    from bionic_core.studies.work_queue import Worker

    if max_runs is not None and max_runs < 1:
        raise BionicError(f"--max-runs {max_runs}: expected at least 1")
    opened = Worker(queue, load_catalogue(), study=study, tracking_uri=tracking_uri,
                    device=device, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, max_retry=max_retry)
    records = _work(opened, max_runs=max_runs, wait=not no_wait)
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


def _work(opened: Any, *, max_runs: int | None, wait: bool) -> list[Any]:
    """Run the worker under a progress display, SIGTERM handled as Ctrl-C; its run records."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with epoch_progress(0, "worker") as progress:
            return opened.run(max_runs=max_runs, wait=wait, observer=_worker_observer(progress))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_observer(progress: Any) -> Any:
    from bionic_core.studies.work_queue import WorkerObserver

    class RichObserver(WorkerObserver):
        def __init__(self) -> None:
            self.task = progress.add_task("waiting for work", total=None, status="")
            self.done = 0

        def queue_opened(self, studies: list[str], tracking_uri: str) -> None:
            progress.console.print(f"worker: queues {', '.join(studies)}; MLflow {tracking_uri}")

        def run_started(self, study: str, spec: Any, resumed_from: int | None) -> None:
            start_run_task(progress, self.task, spec, resumed_from)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            progress.update(self.task, completed=epoch, status=epoch_status(row, loss=False))

        def run_done(self, record: Any) -> None:
            self.done += 1
            progress.console.print(f"{record.configuration} seed {record.seed} ({record.key}): "
                                   f"{record.outcome}" + (f": {record.reason}"
                                                          if record.reason else ""))

        def waiting(self, running: int) -> None:
            progress.update(self.task, description="waiting",
                            status=f"{running} run(s) still running elsewhere")

    return RichObserver()


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
