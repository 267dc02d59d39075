"""What a user who only opens `mlflow ui` sees, checked in a real headless Chromium against a
real `mlflow ui` process: the link bionic prints opens the runs table (not MLflow 3's GenAI
overview), and the sweep's parent run lists the comparison among its artifacts.

Skipped, with the reason, when no Chromium is installed (`apt-get install chromium`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bionic_core.studies.sweep_report import ARTIFACTS
from bionic_core.studies.tracking import Tracker

from .test_sweep_report import ablate_tiny

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                 "google-chrome") if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium on PATH "
                                "(apt-get install chromium) to look at `mlflow ui` with")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlflow ui exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow ui did not answer {url} within {timeout} s")


def browse(url: str, tmp: Path, screenshot: str) -> str:
    """The page's DOM after its scripts ran (and a screenshot of it in ``tmp``)."""
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              f"--user-data-dir={tmp / 'chromium'}", "--virtual-time-budget=15000",
              "--window-size=1400,1000"]
    subprocess.run([*common, f"--screenshot={tmp / screenshot}", url], capture_output=True,
                   timeout=180, check=False)
    done = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                          timeout=180, check=False)
    return done.stdout


def title(dom: str) -> str:
    found = re.search(r"<title>(.*?)</title>", dom, re.S)
    return found.group(1).strip() if found else ""


def test_mlflow_ui_opens_on_the_runs_and_shows_the_comparison(store):
    summary = ablate_tiny(store)
    tracker = Tracker(f"sqlite:///{store / 'mlflow.db'}")
    experiment_id = MlflowClient(tracker.uri).get_run(summary["sweep_run_id"]).info.experiment_id
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracker.uri, "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=store,
        start_new_session=True)  # its own process group: the server and its workers
    try:
        address = f"http://127.0.0.1:{port}/"
        wait_for(address + "health", server)
        runs = browse(address + tracker.runs_page(experiment_id), store, "runs.png")
        assert title(runs).startswith("Runs"), title(runs)  # not the GenAI "Overview"
        assert "sweep tiny" in runs  # the runs table lists the sweep
        artifacts = browse(address + tracker.runs_page(experiment_id, summary["sweep_run_id"])
                           .replace("?", "/artifacts/comparison.html?"), store, "artifacts.png")
        for name in ARTIFACTS:
            assert name in artifacts, name
        assert (store / "runs.png").stat().st_size > 10_000  # something was drawn
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
