"""Evaluating a logged run's model on any dataset file, and recording that against the run."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bionic_core.config import FIELDS, RunConfig
from bionic_core.contract.errors import BionicError, first_line
from bionic_core.host import Catalogue
from bionic_core.studies.tracking import Tracker

SPLITS = ("auto", "train", "val", "test", "all")
_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild the RunConfig logged as ``config.json`` (lists back to tuples; fields this
    version does not know are ignored, fields it added keep their defaults)."""
    values = {}
    for name, value in data.items():
        if name not in FIELDS:
            continue
        default = FIELDS[name].default
        if isinstance(value, list) and (isinstance(default, tuple) or name in ("features",
                                                                              "hidden_sizes",
                                                                              "seeds")):
            value = tuple(value)
        values[name] = value
    return RunConfig(**values)


def _run(tracker: Tracker, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    with tracker.contact():
        try:
            return tracker.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise BionicError(f"run {run_id}: no such MLflow run in {tracker.uri}") from None
            raise


def load_logged_model(tracker: Tracker, run_id: str, catalogue: Catalogue,
                      device: str = "auto") -> tuple[RunConfig, Any, Any]:
    """The model of a logged run, rebuilt from its logged config (``prepare``) with the logged
    best state dict loaded; returns ``(config, model, ctx)``."""
    import torch

    from bionic_core.training.loop import prepare

    run = _run(tracker, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        quiet = os.environ.get(_PROGRESS_ENV)
        os.environ[_PROGRESS_ENV] = "false"  # no download progress bar on the terminal
        try:
            local = Path(tracker.download_artifacts(run_id, "model", tmp))
        except Exception:  # noqa: BLE001 - any failure here means "no model artifact"
            local = Path(tmp) / "missing"
        finally:
            if quiet is None:
                os.environ.pop(_PROGRESS_ENV, None)
            else:
                os.environ[_PROGRESS_ENV] = quiet
        state_file, config_file = local / "state_dict.pt", local / "config.json"
        if not state_file.is_file() or not config_file.is_file():
            status = run.info.status
            raise BionicError(f"run {run_id}: has no logged model (model/state_dict.pt); "
                              f"status {status}: only runs that finished training log one")
        config = config_from_dict(json.loads(config_file.read_text()))
        missing = [f for f in config.features if f not in catalogue]
        if missing:
            raise BionicError(f"run {run_id}: uses feature '{missing[0]}', which is not "
                              f"installed (installed: {', '.join(sorted(catalogue.entries))})")
        config = config.replace(device=device)
        ctx, model, _ = prepare(config, catalogue)
        state = torch.load(state_file, map_location=ctx.device, weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BionicError(f"run {run_id}: the logged model does not fit the model rebuilt from "
                          f"its config ({first_line(exc)})") from None
    model.eval()
    return config, model, ctx


def _choose_split(dataset: Any, split: str, where: str) -> tuple[np.ndarray, np.ndarray, str]:
    splits = dataset.splits
    if split == "auto":
        split = "test" if "test" in splits else "all"
    if split == "all":
        # Every image of the source (train and its validation holdout together).
        names = [s for s in ("train", "val", "test") if s in splits]
        images = np.concatenate([splits[s].images for s in names])
        labels = np.concatenate([splits[s].labels for s in names])
        return images, labels, "all"
    if split not in splits:
        raise BionicError(f"{where}: has no {split} split (has {', '.join(splits)})")
    return splits[split].images, splits[split].labels, split


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def evaluate_logged_run(tracker: Tracker, run_id: str, data: str, *, catalogue: Catalogue,
                        split: str = "auto", device: str = "auto",
                        log: bool = True) -> dict[str, Any]:
    """Metrics of run ``run_id``'s model on ``data`` (a built-in name or a FER-2013 CSV,
    folder or npz). ``split`` auto = the test split when the source has one, else every image.
    With ``log`` the metrics and a JSON/PNG report are recorded against the run."""
    from bionic_core.data import CLASS_NAMES, load_dataset
    from bionic_core.studies.figures import confusion_png
    from bionic_core.training.batches import DeviceSplit
    from bionic_core.training.loop import evaluate

    if split not in SPLITS:
        raise BionicError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    dataset = load_dataset(data, seed=0)  # user errors in the file surface before the model
    config, model, ctx = load_logged_model(tracker, run_id, catalogue, device)
    images, labels, used = _choose_split(dataset, split, data)
    metrics = evaluate(model, DeviceSplit(images, labels, ctx.device), config.eval_batch_size)
    fingerprint = dataset.fingerprint()
    name = _slug(f"{dataset.name}-{used}-{fingerprint[:8]}")
    report = {"run_id": run_id, "run_key": config.key(), "experiment": config.experiment,
              "features": list(config.features), "seed": config.seed,
              "data": {"spec": str(data), "name": dataset.name, "is_demo": dataset.is_demo,
                       "source": dataset.source, "format": dataset.format,
                       "fingerprint": fingerprint, "split": used, "n": int(len(labels))},
              "device": str(ctx.device), "evaluation": name, **metrics}
    if log:
        with tracker.contact():
            tracker.log_metrics(run_id, {f"eval_{name}_{k}": metrics[k]
                                         for k in ("accuracy", "macro_f1", "roc_auc")
                                         if isinstance(metrics.get(k), float)})
            tracker.set_tags(run_id, {f"bionic.eval.{name}": f"{dataset.source} ({used})"[:500]})
            tracker.log_json(run_id, f"{name}.json", report, "evaluations")
            with tempfile.TemporaryDirectory() as tmp:
                png = confusion_png(metrics["confusion"], CLASS_NAMES, Path(tmp) / f"{name}.png",
                                    f"run {run_id[:8]} on {dataset.name} ({used})")
                tracker.log_file(run_id, png, "evaluations")
    return report

