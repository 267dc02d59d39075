"""Progress while training: per-batch callbacks from the training loops, the live table on a
terminal, plain lines in a log, nothing with --quiet, and a first line at once."""

from __future__ import annotations

import io
import math
import os
import pty
import subprocess
import sys
import time

import pytest
from bionic_cli.app import app
from bionic_cli.launch import first_line
from bionic_cli.progress import Board, Display, RunRow, duration
from rich.console import Console
from typer.testing import CliRunner

from bionic_core.training import batch_progress
from bionic_core.training.loop import train_run
from bionic_core.training.multimodel import train_many

from .conftest import REPO, TINY_EXPERIMENTS, tiny_config

runner = CliRunner()
ROW = {"train_loss": 1.25, "val_accuracy": 0.5, "epoch_time": 0.1}


# ============================================================================ the training loops


@pytest.fixture
def every_batch(monkeypatch):
    """Report every batch (the loops report at most every INTERVAL seconds)."""
    monkeypatch.setattr(batch_progress, "INTERVAL", 0.0)
    monkeypatch.setattr(batch_progress.BatchTicker.__init__, "__defaults__", (0.0,))


def test_train_run_reports_the_batches_of_every_epoch(catalogue, every_batch):
    calls = []
    config = tiny_config(epochs=2)
    result = train_run(config, catalogue, on_batch=lambda *call: calls.append(call))
    n_batches = math.ceil(len(result.dataset["splits"]["train"]) and
                          result.dataset["splits"]["train"]["n"] / config.batch_size)
    assert {epoch for epoch, _, _ in calls} == {1, 2}
    assert {batches for _, _, batches in calls} == {n_batches}
    first = [done for epoch, done, _ in calls if epoch == 1]
    assert first == sorted(first) and first[-1] == n_batches


def test_the_multimodel_engine_reports_each_run(catalogue, every_batch):
    calls: dict[int, list] = {0: [], 1: []}
    configs = [tiny_config(seed=0), tiny_config(seed=1)]
    train_many(configs, catalogue,
               on_batch=[lambda *c, i=i: calls[i].append(c) for i in range(2)])
    assert calls[0] and calls[0] == calls[1]  # lockstep: the same batches, each run told


def test_reports_are_throttled(catalogue):
    calls = []
    train_run(tiny_config(epochs=1), catalogue, on_batch=lambda *call: calls.append(call))
    assert len(calls) <= 1  # a tiny epoch takes well under INTERVAL (0.5 s)


# ============================================================================ the board


def test_eta_and_durations():
    row = RunRow("r", epochs=3, epoch=1, epoch_seconds=[10.0])
    row.epoch_started = time.monotonic() - 4
    assert 15 <= row.eta(time.monotonic()) <= 16.5  # two epochs left, 4 s into one
    fresh = RunRow("r", epochs=3, done=5, batches=20)
    fresh.epoch_started = time.monotonic() - 2  # a quarter of an epoch in 2 s
    assert 21 <= fresh.eta(time.monotonic()) <= 23
    assert RunRow("r", epochs=3).eta(time.monotonic()) is None
    assert (duration(42), duration(185), duration(3723), duration(None)) == (
        "42s", "3:05", "1:02:03", "—")


def test_the_live_table_has_a_row_per_run_and_a_sweep_bar():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    board = Board(console=console)
    assert board.display == Display.LIVE
    board.start_sweep("sweep quick", 12)
    for i in range(6):
        board.run_started(f"k{i}", f"-feature{i} s0", epochs=4)
        board.batch(f"k{i}", epoch=2, done=30, batches=120)
    board.epoch("k0", 1, ROW)
    board.sweep_advance(2, "a s0 finished")
    out = Console(file=io.StringIO(), width=120, record=True)
    out.print(board.render())
    text = out.export_text()
    assert all(f"-feature{i} s0" in text for i in range(6))
    assert "2/4" in text and "25 %" in text  # epoch in training, progress inside it
    assert "1.250" in text and "50.0 %" in text  # k0's loss and val accuracy
    assert "sweep quick" in text and "2/12" in text


def test_a_log_gets_plain_lines_and_quiet_gets_none():
    log = io.StringIO()
    board = Board(console=Console(file=log, width=80))
    assert board.display == Display.LOG
    with board:
        board.phase("loading data …")  # only a terminal shows what is loading
        board.start_sweep("sweep quick", 2)
        board.run_started("k", "reference s0", epochs=2)
        board.batch("k", 1, 5, 10)
        board.epoch("k", 1, ROW)
        board.sweep_advance(1, "reference s0 finished")
    lines = log.getvalue().splitlines()
    assert lines[0] == "reference s0: training (2 epochs)"
    assert lines[1].startswith("reference s0: epoch 1/2  loss 1.250  val acc 50.0 %")
    assert lines[2:] == ["[1/2] reference s0 finished"]
    assert "\x1b" not in log.getvalue()
    quiet = io.StringIO()
    with Board(quiet=True, console=Console(file=quiet, force_terminal=True)) as board:
        board.run_started("k", "reference s0", epochs=2)
        board.epoch("k", 1, ROW)
        board.note("a note")
    assert quiet.getvalue() == ""


# ============================================================================ the commands


def test_run_logs_its_epochs_and_quiet_prints_only_the_result(store):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    logged = runner.invoke(app, ["run", "tiny", "--experiments", "exp.toml"])
    assert logged.exit_code == 0, logged.output
    assert "tiny seed 0: epoch 1/1  loss" in logged.stderr and "\x1b" not in logged.stderr
    quiet = runner.invoke(app, ["run", "tiny", "--experiments", "exp.toml", "--seed", "1",
                                "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "val accuracy" in quiet.stdout


def test_a_sweep_logs_each_finished_run(store):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--seeds", "1",
                                 "--no-compare"])
    assert result.exit_code == 0, result.output
    assert "[1/2] " in result.stderr and "[2/2] " in result.stderr


@pytest.mark.parametrize("args, says", [
    (["ablate", "quickstart"], True), (["run", "x", "--epochs", "2"], True),
    (["worker", "--queue", "q"], True), (["run", "x", "--quiet"], False),
    (["ablate", "x", "--dry-run"], False), (["run", "--help"], False),
    (["compare", "x"], False), ([], False)])
def test_the_first_line_is_for_commands_that_train(args, says):
    assert (first_line(args) is not None) == says


def test_the_first_line_comes_within_a_second():
    """On a terminal, before PyTorch, MLflow or the app is imported."""
    leader, follower = pty.openpty()
    env = {**os.environ, "BIONIC_EXPERIMENTS": str(REPO / "experiments.toml")}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "bionic_cli", "run", "nope"],
                               stderr=follower, stdout=subprocess.DEVNULL, env=env)
    os.close(follower)
    try:
        first = os.read(leader, 200).decode()
        elapsed = time.monotonic() - started
    finally:
        process.wait(timeout=120)
        os.close(leader)
    assert first.startswith("bionic run: starting"), first
    assert elapsed < 1.0, f"first line after {elapsed:.2f} s"
