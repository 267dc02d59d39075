"""The shared work queue: `bionic ablate X --queue URL` and `bionic worker --queue URL` on SQLite
(in this process) and on a real PostgreSQL server (worker processes, one killed mid-run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.studies.work_queue import work

from .conftest import one_error_line
from .test_sweep import runs_of

runner = CliRunner()
PG_ENV = "BIONIC_TEST_POSTGRES_URL"

EXPERIMENTS = """
[experiments.{name}]
dataset = "demo-small"
features = ["layer_norm"]
hidden_sizes = [{width}, {width}]
batch_size = 64
epochs = {epochs}
patience = 0
seeds = [0, 1]
device = "cpu"
"""
TWO_BY_TWO = ["--design", "explicit", "--configuration", "none", "--configuration",
              "layer_norm"]



def _postgres() -> tuple[str | None, str]:
    url = os.environ.get(PG_ENV)
    if not url:
        return None, f"{PG_ENV} is not set (.ci/postgres starts a server and sets it)"
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return None, f"PostgreSQL at {PG_ENV} is unreachable: {str(exc).splitlines()[0]}"
    return url, ""


PG_URL, PG_REASON = _postgres()
needs_postgres = pytest.mark.skipif(PG_URL is None, reason=PG_REASON)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per process (see test_tuning.one_thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def queue_dir(store):
    """A working dir with an empty MLflow store and a uniquely named tiny experiment (so that
    queue studies left in a shared PostgreSQL database never collide)."""
    name = f"q{uuid.uuid4().hex[:8]}"
    (store / "exp.toml").write_text(EXPERIMENTS.format(name=name, width=16, epochs=1))
    return store, name


def _enqueue(name: str, url: str, *design: str) -> dict:
    result = runner.invoke(app, ["ablate", name, "--experiments", "exp.toml",
                                 *(design or TWO_BY_TWO), "--queue", url, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _finished_runs(uri: str, experiment: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in runs_of(uri, experiment, "run"):
        if run.info.status == "FINISHED":
            out.setdefault(run.data.tags["bionic.run_key"], []).append(run)
    return out


def _complete_keys(url: str, study: str) -> list[str]:
    trials = optuna.load_study(study_name=study, storage=url).trials
    return sorted(t.user_attrs["run_key"] for t in trials
                  if t.state == optuna.trial.TrialState.COMPLETE)


# ============================================================================ SQLite


def test_queue_dedupes_and_a_worker_finishes_each_key_once(queue_dir, catalogue):
    tmp, name = queue_dir
    url = f"sqlite:///{tmp / 'queue.db'}"
    first = _enqueue(name, url)
    assert len(first["enqueued"]) == 4 and first["present"] == []
    again = _enqueue(name, url)  # the same command twice: nothing is queued twice
    assert again["enqueued"] == [] and sorted(again["present"]) == sorted(first["enqueued"])
    study = optuna.load_study(study_name=first["study"], storage=url)
    assert len(study.trials) == 4
    # A second, concurrent `ablate --queue` could still add a key twice: it runs once anyway.
    study.enqueue_trial({}, user_attrs={"run_key": first["enqueued"][0],
                                        "configuration": "dup", "seed": 0})

    records = work(url, catalogue, heartbeat_interval=1, wait=False)
    outcomes = sorted(r.outcome for r in records)
    assert outcomes == ["duplicate"] + ["finished"] * 4, [r.reason for r in records]
    uri = os.environ["MLFLOW_TRACKING_URI"]
    finished = _finished_runs(uri, name)
    assert sorted(finished) == sorted(first["enqueued"])
    assert all(len(runs) == 1 for runs in finished.values())
    assert _complete_keys(url, first["study"]) == sorted(first["enqueued"])
    # The queue leaves the same MLflow hierarchy as a local sweep, closed.
    (sweep,) = runs_of(uri, name, "sweep")
    assert sweep.info.run_id == first["sweep_run_id"] and sweep.info.status == "FINISHED"
    assert sweep.data.metrics["runs_finished"] == 4
    configurations = runs_of(uri, name, "configuration")
    assert len(configurations) == 2
    assert all(c.info.status == "FINISHED" and c.data.metrics["seeds_finished"] == 2
               for c in configurations)

    assert _enqueue(name, url)["enqueued"] == []  # done keys are not queued again
    assert work(url, catalogue, heartbeat_interval=1, wait=False) == []
    assert all(r.info.status == "FINISHED" for r in runs_of(uri, name))  # nothing left open


def test_a_stopped_worker_gives_its_run_back_at_once(queue_dir, catalogue, monkeypatch):
    from bionic_core.studies.sweep_execution import SweepExecution

    tmp, name = queue_dir
    url = f"sqlite:///{tmp / 'queue.db'}"
    queued = _enqueue(name, url)

    def interrupted(self, spec, index, configuration_run_id):
        raise KeyboardInterrupt  # what `kill` (SIGTERM) or Ctrl-C raises in a worker

    monkeypatch.setattr(SweepExecution, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        work(url, catalogue, heartbeat_interval=1, wait=False)
    trials = optuna.load_study(study_name=queued["study"], storage=url).trials
    assert [t.state.name for t in trials] == ["FAIL"] + ["WAITING"] * 4
    assert trials[0].user_attrs["outcome"] == "error"
    assert "KeyboardInterrupt" in trials[0].user_attrs["reason"]
    copy = trials[4]  # the given-back run, queued again with its key and no outcome
    assert copy.user_attrs["run_key"] == trials[0].user_attrs["run_key"]
    assert "outcome" not in copy.user_attrs and copy.system_attrs["failed_trial"] == 0


def test_an_interrupted_run_without_its_checkpoint_here_is_retrained_and_says_so(queue_dir,
                                                                                catalogue):
    from bionic_core.studies.tracking import TAG_KEY, TAG_KIND, Tracker
    from bionic_core.studies.work_queue import WorkerObserver

    tmp, name = queue_dir
    url = f"sqlite:///{tmp / 'queue.db'}"
    (key,) = _enqueue(name, url, "--design", "explicit", "--configuration", "none",
                      "--seeds", "1")["enqueued"]
    uri = os.environ["MLFLOW_TRACKING_URI"]
    # An attempt interrupted in another directory: RUNNING in MLflow, its checkpoint elsewhere.
    elsewhere = Tracker(uri).start(name, "elsewhere", tags={TAG_KEY: key, TAG_KIND: "run"})

    class Notes(WorkerObserver):
        def __init__(self) -> None:
            self.notes: list[str] = []
            self.resumed: list[int | None] = []

        def run_note(self, spec, note):
            self.notes.append(note)

        def run_started(self, study, spec, resumed_from_epoch):
            self.resumed.append(resumed_from_epoch)

    seen = Notes()
    (record,) = work(url, catalogue, heartbeat_interval=1, wait=False, observer=seen)
    assert record.outcome == "finished" and seen.resumed == [None]
    (note,) = seen.notes
    where = str((Path.cwd() / ".bionic" / "checkpoints").resolve())
    assert "interrupted" in note and where in note and "from epoch 1" in note
    runs = {r.info.run_id: r.info.status for r in runs_of(uri, name, "run")}
    assert runs.pop(elsewhere) == "KILLED" and list(runs.values()) == ["FINISHED"]


def test_worker_and_queue_bad_input_is_one_line(queue_dir):
    tmp, name = queue_dir
    empty = f"sqlite:///{tmp / 'empty.db'}"
    optuna.create_study(study_name="tune-x", storage=empty).set_user_attr("bionic.kind", "tune")
    worker = ["worker", "--heartbeat-interval", "1", "--no-wait"]
    one_error_line(runner.invoke(app, [*worker, "--queue", empty]), "no work queue")
    one_error_line(runner.invoke(app, [*worker, "--queue", empty, "--study", "tune-x"]),
                   "--study tune-x: not a work queue")
    one_error_line(runner.invoke(app, [*worker, "--queue", empty, "--study", "nope"]),
                   "--study nope: no such study")
    bad = "postgresql+psycopg2://me:secret@127.0.0.1:1/db"
    line = one_error_line(runner.invoke(app, [*worker, "--queue", bad]), "cannot be used")
    assert "secret" not in line
    one_error_line(runner.invoke(app, ["ablate", name, "--experiments", "exp.toml",
                                       "--queue", bad]), "--queue", "cannot be used")
    one_error_line(runner.invoke(app, [*worker, "--queue", empty, "--grace-period", "1"]),
                   "--grace-period 1: must exceed")


# ============================================================================ PostgreSQL


def _worker(tmp: Path, url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "BIONIC_DISABLE_PLUGINS": "1", "OMP_NUM_THREADS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
    return subprocess.Popen([sys.executable, "-m", "bionic_cli", "worker", "--queue", url,
                             "--heartbeat-interval", "1", "--json", *extra],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc: subprocess.Popen, timeout: float = 240) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def pg_queue(queue_dir):
    tmp, name = queue_dir
    made: list[str] = []
    yield tmp, name, made
    for study in made:  # leave the shared database as it was
        try:
            optuna.delete_study(study_name=study, storage=PG_URL)
        except KeyError:
            pass


@pytest.mark.postgres
@needs_postgres
def test_two_workers_on_postgres_finish_every_key_exactly_once(pg_queue):
    tmp, name, made = pg_queue
    queued = _enqueue(name, PG_URL)
    made.append(queued["study"])
    procs = [_worker(tmp, PG_URL), _worker(tmp, PG_URL)]
    try:
        results = [_result(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    done = [r["key"] for result in results for r in result["runs"]
            if r["outcome"] == "finished"]
    assert sorted(done) == sorted(queued["enqueued"])  # every key once, by one worker
    finished = _finished_runs(f"sqlite:///{tmp / 'mlflow.db'}", name)
    assert sorted(finished) == sorted(queued["enqueued"])
    assert all(len(runs) == 1 for runs in finished.values())
    assert _complete_keys(PG_URL, queued["study"]) == sorted(queued["enqueued"])


@pytest.mark.postgres
@needs_postgres
def test_a_killed_workers_run_returns_to_the_queue_and_finishes(pg_queue):
    tmp, name, made = pg_queue
    (tmp / "exp.toml").write_text(EXPERIMENTS.format(name=name, width=32, epochs=40))
    queued = _enqueue(name, PG_URL, "--design", "explicit", "--configuration", "none",
                      "--seeds", "1")  # one run
    made.append(queued["study"])
    study = optuna.load_study(study_name=queued["study"], storage=PG_URL)
    procs = {p.pid: p for p in (_worker(tmp, PG_URL, "--grace-period", "2"),
                                _worker(tmp, PG_URL, "--grace-period", "2"))}
    checkpoints = tmp / ".bionic" / "checkpoints"
    try:
        deadline = time.monotonic() + 180
        holder = None
        while holder is None:  # the worker that claimed the first run, once it has an epoch
            assert time.monotonic() < deadline, "no run started"
            running = [t for t in study.get_trials(deepcopy=False)
                       if t.state == optuna.trial.TrialState.RUNNING and "worker" in t.user_attrs]
            if running and list(checkpoints.glob("*.pt")):
                holder = int(running[0].user_attrs["worker"].rsplit(":", 1)[1])
            time.sleep(0.02)
        procs[holder].send_signal(signal.SIGKILL)
        procs[holder].wait(30)
        (survivor,) = [p for pid, p in procs.items() if pid != holder]
        result = _result(survivor)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    key = queued["enqueued"][0]
    assert [(r["key"], r["outcome"]) for r in result["runs"]] == [(key, "finished")]
    trials = optuna.load_study(study_name=queued["study"], storage=PG_URL).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]  # stale, then its retry
    assert trials[1].system_attrs["failed_trial"] == 0
    runs = runs_of(f"sqlite:///{tmp / 'mlflow.db'}", name, "run")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # one run, continued
    assert int(runs[0].data.tags["bionic.resumed_from_epoch"]) >= 1
    assert not list(checkpoints.glob("*.pt"))
