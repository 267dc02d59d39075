"""MLflow as the system of record: runs, their parameters, per-epoch metrics and artifacts."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError, first_line

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
SQLITE_OPEN_ATTEMPTS = 5  # a new SQLite store another process is creating opens on a retry
SQLITE_RETRY_SECONDS = 4.0  # MLflow creates a new store in ~40 migrations, a few seconds
_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # MLflow draws a bar per download


class MlflowStatus(StrEnum):
    """The lifecycle states of an MLflow run, as MLflow spells them."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


TAG_KEY = "bionic.run_key"
TAG_EXPERIMENT = "bionic.experiment"
TAG_KIND = "bionic.kind"  # "run" | "sweep" | "configuration" | "study" | "trial"
TAG_DATA_FINGERPRINT = "bionic.dataset_fingerprint"  # content hash of every split's pixels
TAG_SETTINGS_KEY = "bionic.settings_key"  # the run key without the features' provenance
TAG_PROVENANCE = "bionic.feature_provenance"  # enabled feature=what its code is; ...
TAG_COPIED_FROM = "bionic.copied_from"  # on a copy of a finished run: the run id it copies
# MLflow 3 opens an experiment on its GenAI pages unless it is model training: the experiment
# tag its UI reads (mlflow/server/js: `mlflow.experimentKind`, `custom_model_development`),
# and, for UIs that follow a global "GenAI | Model training" switch instead (3.17), the query
# that selects model training in a link.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
UI_WORKFLOW = "workflowType=machine_learning"


def tracking_uri(explicit: str | None = None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else a SQLite file in the cwd."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_tags(device: str) -> dict[str, str]:
    import torch  # not at the top: the CLI imports this module before it needs torch

    import bionic_core

    tags = {"bionic.version": bionic_core.__version__, "torch.version": torch.__version__,
            "python.version": platform.python_version(), "device": device,
            "host.platform": platform.platform()}
    if device.startswith("cuda") and torch.cuda.is_available():
        tags["device.name"] = torch.cuda.get_device_name(0)
    commit = git_commit()
    if commit:
        tags["git.commit"] = commit
    return tags


def provenance_tag(provenance: dict[str, str]) -> str:
    """The enabled features' provenance as one tag value: ``name=what; name=what``."""
    return "; ".join(f"{name}={what}" for name, what in sorted(provenance.items())) or "(none)"


def seed_run_tags(*, key: str, seed: int, settings_key: str | None,
                  provenance: dict[str, str], dataset: str, fingerprint: str, is_demo: bool,
                  features: Any) -> dict[str, str]:
    """The tags that identify a seed run: what sweeps find it by (key, kind, data) and what
    its export reads. Shared by a run trained here and a run imported from an export."""
    return {TAG_KEY: key, TAG_KIND: "run", "bionic.seed": str(seed),
            **({TAG_SETTINGS_KEY: settings_key} if settings_key is not None else {}),
            TAG_PROVENANCE: provenance_tag(provenance), "bionic.dataset": dataset,
            TAG_DATA_FINGERPRINT: fingerprint, "bionic.dataset_is_demo": str(is_demo),
            "bionic.features": ",".join(sorted(features)) or "(none)"}


def flatten_params(config_spec: dict[str, Any], all_features: list[str]) -> dict[str, str]:
    """MLflow params: one flag per known feature, each feature parameter, each hyper-parameter."""
    params: dict[str, str] = {}
    enabled = set(config_spec["features"])
    for name in all_features:
        params[f"feature.{name}"] = str(name in enabled)
    for feature, table in config_spec["params"].items():
        for key, value in table.items():
            params[f"{feature}.{key}"] = str(value)
    for feature, provenance in config_spec.get("feature_provenance", {}).items():
        params[f"feature.{feature}.provenance"] = str(provenance)
    for key, value in config_spec.items():
        if key not in ("features", "params", "feature_provenance"):
            params[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return params


def _new_sqlite_store(uri: str) -> bool:
    """A SQLite store that does not exist yet or was created in the last minute: one that
    another process may be creating right now."""
    if not uri.startswith("sqlite:///"):
        return False
    path = Path(uri.removeprefix("sqlite:///"))
    try:
        return time.time() - path.stat().st_mtime < 60
    except OSError:
        return True


class Tracker:
    """Every MLflow call bionic makes: a thin MlflowClient wrapper (no global "active run"
    state, so sweeps and workers can hold several runs at once). Nothing else in bionic touches
    the client."""

    def __init__(self, uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        # MLflow's own INFO lines (database creation, migrations) would bury bionic's output.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.uri = tracking_uri(uri)
        attempts = SQLITE_OPEN_ATTEMPTS if _new_sqlite_store(self.uri) else 1
        for attempt in range(attempts):
            try:
                with self.contact():  # a SQLite store is opened (and checked) here
                    self._client = MlflowClient(tracking_uri=self.uri)
                break
            except BionicError:
                # Two processes opening a new SQLite store at once both create its schema, and
                # one fails (measured: "dimension_attributes"); once the other is done, the
                # store opens.
                if attempt == attempts - 1:
                    raise
                time.sleep(SQLITE_RETRY_SECONDS)
        self._experiments: dict[str, str] = {}

    @contextmanager
    def contact(self) -> Iterator[None]:
        """Talk to the store for the first time: an HTTP server fails fast (no retries, short
        timeout) and any failure becomes one clear BionicError naming the URI."""
        probe = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
        saved = {k: os.environ.get(k) for k in probe}
        if self.uri.startswith(("http://", "https://")):
            os.environ.update({k: v for k, v in probe.items() if saved[k] is None})
        try:
            yield
        except BionicError:
            raise
        except Exception as exc:
            text = str(exc).strip()
            # A failed HTTP request nests its root cause ("[Errno 111] Connection refused").
            refused = re.search(r"\[Errno -?\d+\][^\"')]*", text)
            first = (f"cannot connect: {refused.group(0).strip()}" if refused
                     else first_line(exc)[:300])
            raise BionicError(f"tracking URI {self.uri}: cannot be used: {first}") from exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)

    def experiment_id(self, name: str) -> str:
        """The MLflow experiment's id, created when missing (the first call fails fast), tagged
        as model training (:data:`EXPERIMENT_KIND`)."""
        if name not in self._experiments:
            with self.contact():
                found = self._client.get_experiment_by_name(name)
                if found is None:
                    self._experiments[name] = self._client.create_experiment(
                        name, tags=dict([EXPERIMENT_KIND]))
                else:
                    self._experiments[name] = found.experiment_id
                    if EXPERIMENT_KIND[0] not in found.tags:  # made by an older bionic
                        self._client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        return self._experiments[name]

    def runs_page(self, experiment_id: str, run_id: str | None = None) -> str:
        """Where `mlflow ui` shows the experiment's runs (or one run), as a path to append to
        the server's address (``#/experiments/1/runs?workflowType=machine_learning``)."""
        page = f"runs/{run_id}" if run_id else "runs"
        return f"#/experiments/{experiment_id}/{page}?{UI_WORKFLOW}"

    def start(self, experiment: str, run_name: str, *, tags: dict[str, str],
              params: dict[str, str] | None = None, parent_id: str | None = None,
              start_time: int | None = None) -> str:
        all_tags = dict(tags)
        all_tags[TAG_EXPERIMENT] = experiment
        if parent_id is not None:
            all_tags["mlflow.parentRunId"] = parent_id
        run = self._client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags=all_tags, start_time=start_time)
        if params:
            from mlflow.entities import Param

            items = [Param(k, v[:6000]) for k, v in params.items()]
            for i in range(0, len(items), 100):
                self._client.log_batch(run.info.run_id, params=items[i:i + 100])
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        self.log_metric_steps(run_id, {step or 0: metrics})

    def log_metric_steps(self, run_id: str, steps: dict[int, dict[str, float]]) -> None:
        """Metrics at several steps at once (step → {name: value}), e.g. a whole history."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for step, row in steps.items()
                 for k, v in row.items() if isinstance(v, (int, float))]
        for i in range(0, len(items), 1000):
            self._client.log_batch(run_id, metrics=items[i:i + 1000])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_tag(run_id, key, value)

    def log_json(self, run_id: str, name: str, obj: Any, artifact_path: str | None = None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(obj, indent=2, default=str))
            self._client.log_artifact(run_id, str(path), artifact_path)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        """Save ``text`` as the artifact file ``name`` of the run."""
        self._client.log_text(run_id, text, name)

    def log_file(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(run_id, str(path), artifact_path)

    def end(self, run_id: str, status: MlflowStatus = MlflowStatus.FINISHED) -> None:
        self._client.set_terminated(run_id, status=status)

    def copy_run(self, run_id: str, experiment: str, run_name: str, *, tags: dict[str, str],
                 parent_id: str | None = None) -> str:
        """Copy the ended run ``run_id`` into ``experiment`` and return the copy's id: its
        params, every metric's whole history (values, steps, times), its tags (``tags``
        override them; MLflow's own are not copied), its artifacts, its start and end time
        and its status. The copy's ``bionic.copied_from`` names the original run (the
        original's original when ``run_id`` is itself a copy)."""
        from mlflow.entities import Metric

        source = self._client.get_run(run_id)
        kept = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
        kept.update(tags)
        kept[TAG_COPIED_FROM] = origin_id(source)
        copy_id = self.start(experiment, run_name, tags=kept, params=dict(source.data.params),
                             parent_id=parent_id, start_time=source.info.start_time)
        history = [Metric(m.key, m.value, m.timestamp, m.step) for name in source.data.metrics
                   for m in self._client.get_metric_history(run_id, name)]
        for i in range(0, len(history), 1000):
            self._client.log_batch(copy_id, metrics=history[i:i + 1000])
        with tempfile.TemporaryDirectory() as tmp:
            for artifact in self._client.list_artifacts(run_id):
                local = self.download_artifacts(run_id, artifact.path, tmp)
                if artifact.is_dir:
                    self._client.log_artifacts(copy_id, local, artifact.path)
                else:
                    self._client.log_artifact(copy_id, local)
        self._client.set_terminated(copy_id, status=source.info.status,
                                    end_time=source.info.end_time)
        return copy_id

    def reopen(self, run_id: str) -> None:
        """Mark an interrupted run RUNNING again (its params are write-once: only status and
        tags change)."""
        self._client.update_run(run_id, status=MlflowStatus.RUNNING)

    def delete(self, run_id: str) -> None:
        self._client.delete_run(run_id)

    def get_run(self, run_id: str) -> Any:
        return self._client.get_run(run_id)

    def metric_history(self, run_id: str, name: str) -> list[Any]:
        return self._client.get_metric_history(run_id, name)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Any]:
        return self._client.list_artifacts(run_id, path)

    def download_artifacts(self, run_id: str, path: str, destination: str) -> str:
        """The artifact ``path`` of run ``run_id`` downloaded into ``destination``, without
        MLflow's progress bar on the terminal."""
        quiet = os.environ.get(_PROGRESS_ENV)
        os.environ[_PROGRESS_ENV] = "false"
        try:
            return self._client.download_artifacts(run_id, path, destination)
        finally:
            if quiet is None:
                os.environ.pop(_PROGRESS_ENV, None)
            else:
                os.environ[_PROGRESS_ENV] = quiet

    def search_runs(self, experiment_ids: list[str], filter_string: str,
                    order_by: list[str] | None = None) -> list[Any]:
        """Every run of ``experiment_ids`` that matches ``filter_string`` (all result pages)."""
        runs: list[Any] = []
        token = None
        while True:
            page = self._client.search_runs(experiment_ids, filter_string=filter_string,
                                            max_results=1000, order_by=order_by,
                                            page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def experiments(self) -> dict[str, str]:
        """Every experiment of the store: id → name."""
        out, token = {}, None
        while True:
            page = self._client.search_experiments(max_results=1000, page_token=token)
            out.update({e.experiment_id: e.name for e in page})
            token = page.token
            if not token:
                return out

    def find_runs(self, experiment: str, filter_string: str) -> list[Any]:
        found = self._client.get_experiment_by_name(experiment)
        if found is None:
            return []
        return self._client.search_runs([found.experiment_id], filter_string=filter_string,
                                       max_results=5000)


def origin_id(run: Any) -> str:
    """The id of the run that ``run`` copies (its ``bionic.copied_from``), else its own."""
    return run.data.tags.get(TAG_COPIED_FROM, run.info.run_id)


def _val_note(dataset: dict[str, Any]) -> str:
    """Where a run's validation numbers come from, for a plot title."""
    holdout = dataset.get("holdout")
    if holdout:
        return f"val: {100 * holdout['fraction']:g}% holdout of train, seed {holdout['seed']}"
    return "val: the data's own validation split"


def log_run_result(tracker: Tracker, run_id: str, result: Any) -> None:
    """Final metrics, figures, resolved config and the best model of a finished run."""
    import torch

    from bionic_core.data import CLASS_NAMES
    from bionic_core.studies.figures import confusion_png, learning_curves_png

    final = {f"final_{k}": v for k, v in result.summary().items()
             if isinstance(v, (int, float))}
    # final_test_* is the primary test split (tag bionic.primary_test_split); every test split
    # is also logged under its own name (final_test_public_*, final_test_private_*).
    evaluated = [("val", result.val), ("test", result.test),
                 *((s, m) for s, m in result.tests.items() if s != "test")]
    for split, metrics in evaluated:
        for name, per in (metrics or {}).get("per_class", {}).items():
            final[f"final_{split}_recall_{name}"] = per["recall"]
            if per.get("precision") is not None:  # None: the class was never predicted
                final[f"final_{split}_precision_{name}"] = per["precision"]
    tracker.log_metrics(run_id, final)
    tracker.set_tags(run_id, {"bionic.status": result.status, "bionic.reason": result.reason[:500],
                              "bionic.primary_test_split":
                                  str(result.dataset.get("primary_test") or "(none)")})
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "config.json").write_text(json.dumps(result.config.as_dict(), indent=2))
        (tmpdir / "metrics.json").write_text(json.dumps(
            {"summary": result.summary(), "val": result.val, "test": result.test,
             "tests": result.tests, "history": result.history, "dataset": result.dataset,
             "plan": result.plan},
            indent=2, default=str))
        tracker.log_file(run_id, tmpdir / "config.json")
        tracker.log_file(run_id, tmpdir / "metrics.json")
        if result.history:
            tracker.log_file(run_id, learning_curves_png(
                result.history, tmpdir / "learning_curves.png", f"{result.config.experiment} "
                f"seed {result.config.seed} ({_val_note(result.dataset)})"))
        for split, metrics in (("val", result.val), *result.tests.items()):
            if metrics and "confusion" in metrics:
                tracker.log_file(run_id, confusion_png(
                    metrics["confusion"], CLASS_NAMES, tmpdir / f"confusion_{split}.png",
                    f"{result.config.experiment} seed {result.config.seed}: {split} "
                    f"({result.dataset.get('name')})"))
        if result.model_state is not None:
            torch.save(result.model_state, tmpdir / "state_dict.pt")
            tracker.log_file(run_id, tmpdir / "state_dict.pt", "model")
            tracker.log_file(run_id, tmpdir / "config.json", "model")
