"""Importing exported results (``results/runs``, ``results/sweeps``) into an MLflow store.

The exports are what survives a machine: importing them rebuilds, in any store, each exported
seed run (finished, with its tags, final metrics, per-epoch metrics, config.json and
metrics.json: everything its export holds; not its model) and each sweep with its configuration
runs. Then `bionic compare` and the MLflow UI show them, a sweep that is rerun or continued
there skips the keys it finds finished, a sweep of another experiment copies them (as for any
run finished in the store), and exporting again writes the same bytes: an imported run keeps,
in ``bionic.exported_as``, the MLflow run id its file is named after.

A run or sweep already in the store (by that id, or imported before) is not imported twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bionic_core.contract.errors import BionicError
from bionic_core.studies.results_export import FORMAT, TAG_EXPORTED_AS
from bionic_core.studies.sweep_records import (
    TAG_CONFIG_KEY,
    TAG_CONFIGURATION,
    TAG_DESIGN,
    TAG_RUN_KEYS,
    TAG_STATUS,
    TAG_SWEEP,
    search_runs,
)
from bionic_core.studies.tracking import (
    TAG_COPIED_FROM,
    TAG_DATA_FINGERPRINT,
    TAG_EXPERIMENT,
    TAG_KIND,
    MlflowStatus,
    Tracker,
    seed_run_tags,
)

TAG_IMPORTED_FROM = "bionic.imported_from"  # the export file a run or sweep was imported from
NOT_EXPORTED = "(not exported)"  # the run key of a planned seed the export has no run of


@dataclass
class ImportReport:
    """What an import added to the store, and what it found there already."""

    runs: int = 0
    sweeps: int = 0
    copies: int = 0  # runs of another experiment copied into a sweep's
    present_runs: int = 0  # exported runs the store held already
    present_sweeps: int = 0


def read_export(path: Path) -> dict[str, Any]:
    """One exported file, checked to be JSON of this export format (one line when not)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BionicError(f"{path}: not a readable export ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise BionicError(f"{path}: export format {found!r}, this bionic reads format {FORMAT}")
    return record


def _run_tags(record: dict[str, Any], name: str) -> dict[str, str]:
    dataset = record["dataset"]
    optional = {"git.commit": record.get("bionic_commit"),
                "bionic.version": record.get("bionic_version")}
    return {**seed_run_tags(key=record["run_key"], seed=record["seed"],
                            settings_key=record.get("settings_key"),
                            provenance=record.get("feature_provenance") or {},
                            dataset=str(dataset["name"]),
                            fingerprint=str(dataset["fingerprint"]),
                            is_demo=bool(dataset["is_demo"]),
                            features=record["config"].get("features", [])),
            TAG_CONFIGURATION: record["configuration"], TAG_CONFIG_KEY: record["config_key"],
            TAG_STATUS: "finished", TAG_EXPORTED_AS: record["mlflow_run_id"],
            TAG_IMPORTED_FROM: f"runs/{name}.json",
            **{k: str(v) for k, v in optional.items() if v is not None}}


def _final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The ``final_*`` metrics an export's ``final`` and ``n_parameters`` came from."""
    out: dict[str, float] = {}
    for split, values in record["final"].items():
        for name, value in values.items():
            if isinstance(value, dict):  # recall / precision per class
                out.update({f"final_{split}_{name}_{cls}": v for cls, v in value.items()})
            else:
                out[f"final_{split}_{name}"] = value
    if record.get("n_parameters") is not None:
        out["final_n_parameters"] = record["n_parameters"]
    return out


def _metrics_json(record: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json artifact an export's epochs, holdout and confusion matrices came from."""
    confusion = {split: {"confusion": matrix} for split, matrix in record["confusion"].items()}
    return {"history": record["epochs"], "dataset": {"holdout": record["dataset"]["holdout"]},
            "val": confusion.pop("val", None), "test": confusion.pop("test", None),
            "tests": confusion}


class _Importer:
    """One import into ``tracker`` from the folder ``results``."""

    def __init__(self, tracker: Tracker, results: Path) -> None:
        self.tracker, self.results = tracker, results
        self.report = ImportReport()
        ids = list(tracker.experiments())
        every = search_runs(tracker, ids, "") if ids else []
        self.run_ids = {r.info.run_id for r in every}
        # exported id → experiment name → the run of it there (imported or copied)
        self.placed: dict[str, dict[str, str]] = {}
        for run in every:
            tags = run.data.tags
            exported = tags.get(TAG_EXPORTED_AS) or (
                tags.get(TAG_COPIED_FROM) if tags.get(TAG_KIND) == "run" else None)
            if exported:
                self.placed.setdefault(exported, {})[tags.get(TAG_EXPERIMENT, "")] = \
                    run.info.run_id
        self.sweeps = {r.data.tags.get(TAG_SWEEP) for r in every
                       if r.data.tags.get(TAG_KIND) == "sweep"}
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, name: str) -> dict[str, Any]:
        if name not in self.records:
            path = self.results / "runs" / f"{name}.json"
            if not path.is_file():
                raise BionicError(f"{path}: no such file (a sweep of {self.results} names it)")
            self.records[name] = read_export(path)
        return self.records[name]

    def present(self, record: dict[str, Any], experiment: str) -> str | None:
        """The run of ``record`` in ``experiment`` already in the store, or None."""
        exported = record["mlflow_run_id"]
        if exported in self.run_ids and record["experiment"] == experiment:
            return exported
        return self.placed.get(exported, {}).get(experiment)

    def run(self, name: str, parent_id: str | None = None,
            sweep_tags: dict[str, str] | None = None) -> str:
        """The store's run of the export ``name`` in its own experiment, imported when absent
        (below ``parent_id`` when given)."""
        record = self.record(name)
        found = self.present(record, record["experiment"])
        if found is not None:
            return found
        tracker = self.tracker
        run_id = tracker.start(record["experiment"], f"{record['configuration']} "
                               f"s{record['seed']}", tags={**(sweep_tags or {}),
                                                           **_run_tags(record, name)},
                               parent_id=parent_id)
        steps = {int(row["epoch"]): {k: v for k, v in row.items() if k != "epoch"}
                 for row in record["epochs"]}
        tracker.log_metric_steps(run_id, steps)
        tracker.log_metrics(run_id, _final_metrics(record))
        tracker.log_json(run_id, "config.json", record["config"])
        tracker.log_json(run_id, "metrics.json", _metrics_json(record))
        tracker.end(run_id, MlflowStatus.FINISHED)
        self.placed.setdefault(record["mlflow_run_id"], {})[record["experiment"]] = run_id
        self.report.runs += 1
        return run_id

    def sweep(self, path: Path) -> None:
        """A sweep file: its sweep run, configuration runs and seed runs (runs exported from
        another experiment are copied into the sweep's, as a sweep does)."""
        sweep = read_export(path)
        if sweep["sweep_id"] in self.sweeps:
            self.report.present_sweeps += 1
            return
        experiment, tracker = sweep["experiment"], self.tracker
        names = [n for c in sweep["configurations"] for n in c["runs"].values()]
        fingerprints = {str(self.record(n)["dataset"]["fingerprint"]) for n in names}
        common = {TAG_SWEEP: sweep["sweep_id"], TAG_DESIGN: sweep["design"],
                  TAG_IMPORTED_FROM: f"sweeps/{path.name}"}
        sweep_run = tracker.start(experiment, f"sweep {sweep['name']}", tags={
            **common, TAG_KIND: "sweep", "bionic.sweep_name": sweep["name"],
            "bionic.anchor": sweep["anchor"], "bionic.factors": ",".join(sweep["factors"]),
            "bionic.dropped": json.dumps([[d["configuration"], d["reason"]]
                                          for d in sweep["dropped"]])[:5000],
            **({TAG_DATA_FINGERPRINT: fingerprints.pop()} if len(fingerprints) == 1 else {})})
        complete = True
        for order, configuration in enumerate(sweep["configurations"]):
            complete &= self.configuration(configuration, order, sweep_run, common, experiment)
        tracker.end(sweep_run, MlflowStatus.FINISHED if complete else MlflowStatus.FAILED)
        self.sweeps.add(sweep["sweep_id"])
        self.report.sweeps += 1

    def configuration(self, configuration: dict[str, Any], order: int, sweep_run: str,
                      common: dict[str, str], experiment: str) -> bool:
        runs = configuration["runs"]
        keys = [f"{seed}:{runs[str(seed)].split('.')[0] if str(seed) in runs else NOT_EXPORTED}"
                for seed in configuration["planned_seeds"]]
        run_id = self.tracker.start(experiment, configuration["name"], tags={
            **common, TAG_KIND: "configuration", TAG_CONFIGURATION: configuration["name"],
            TAG_CONFIG_KEY: configuration["config_key"], "bionic.order": str(order),
            "bionic.features": ",".join(configuration["features"]) or "(none)",
            "bionic.removed": ",".join(configuration["removed"]),
            "bionic.added": ",".join(configuration["added"]),
            "bionic.group": configuration["group"], TAG_RUN_KEYS: ",".join(keys)},
            parent_id=sweep_run)
        seed_tags = {TAG_SWEEP: common[TAG_SWEEP], TAG_DESIGN: common[TAG_DESIGN],
                     TAG_CONFIGURATION: configuration["name"]}
        for name in runs.values():
            record = self.record(name)
            if record["experiment"] == experiment:
                self.run(name, run_id, seed_tags)
            elif self.present(record, experiment) is None:
                self.copy(name, experiment, run_id, seed_tags)
        complete = len(runs) == len(configuration["planned_seeds"])
        self.tracker.end(run_id, MlflowStatus.FINISHED if complete else MlflowStatus.FAILED)
        return complete

    def copy(self, name: str, experiment: str, parent_id: str, tags: dict[str, str]) -> None:
        record = self.record(name)
        original = self.run(name)
        copy_id = self.tracker.copy_run(original, experiment,
                                        f"{record['configuration']} s{record['seed']}",
                                        tags=tags, parent_id=parent_id)
        self.placed.setdefault(record["mlflow_run_id"], {})[experiment] = copy_id
        self.report.copies += 1


def import_results(tracker: Tracker, results: Path) -> ImportReport:
    """Import every sweep of ``results/sweeps`` and every run of ``results/runs`` (see the
    module docstring); return what was added."""
    runs, sweeps = results / "runs", results / "sweeps"
    if not runs.is_dir():
        raise BionicError(f"{results}: no runs/ folder of exported runs (write one with "
                          "`bionic results export`)")
    run_files = sorted(runs.glob("*.json"))
    with tracker.contact():
        importer = _Importer(tracker, results)
        for path in sorted(sweeps.glob("*.json")) if sweeps.is_dir() else []:
            importer.sweep(path)
        for path in run_files:
            importer.run(path.stem)
    report = importer.report
    report.present_runs = len(run_files) - report.runs
    return report
