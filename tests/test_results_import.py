"""`bionic results import`: exported runs and sweeps rebuilt in another MLflow store export to
the same bytes, are compared there, and are not trained again when a sweep continues there."""

from __future__ import annotations

import json
import os
import shutil

from bionic_cli.app import app
from typer.testing import CliRunner

from .conftest import TINY_EXPERIMENTS, empty_store, one_error_line
from .test_results_export import snapshot
from .test_sweep import runs_of

runner = CliRunner()


def counts(result) -> dict[str, int]:
    """A sweep's outcomes that happened (`bionic ablate --json`)."""
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout.strip().splitlines()[-1])["counts"]
    return {outcome: n for outcome, n in found.items() if n}


def new_store(folder, tmp_path_factory, name: str) -> str:
    """The URI of a new, empty SQLite store (another machine's)."""
    shutil.copy(empty_store(tmp_path_factory), folder / name)
    return f"sqlite:///{folder / name}"


def test_imported_results_export_the_same_bytes_and_are_not_trained_again(
        store, tmp_path_factory):
    again_text = TINY_EXPERIMENTS.replace("[experiments.tiny]", "[experiments.tiny_again]")
    (store / "exp.toml").write_text(TINY_EXPERIMENTS + again_text)
    ran = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    sweep_id = json.loads(ran.stdout.strip().splitlines()[-1])["sweep_id"]
    assert counts(ran)["finished"] == 4
    assert runner.invoke(app, ["results", "export", "tiny", "--out", "results"]).exit_code == 0
    exported = snapshot(store / "results")

    # Another machine: a new store, the exports imported, exported again: the same bytes.
    uri = new_store(store, tmp_path_factory, "other.db")
    imported = runner.invoke(app, ["results", "import", "results", "--tracking-uri", uri])
    assert imported.exit_code == 0, imported.output
    assert "4 runs and 1 sweeps imported" in " ".join(imported.stderr.split())
    again = runner.invoke(app, ["results", "export", sweep_id, "--out", "again",
                                "--tracking-uri", uri])
    assert again.exit_code == 0, again.output
    assert snapshot(store / "again") == exported
    runs = runs_of(uri, "tiny", "run")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags["bionic.imported_from"].startswith("runs/") for r in runs)
    # Importing again adds nothing.
    twice = runner.invoke(app, ["results", "import", "results", "--tracking-uri", uri])
    assert "0 runs and 0 sweeps imported" in " ".join(twice.stderr.split())
    assert len(runs_of(uri, "tiny", "run")) == 4
    compared = runner.invoke(app, ["compare", sweep_id, "--tracking-uri", uri, "--format",
                                   "markdown"])
    assert compared.exit_code == 0 and "2/2" in compared.stdout, compared.output

    # The sweep rerun there trains nothing; the same runs under another experiment are copies.
    os.environ["MLFLOW_TRACKING_URI"] = uri  # (monkeypatched by the fixture: restored after)
    assert counts(runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                      "--json"])) == {"skipped": 4}
    copied = runner.invoke(app, ["ablate", "tiny_again", "--experiments", "exp.toml", "--json"])
    assert counts(copied) == {"skipped": 4}
    assert all("bionic.copied_from" in r.data.tags for r in runs_of(uri, "tiny_again", "run"))
    both = runner.invoke(app, ["results", "export", "tiny_again", "--out", "both"])
    assert both.exit_code == 0, both.output
    assert snapshot(store / "both" / "runs") == snapshot(store / "results" / "runs")


def test_a_partly_exported_sweep_continues_with_its_missing_runs_only(store, tmp_path_factory):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    ran = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    sweep_id = json.loads(ran.stdout.strip().splitlines()[-1])["sweep_id"]
    assert runner.invoke(app, ["results", "export", "tiny", "--out", "results"]).exit_code == 0
    # --runs-only: the runs, no sweep file (no table of a sweep still running).
    assert runner.invoke(app, ["results", "export", "tiny", "--out", "partial",
                               "--runs-only"]).exit_code == 0
    assert snapshot(store / "partial") == {
        name: data for name, data in snapshot(store / "results").items()
        if name.startswith("runs/")}
    # One seed run not exported (the machine was lost before it finished).
    sweep_file = store / "results" / "sweeps" / f"{sweep_id}.json"
    sweep = json.loads(sweep_file.read_text())
    lost = sweep["configurations"][1]["runs"].pop("1")
    (store / "results" / "runs" / f"{lost}.json").unlink()
    sweep_file.write_text(json.dumps(sweep))

    uri = new_store(store, tmp_path_factory, "other.db")
    assert runner.invoke(app, ["results", "import", "results", "--tracking-uri", uri]
                         ).exit_code == 0
    os.environ["MLFLOW_TRACKING_URI"] = uri
    assert counts(runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                      "--json"])) == {"finished": 1, "skipped": 3}
    done = runner.invoke(app, ["results", "export", sweep_id, "--out", "done"])
    assert done.exit_code == 0, done.output
    final = json.loads((store / "done" / "sweeps" / f"{sweep_id}.json").read_text())
    assert [sorted(c["runs"]) for c in final["configurations"]] == [["0", "1"], ["0", "1"]]
    assert final["configurations"][1]["runs"]["1"].split(".")[0] == lost.split(".")[0]


def test_import_errors_are_one_line(store):
    one_error_line(runner.invoke(app, ["results", "import", "nowhere"]), "nowhere",
                   "no runs/ folder")
    (store / "results" / "runs").mkdir(parents=True)
    (store / "results" / "runs" / "k.0.json").write_text("{not json")
    one_error_line(runner.invoke(app, ["results", "import", "results"]), "k.0.json",
                   "not a readable export")
    (store / "results" / "runs" / "k.0.json").write_text('{"format": 99}')
    one_error_line(runner.invoke(app, ["results", "import", "results"]), "k.0.json",
                   "export format 99")
