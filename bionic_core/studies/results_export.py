"""Exporting the runs behind published results from MLflow to small, byte-stable JSON files.

``results/runs/<run_key>.<run id prefix>.json``: one finished seed run (a run imported from an
export keeps the run id it was exported as: exporting it again writes the same file) — its keys,
configuration, resolved config, feature provenance, dataset, per-epoch metrics, final metrics
per split, confusion matrices, parameter count and the bionic commit.
``results/sweeps/<sweep_id>.json``: a sweep's design and each configuration's seed runs (by file
name). One file per MLflow run, not per run key (a run copied into another experiment is
exported as the run it copies): two runs of one key are one computation only as
far as the key captures it (keys made before built-in features' source entered their
provenance did not see their code). No wall-clock time is exported, and every file is written
with sorted keys, so exporting again gives the same bytes.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.studies.comparison import collect, run_dataset, run_provenance
from bionic_core.studies.comparison_model import Row, SweepInfo
from bionic_core.studies.sweep_records import TAG_CONFIG_KEY, TAG_CONFIGURATION
from bionic_core.studies.tracking import TAG_KEY, TAG_SETTINGS_KEY, Tracker, origin_id

FORMAT = 1  # the export format's version, in every file
# On a run imported from an export (bionic_core.studies.results_import): the MLflow run id it
# was exported as, which its export keeps (run id and file name).
TAG_EXPORTED_AS = "bionic.exported_as"
EPOCH_METRICS = ("train_loss", "val_accuracy", "val_macro_f1", "lr")
SPLITS = ("test_private", "test_public", "test", "train", "val")  # longest match first
_FINAL = re.compile(rf"final_({'|'.join(SPLITS)})_(accuracy|macro_f1|recall_.+|precision_.+)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as stable JSON (sorted keys, two-space indent, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def final_by_split(metrics: dict[str, float]) -> dict[str, dict[str, Any]]:
    """``final_<split>_*`` metrics as {split: {accuracy, macro_f1, recall: {class: v},
    precision: {class: v}}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        found = _FINAL.fullmatch(key)
        if found is None:
            continue
        split, name = found.groups()
        into = out.setdefault(split, {})
        measure, _, cls = name.partition("_") if name.startswith(("recall_", "precision_")) \
            else (name, "", "")
        if cls:
            into.setdefault(measure, {})[cls] = value
        else:
            into[name] = value
    return out


def _artifact_json(tracker: Tracker, run_id: str, name: str) -> Any | None:
    """A run's JSON artifact, or None when the run has none."""
    if name not in {a.path for a in tracker.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(tracker.download_artifacts(run_id, name, tmp)).read_text())


def _confusions(record: dict[str, Any]) -> dict[str, Any]:
    """Each evaluated split's confusion matrix (rows: true class) from metrics.json."""
    splits = [("val", record.get("val")), ("test", record.get("test")),
              *(record.get("tests") or {}).items()]
    return {split: m["confusion"] for split, m in splits if m and "confusion" in m}


def original_run(tracker: Tracker, run_id: str) -> str:
    """The run a copied run copies (``bionic.copied_from``; see
    :meth:`~bionic_core.studies.tracking.Tracker.copy_run`) while the store still holds it,
    else ``run_id``: a run reused by another experiment is exported once, as itself."""
    from mlflow.exceptions import MlflowException

    origin = origin_id(tracker.get_run(run_id))
    if origin == run_id:
        return run_id
    try:
        found = tracker.get_run(origin)
    except MlflowException as exc:  # a run deleted for good: export the copy
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return run_id
    return origin if found.info.lifecycle_stage == "active" else run_id


def run_record(tracker: Tracker, run_id: str, row: Row, seed: int) -> dict[str, Any]:
    """One finished seed run as an export record (see the module docstring)."""
    run = tracker.get_run(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    key = tags.get(TAG_KEY, "")
    if not _SAFE_NAME.fullmatch(key):
        raise BionicError(f"MLflow run {run_id}: run key {key!r} cannot name an export file")
    result = _artifact_json(tracker, run_id, "metrics.json") or {}
    config = _artifact_json(tracker, run_id, "config.json")
    dataset = run_dataset(tags)
    return {
        "format": FORMAT, "run_key": key, "settings_key": tags.get(TAG_SETTINGS_KEY),
        "mlflow_run_id": tags.get(TAG_EXPORTED_AS, run_id),
        "experiment": tags.get("bionic.experiment"),
        "configuration": tags.get(TAG_CONFIGURATION, row.name),
        "config_key": tags.get(TAG_CONFIG_KEY, row.config_key), "seed": seed,
        "config": config if config is not None else dict(run.data.params),
        "feature_provenance": run_provenance(tags),
        "dataset": {"name": dataset[0], "fingerprint": dataset[1], "is_demo": dataset[2],
                    "holdout": (result.get("dataset") or {}).get("holdout")},
        "epochs": [{k: e[k] for k in ("epoch", *EPOCH_METRICS) if k in e}
                   for e in result.get("history") or []],
        "final": final_by_split(metrics),
        "confusion": _confusions(result),
        "n_parameters": metrics.get("final_n_parameters"),
        "bionic_commit": tags.get("git.commit"), "bionic_version": tags.get("bionic.version"),
    }


def sweep_record(sweep: SweepInfo, configurations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "sweep_id": sweep.sweep_id, "name": sweep.name,
            "experiment": sweep.experiment, "design": sweep.design, "anchor": sweep.anchor,
            "factors": list(sweep.factors),
            "dropped": [{"configuration": n, "reason": r} for n, r in sweep.dropped],
            "configurations": configurations}


def export_results(tracker: Tracker, targets: list[str], out: Path, *,
                   runs_only: bool = False) -> list[Path]:
    """Write every finished seed run of the sweeps ``targets`` name, and each sweep's file
    (not with ``runs_only``: a sweep still running keeps its runs without a table), under
    ``out``; return the paths written."""
    sweeps, per_sweep = collect(tracker, targets)
    written: list[Path] = []
    with tracker.contact():
        for sweep, rows in zip(sweeps, per_sweep, strict=True):
            configurations = []
            for row in rows:
                runs = {}
                for seed, copy_id in zip(row.seeds, row.run_ids, strict=True):
                    run_id = original_run(tracker, copy_id)
                    record = run_record(tracker, run_id, row, seed)
                    name = f"{record['run_key']}.{record['mlflow_run_id'][:8]}"
                    written.append(write_json(out / "runs" / f"{name}.json", record))
                    runs[str(seed)] = name
                configurations.append({
                    "name": row.name, "config_key": row.config_key,
                    "features": list(row.features), "removed": list(row.removed),
                    "added": list(row.added), "group": row.group,
                    "planned_seeds": row.planned_seeds, "runs": runs})
            if not runs_only:
                written.append(write_json(out / "sweeps" / f"{sweep.sweep_id}.json",
                                          sweep_record(sweep, configurations)))
    return written
