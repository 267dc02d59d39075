"""The observers of a sweep, a tuning study and a queue worker, drawn on a :class:`Board`.

Each factory imports its observer base class when called (they pull in torch and MLflow).
"""

from __future__ import annotations

from typing import Any

from bionic_cli.progress import Board


def run_label(spec: Any) -> str:
    """A run of a sweep, as its row and lines name it."""
    return f"{spec.configuration} s{spec.seed}"


def sweep_observer(board: Board) -> Any:
    """A :class:`~bionic_core.studies.sweep_execution.SweepObserver` on ``board``."""
    from bionic_core.studies.sweep_execution import SweepObserver

    class BoardObserver(SweepObserver):
        def sweep_started(self, plan: Any, sweep_run_id: str, resumed: bool) -> None:
            if resumed:
                board.note(f"resuming sweep {plan.name} (MLflow run {sweep_run_id}): finished "
                           "runs are skipped")

        def run_started(self, spec: Any, index: int, resumed_from: int | None) -> None:
            board.run_started(spec.key, run_label(spec), spec.config.epochs, resumed_from)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            board.epoch(spec.key, epoch, row)

        def batch_done(self, spec: Any, epoch: int, done: int, batches: int) -> None:
            board.batch(spec.key, epoch, done, batches)

        def run_note(self, spec: Any, note: str) -> None:
            board.note(note)

        def run_done(self, outcome: Any, index: int) -> None:
            board.run_finished(outcome.spec.key)
            why = f": {outcome.reason}" if outcome.reason else ""
            board.sweep_advance(index + 1, f"{run_label(outcome.spec)} {outcome.status}{why}",
                                None if outcome.ok else "red")

    return BoardObserver()


def tune_observer(board: Board, epochs: int) -> Any:
    """A :class:`~bionic_core.studies.tuning.TuneObserver` on ``board``: one row per trial."""
    from bionic_core.studies.tuning import TuneObserver

    class BoardObserver(TuneObserver):
        def __init__(self) -> None:
            self.done = 0

        def trial_started(self, number: int, values: dict[str, Any]) -> None:
            board.note(f"trial {number}: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))
            board.run_started(f"trial {number}", f"trial {number}", epochs)

        def epoch_done(self, number: int, epoch: int, row: dict[str, float]) -> None:
            board.epoch(f"trial {number}", epoch, row)

        def batch_done(self, number: int, epoch: int, done: int, batches: int) -> None:
            board.batch(f"trial {number}", epoch, done, batches)

        def trial_done(self, trial: Any) -> None:
            self.done += 1
            board.run_finished(f"trial {trial.number}")
            value = "" if trial.value is None else f" {trial.value:.4f}"
            board.sweep_advance(self.done, f"trial {trial.number} "
                                           f"{trial.state.name.lower()}{value}")

    return BoardObserver()


def worker_observer(board: Board) -> Any:
    """A :class:`~bionic_core.studies.work_queue.WorkerObserver` on ``board``."""
    from bionic_core.studies.work_queue import WorkerObserver

    class BoardObserver(WorkerObserver):
        def __init__(self) -> None:
            self.done = 0

        def queue_opened(self, studies: list[str], tracking_uri: str) -> None:
            board.note(f"worker: queues {', '.join(studies)}; MLflow {tracking_uri}")
            board.phase("")

        def run_started(self, study: str, spec: Any, resumed_from: int | None) -> None:
            board.phase("")
            board.run_started(spec.key, run_label(spec), spec.config.epochs, resumed_from)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            board.epoch(spec.key, epoch, row)

        def batch_done(self, spec: Any, epoch: int, done: int, batches: int) -> None:
            board.batch(spec.key, epoch, done, batches)

        def run_note(self, spec: Any, note: str) -> None:
            board.note(note)

        def run_done(self, record: Any) -> None:
            self.done += 1
            board.run_finished(record.key)
            why = f": {record.reason}" if record.reason else ""
            board.sweep_advance(self.done, f"{record.configuration} s{record.seed} "
                                           f"({record.key}) {record.outcome}{why}")

        def waiting(self, running: int) -> None:
            board.phase(f"waiting: {running} run(s) still running elsewhere")

    return BoardObserver()
