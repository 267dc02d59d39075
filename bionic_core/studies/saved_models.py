"""A finished run's saved model: rebuilt from its MLflow run (the logged ``model/`` artifact),
or written to a folder of small files, to commit beside published results and evaluate without
the MLflow store it was trained in (``bionic evaluate FOLDER --data ...``).

A model folder holds ``state_dict.pt`` and ``config.json`` (the run's logged ``model/`` artifact,
as logged), ``train_image_hashes.npy`` (the content hashes of its training images, so that an
evaluation can refuse them) and ``run.json`` (which run it is: MLflow run id, run key,
experiment, seed, features, feature provenance, bionic commit, and its final metrics per split,
which ``bionic evaluate`` of the same split reproduces).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bionic_core.config import FIELDS, RunConfig
from bionic_core.contract.errors import BionicError, first_line
from bionic_core.host import Catalogue
from bionic_core.studies.comparison import run_provenance
from bionic_core.studies.results_export import final_by_split, write_json
from bionic_core.studies.tracking import TAG_KEY, Tracker
from bionic_core.studies.training_images import ARTIFACT, ARTIFACT_NAME, read_training_images


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


MODEL_FILES = ("state_dict.pt", "config.json")
RUN_FILE = "run.json"


def logged_run(tracker: Tracker, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    with tracker.contact():
        try:
            return tracker.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise BionicError(f"run {run_id}: no such MLflow run in {tracker.uri}") from None
            raise


def download_artifact(tracker: Tracker, run_id: str, path: str, tmp: str) -> Path:
    """The run's artifact ``path`` downloaded into ``tmp`` (a path that does not exist when the
    run has no such artifact)."""
    try:
        return Path(tracker.download_artifacts(run_id, path, tmp))
    except Exception:  # noqa: BLE001 - any failure here means "no such artifact"
        return Path(tmp) / "missing"


def _logged_model_files(tracker: Tracker, run: Any, tmp: str) -> Path:
    """The run's logged ``model/`` artifact (``MODEL_FILES``) downloaded into ``tmp``, or one
    line saying it has none."""
    run_id = run.info.run_id
    local = download_artifact(tracker, run_id, "model", tmp)
    if not all((local / name).is_file() for name in MODEL_FILES):
        raise BionicError(f"run {run_id}: has no logged model (model/state_dict.pt); "
                          f"status {run.info.status}: only runs that finished training log one")
    return local


def load_model_files(folder: Path, catalogue: Catalogue, device: str, shown: str,
                     inside: str = "") -> tuple[RunConfig, Any, Any]:
    """A saved model — ``config.json`` (the run's RunConfig) and ``state_dict.pt`` (its best
    state dict) in ``folder`` — rebuilt with ``prepare`` and loaded; errors name it as
    ``shown`` (``run ID`` or the folder) and the files as ``inside`` + their names. Returns
    ``(config, model, ctx)``."""
    from bionic_core.training.loop import prepare
    from bionic_core.training.saved_state import load_saved

    state_file, config_file = folder / "state_dict.pt", folder / "config.json"
    try:
        config = config_from_dict(json.loads(config_file.read_text()))
    except (ValueError, OSError, TypeError) as exc:
        raise BionicError(f"{shown}: damaged config {inside}config.json "
                          f"({first_line(exc)})") from None
    missing = [f for f in config.features if f not in catalogue]
    if missing:
        raise BionicError(f"{shown}: uses feature '{missing[0]}', which is not installed "
                          f"(installed: {', '.join(sorted(catalogue.entries))})")
    config = config.replace(device=device)
    ctx, model, _ = prepare(config, catalogue)
    state = load_saved(state_file, ctx.device, "logged model",
                       shown=f"{shown}: {inside}state_dict.pt")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BionicError(f"{shown}: the saved model does not fit the model rebuilt from its "
                          f"config ({first_line(exc)})") from None
    model.eval()
    return config, model, ctx


def load_logged_model(tracker: Tracker, run_id: str, catalogue: Catalogue,
                      device: str = "auto") -> tuple[RunConfig, Any, Any]:
    """The model of a logged run, rebuilt from its logged config (``prepare``) with the logged
    best state dict loaded; returns ``(config, model, ctx)``."""
    run = logged_run(tracker, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        local = _logged_model_files(tracker, run, tmp)
        return load_model_files(local, catalogue, device, f"run {run_id}", "model/")


def is_model_folder(path: str) -> bool:
    """Whether ``path`` names a folder (rather than an MLflow run id)."""
    return Path(path).is_dir()


def export_model(tracker: Tracker, run_id: str, out: Path) -> list[Path]:
    """Write run ``run_id``'s model folder at ``out`` (created; files already there are
    replaced) and return the files written."""
    with tracker.contact():
        run = logged_run(tracker, run_id)
        with tempfile.TemporaryDirectory() as tmp:
            model = _logged_model_files(tracker, run, tmp)
            hashes = download_artifact(tracker, run_id, ARTIFACT, tmp)
            if not hashes.is_file():
                raise BionicError(f"run {run_id}: has no record of its training images "
                                  f"({ARTIFACT}), so its model could not be checked against "
                                  "the images it is evaluated on")
            out.mkdir(parents=True, exist_ok=True)
            written = [Path(shutil.copyfile(model / name, out / name)) for name in MODEL_FILES]
            written.append(Path(shutil.copyfile(hashes, out / ARTIFACT_NAME)))
    tags = run.data.tags
    config = json.loads((out / "config.json").read_text())
    written.append(write_json(out / RUN_FILE, {
        "mlflow_run_id": run_id, "run_key": tags.get(TAG_KEY),
        "experiment": tags.get("bionic.experiment"), "seed": config.get("seed"),
        "features": config.get("features"), "feature_provenance": run_provenance(tags),
        "bionic_commit": tags.get("git.commit"), "bionic_version": tags.get("bionic.version"),
        "final": final_by_split(run.data.metrics)}))
    return written


def read_model_folder(folder: Path) -> tuple[dict[str, Any], np.ndarray]:
    """A model folder's ``run.json`` and its training images' hashes, or one line naming what
    is missing or damaged."""
    missing = [n for n in (*MODEL_FILES, ARTIFACT_NAME, RUN_FILE) if not (folder / n).is_file()]
    if missing:
        raise BionicError(f"{folder}: not a model folder (no {missing[0]}; write one with "
                          "`bionic results model RUN_ID --out FOLDER`)")
    try:
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        hashes = read_training_images(folder / ARTIFACT_NAME)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BionicError(f"{folder}: damaged model folder ({str(exc).splitlines()[0]})") \
            from None
    if not isinstance(run, dict):
        raise BionicError(f"{folder}/{RUN_FILE}: damaged (not a JSON object)")
    return run, hashes
