"""`bionic results export` / `bionic results tables`: byte-stable exports of a real sweep, and
tables rebuilt from them alone that match `bionic compare`."""

from __future__ import annotations

import json

from bionic_cli.app import app
from typer.testing import CliRunner

from .conftest import TINY_EXPERIMENTS, one_error_line

runner = CliRunner()


def markdown_table(text: str) -> list[dict[str, str]]:
    """The first markdown table in ``text`` as one dict per row."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    head = split[0]
    return [dict(zip(head, row, strict=True)) for row in split[2:]]


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_is_byte_stable_and_tables_match_compare(store, monkeypatch):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    ran = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    assert ran.exit_code == 0, ran.output
    sweep_id = json.loads(ran.stdout.strip().splitlines()[-1])["sweep_id"]

    first = runner.invoke(app, ["results", "export", "tiny", "--out", "results"])
    assert first.exit_code == 0, first.output
    exported = snapshot(store / "results")
    again = runner.invoke(app, ["results", "export", sweep_id, "--out", "results"])
    assert again.exit_code == 0, again.output
    assert snapshot(store / "results") == exported
    runs = sorted((store / "results" / "runs").glob("*.json"))
    assert len(runs) == 4 and (store / "results" / "sweeps" / f"{sweep_id}.json").is_file()

    record = json.loads(runs[0].read_text())
    # one file per MLflow run: <run key>.<run id prefix>
    assert runs[0].stem == f"{record['run_key']}.{record['mlflow_run_id'][:8]}"
    assert record["experiment"] == "tiny"
    assert record["seed"] in (0, 1) and record["config"]["epochs"] == 1
    assert record["dataset"]["is_demo"] is True and record["dataset"]["fingerprint"]
    assert [set(e) for e in record["epochs"]] == [
        {"epoch", "train_loss", "val_accuracy", "val_macro_f1", "lr"}]
    assert {"accuracy", "macro_f1", "recall"} <= set(record["final"]["test"])
    assert len(record["confusion"]["test"]) == 7 and record["n_parameters"] > 0
    assert "seconds" not in runs[0].read_text() and "time" not in runs[0].read_text()
    sweep = json.loads((store / "results" / "sweeps" / f"{sweep_id}.json").read_text())
    assert [c["name"] for c in sweep["configurations"]] == ["reference", "-layer_norm"]
    assert sorted(k for c in sweep["configurations"] for k in c["runs"].values()) == [
        p.stem for p in runs]

    # Tables from the exports alone (no MLflow store at all) match `bionic compare`.
    compared = runner.invoke(app, ["compare", sweep_id, "--format", "markdown"])
    assert compared.exit_code == 0, compared.output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///nowhere/missing.db")
    built = runner.invoke(app, ["results", "tables", "--results", "results",
                                "--out", "results/tables"])
    assert built.exit_code == 0, built.output
    table = (store / "results" / "tables" / f"comparison_{sweep_id}.md").read_text()
    expected, got = markdown_table(compared.stdout), markdown_table(table)
    assert len(got) == 2
    for want, have in zip(expected, got, strict=True):
        assert {k: v for k, v in want.items() if k != "train s"} == \
               {k: v for k, v in have.items() if k != "train s"}
    assert table.splitlines()[0] == compared.stdout.splitlines()[0]  # the title
    headline = markdown_table((store / "results" / "tables" / "headline.md").read_text())
    assert {(r["configuration"], r["split"]) for r in headline} >= {
        ("reference (tiny)", "test"), ("-layer_norm", "val")}
    assert all(r["seeds"] == "2" for r in headline)
    tables = snapshot(store / "results" / "tables")
    assert runner.invoke(app, ["results", "tables"]).exit_code == 0  # deterministic
    assert snapshot(store / "results" / "tables") == tables

    # --page refills the tables a page embeds; a page or an embedded table that is not there
    # is one line, exit 2, and the page is left as it was.
    page = store / "PAGE.md"
    page.write_text("intro\n<!-- results-table: headline.md -->\nold\n<!-- /results-table -->\n")
    assert runner.invoke(app, ["results", "tables", "--page", "PAGE.md"]).exit_code == 0
    assert page.read_text() == ("intro\n<!-- results-table: headline.md -->\n"
                                + tables["headline.md"].decode() + "<!-- /results-table -->\n")
    one_error_line(runner.invoke(app, ["results", "tables", "--page", "nope.md"]),
                   "--page nope.md", "no such file")
    unknown = "<!-- results-table: unknown.md -->\n<!-- /results-table -->\n"
    page.write_text(unknown)
    one_error_line(runner.invoke(app, ["results", "tables", "--page", "PAGE.md"]),
                   "PAGE.md", "embeds unknown.md")
    assert page.read_text() == unknown
    one_error_line(runner.invoke(app, ["results", "figures", "--results", "nothing"]),
                   "no exported sweep")

    # A twin table (the sweep beside itself: each run is its own twin); a bad entry is one line.
    pairs = store / "results" / "comparisons.toml"
    pairs.write_text(f'[twins.self]\nsweeps = ["{sweep_id}", "{sweep_id}"]\nlabels = ["a", "b"]\n')
    assert runner.invoke(app, ["results", "tables"]).exit_code == 0
    twins = (store / "results" / "tables" / "twins_self.md").read_text().splitlines()
    rows = [line.strip("| ").split(" | ") for line in twins if line.startswith("| reference (")]
    assert [r[0] for r in rows] == ["reference (0)", "reference (1)"]
    assert all(r[1] == r[2] and r[3] == r[4] and len(set(r[5].split(" → "))) == 1 for r in rows)
    pairs.write_text('[twins.self]\nsweeps = ["x"]\n')
    one_error_line(runner.invoke(app, ["results", "tables"]), "comparisons.toml",
                   "twins.self: expected")
    pairs.unlink()

    # A damaged or missing export file is one line, exit 2.
    runs[0].write_text("{not json")
    one_error_line(runner.invoke(app, ["results", "tables"]), runs[0].name, "damaged")
    runs[0].unlink()
    one_error_line(runner.invoke(app, ["results", "tables"]), runs[0].name, "missing")
    one_error_line(runner.invoke(app, ["results", "tables", "--results", "nothing"]),
                   "no exported sweep")
    one_error_line(runner.invoke(app, ["results", "export", "nope"]), "nope")
