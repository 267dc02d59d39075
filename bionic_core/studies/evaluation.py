"""Evaluating a logged run's model on the splits a user names, and recording that against the
run; data holding the run's own training images is refused unless asked for."""

from __future__ import annotations

import hashlib
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
from bionic_core.studies.evaluation_data import (
    Chosen,
    check_split,
    check_training_overlap,
    choose_splits,
)
from bionic_core.studies.tracking import Tracker
from bionic_core.studies.training_images import ARTIFACT, read_training_images

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


def _download(tracker: Tracker, run_id: str, path: str, tmp: str) -> Path:
    """The run's artifact ``path`` downloaded into ``tmp`` (a path that does not exist when the
    run has no such artifact), without MLflow's progress bar on the terminal."""
    quiet = os.environ.get(_PROGRESS_ENV)
    os.environ[_PROGRESS_ENV] = "false"
    try:
        return Path(tracker.download_artifacts(run_id, path, tmp))
    except Exception:  # noqa: BLE001 - any failure here means "no such artifact"
        return Path(tmp) / "missing"
    finally:
        if quiet is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = quiet


def load_logged_model(tracker: Tracker, run_id: str, catalogue: Catalogue,
                      device: str = "auto") -> tuple[RunConfig, Any, Any]:
    """The model of a logged run, rebuilt from its logged config (``prepare``) with the logged
    best state dict loaded; returns ``(config, model, ctx)``."""
    from bionic_core.training.loop import prepare
    from bionic_core.training.saved_state import load_saved

    run = _run(tracker, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        local = _download(tracker, run_id, "model", tmp)
        state_file, config_file = local / "state_dict.pt", local / "config.json"
        if not state_file.is_file() or not config_file.is_file():
            status = run.info.status
            raise BionicError(f"run {run_id}: has no logged model (model/state_dict.pt); "
                              f"status {status}: only runs that finished training log one")
        try:
            config = config_from_dict(json.loads(config_file.read_text()))
        except (ValueError, OSError) as exc:
            raise BionicError(f"run {run_id}: damaged logged config model/config.json "
                              f"({first_line(exc)})") from None
        missing = [f for f in config.features if f not in catalogue]
        if missing:
            raise BionicError(f"run {run_id}: uses feature '{missing[0]}', which is not "
                              f"installed (installed: {', '.join(sorted(catalogue.entries))})")
        config = config.replace(device=device)
        ctx, model, _ = prepare(config, catalogue)
        state = load_saved(state_file, ctx.device, "logged model",
                           shown=f"run {run_id}: model/state_dict.pt")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BionicError(f"run {run_id}: the logged model does not fit the model rebuilt from "
                          f"its config ({first_line(exc)})") from None
    model.eval()
    return config, model, ctx


def _training_images(tracker: Tracker, run_id: str) -> np.ndarray | None:
    """The logged hashes of the run's training images; None for a run that logged none."""
    with tempfile.TemporaryDirectory() as tmp:
        local = _download(tracker, run_id, ARTIFACT, tmp)
        return read_training_images(local) if local.is_file() else None


def evaluate_logged_run(tracker: Tracker, run_id: str, data: str, *, catalogue: Catalogue,
                        split: str = "auto", device: str = "auto", log: bool = True,
                        allow_train_overlap: bool = False) -> list[dict[str, Any]]:
    """Metrics of run ``run_id``'s model on each split ``split`` names in ``data`` (a built-in
    name or a FER-2013 CSV, folder or npz; see :func:`choose_splits`), one report per split.

    A split holding pixel copies of the run's training images is refused unless
    ``allow_train_overlap``. With ``log`` each report is recorded against the run."""
    check_split(split)
    config, model, ctx = load_logged_model(tracker, run_id, catalogue, device)
    chosen = choose_splits(data, split, config)
    check_training_overlap(chosen, _training_images(tracker, run_id), data=data, run_id=run_id,
                           config=config, allow=allow_train_overlap)
    return [_evaluate_split(tracker, run_id, data, c, config, model, ctx, log) for c in chosen]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _content_id(images: np.ndarray, labels: np.ndarray) -> str:
    """8 hex chars of a sha256 over a split's pixels and labels."""
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:8]


def _evaluate_split(tracker: Tracker, run_id: str, data: str, chosen: Chosen,
                    config: RunConfig, model: Any, ctx: Any, log: bool) -> dict[str, Any]:
    """One split's metrics and report, recorded against the run when ``log``."""
    from bionic_core.data import BUILTIN_DATASETS, CLASS_NAMES
    from bionic_core.studies.figures import confusion_png
    from bionic_core.training.batches import DeviceSplit
    from bionic_core.training.loop import evaluate

    metrics = evaluate(model, DeviceSplit(chosen.images, chosen.labels, ctx.device),
                       config.eval_batch_size)
    is_demo = data in BUILTIN_DATASETS
    dataset = data if is_demo else "fer2013"
    content = _content_id(chosen.images, chosen.labels)
    name = _slug(f"{dataset}-{chosen.name}-{content}")
    report = {"run_id": run_id, "run_key": config.key(), "experiment": config.experiment,
              "features": list(config.features), "seed": config.seed,
              "data": {"spec": str(data), "name": dataset, "is_demo": is_demo,
                       "split": chosen.name, "origin": chosen.origin, "content": content,
                       "n": int(len(chosen.labels)), "trained_on": chosen.trained_on},
              "device": str(ctx.device), "evaluation": name, **metrics}
    if log:
        with tracker.contact():
            tracker.log_metrics(run_id, {f"eval_{name}_{k}": metrics[k]
                                         for k in ("accuracy", "macro_f1", "roc_auc")
                                         if isinstance(metrics.get(k), float)})
            tracker.set_tags(run_id, {f"bionic.eval.{name}": chosen.origin[:500]})
            tracker.log_json(run_id, f"{name}.json", report, "evaluations")
            with tempfile.TemporaryDirectory() as tmp:
                png = confusion_png(metrics["confusion"], CLASS_NAMES, Path(tmp) / f"{name}.png",
                                    f"run {run_id[:8]} on {dataset}, split {chosen.name}")
                tracker.log_file(run_id, png, "evaluations")
    return report
