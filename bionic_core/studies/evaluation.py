"""Evaluating a logged run's model on the splits a user names, and recording that against the
run; data holding the run's own training images is refused unless asked for."""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bionic_core.config import RunConfig
from bionic_core.contract.errors import BionicError
from bionic_core.host import Catalogue
from bionic_core.studies.evaluation_data import (
    Chosen,
    check_split,
    check_training_overlap,
    choose_splits,
    without_training_copies,
)
from bionic_core.studies.saved_models import (
    download_artifact,
    is_model_folder,
    load_logged_model,
    load_model_files,
    read_model_folder,
)
from bionic_core.studies.tracking import Tracker
from bionic_core.studies.training_images import ARTIFACT, read_training_images
from bionic_core.training.inference_views import PLAIN, InferenceViews


def logged_training_images(tracker: Tracker, run_id: str) -> np.ndarray | None:
    """The logged hashes of the run's training images; None for a run that logged none."""
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifact(tracker, run_id, ARTIFACT, tmp)
        return read_training_images(local) if local.is_file() else None


@dataclass
class LoadedModel:
    """A model to evaluate, as given (``model``: an MLflow run id or a model folder), loaded:
    the run it came from, its config, network and context, and the hashes of its training
    images (None when its run logged none)."""

    model: str
    run_id: str
    config: RunConfig
    net: Any
    ctx: Any
    training: np.ndarray | None


def load_model(spec: str, tracker: Tracker | None, catalogue: Catalogue,
               device: str) -> LoadedModel:
    """The model ``spec`` names — a model folder, else an MLflow run id of ``tracker``."""
    if is_model_folder(spec):
        run, training = read_model_folder(Path(spec))
        config, net, ctx = load_model_files(Path(spec), catalogue, device, spec)
        return LoadedModel(spec, str(run.get("mlflow_run_id") or spec), config, net, ctx,
                           training)
    if tracker is None:
        raise BionicError(f"{spec}: not a model folder, and no MLflow store to find it in")
    config, net, ctx = load_logged_model(tracker, spec, catalogue, device)
    return LoadedModel(spec, spec, config, net, ctx, logged_training_images(tracker, spec))


def checked_splits(chosen: list[Chosen], training: np.ndarray | None, *, data: str,
                    run_id: str, config: RunConfig, allow: bool, drop: bool) -> list[Chosen]:
    """The splits to evaluate: without the run's training images when ``drop``, else as they
    are once :func:`check_training_overlap` allows them."""
    if drop:
        return without_training_copies(chosen, training, data=data, run_id=run_id)
    check_training_overlap(chosen, training, data=data, run_id=run_id, config=config,
                           allow=allow)
    return chosen


def evaluate_logged_run(tracker: Tracker, run_id: str, data: str, *, catalogue: Catalogue,
                        split: str = "auto", device: str = "auto", log: bool = True,
                        allow_train_overlap: bool = False, drop_train_overlap: bool = False,
                        views: InferenceViews = PLAIN) -> list[dict[str, Any]]:
    """Metrics of run ``run_id``'s model on each split ``split`` names in ``data`` (a built-in
    name or a FER-2013 CSV, folder or npz; see :func:`choose_splits`), one report per split.

    A split holding pixel copies of the run's training images is refused unless
    ``allow_train_overlap``, or evaluated without them with ``drop_train_overlap``. With
    more ``views`` than the image itself (test-time augmentation: its mirror, its shifts) each
    image is scored on all of them, recorded under its own name. With ``log`` each report is
    recorded against the run."""
    check_split(split)
    m = load_model(run_id, tracker, catalogue, device)
    chosen = checked_splits(choose_splits(data, split, m.config), m.training, data=data,
                            run_id=run_id, config=m.config, allow=allow_train_overlap,
                            drop=drop_train_overlap)
    return [_evaluate_split(tracker, run_id, data, c, m.config, m.net, m.ctx, log, views)
            for c in chosen]


def evaluate_model_folder(folder: Path, data: str, *, catalogue: Catalogue, split: str = "auto",
                          device: str = "auto", allow_train_overlap: bool = False,
                          drop_train_overlap: bool = False,
                          views: InferenceViews = PLAIN) -> list[dict[str, Any]]:
    """As :func:`evaluate_logged_run`, for a model folder written by
    :func:`~bionic_core.studies.saved_models.export_model` (no MLflow store: nothing is
    logged; each report names the folder and the MLflow run it came from)."""
    check_split(split)
    m = load_model(str(folder), None, catalogue, device)
    chosen = checked_splits(choose_splits(data, split, m.config), m.training, data=data,
                            run_id=m.run_id, config=m.config, allow=allow_train_overlap,
                            drop=drop_train_overlap)
    return [{**_evaluate_split(None, m.run_id, data, c, m.config, m.net, m.ctx, False, views),
             "model": str(folder)} for c in chosen]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _content_id(images: np.ndarray, labels: np.ndarray) -> str:
    """8 hex chars of a sha256 over a split's pixels and labels."""
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:8]


def data_record(data: str, chosen: Chosen) -> dict[str, Any]:
    """What an evaluation report says of the images it scored: the data as given, its name,
    the split, where its images came from, a content id and the counts."""
    from bionic_core.data import BUILTIN_DATASETS

    is_demo = data in BUILTIN_DATASETS
    return {"spec": str(data), "name": data if is_demo else "fer2013", "is_demo": is_demo,
            "split": chosen.name, "origin": chosen.origin,
            "content": _content_id(chosen.images, chosen.labels), "n": int(len(chosen.labels)),
            "trained_on": chosen.trained_on}


def _evaluate_split(tracker: Tracker | None, run_id: str, data: str, chosen: Chosen,
                    config: RunConfig, model: Any, ctx: Any, log: bool,
                    views: InferenceViews = PLAIN) -> dict[str, Any]:
    """One split's metrics and report, recorded against the run when ``log``."""
    from bionic_core.data import CLASS_NAMES
    from bionic_core.studies.figures import confusion_png
    from bionic_core.training.batches import DeviceSplit
    from bionic_core.training.loop import evaluate

    metrics = evaluate(model, DeviceSplit(chosen.images, chosen.labels, ctx.device),
                       config.eval_batch_size, views=views)
    described = data_record(data, chosen)
    dataset = described["name"]
    name = _slug(f"{dataset}-{chosen.name}-{described['content']}" + views.suffix)
    report = {"run_id": run_id, "run_key": config.key(), "experiment": config.experiment,
              "features": list(config.features), "seed": config.seed, "data": described,
              "device": str(ctx.device), "evaluation": name, **views.record(), **metrics}
    if log and tracker is not None:
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
