"""The `bionic` command line end to end (Typer's CliRunner), including user errors."""

from __future__ import annotations

import json
import subprocess
import sys

from bionic_cli.app import app
from typer.testing import CliRunner

from .conftest import one_error_line

runner = CliRunner()



def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_plugins_list_json_has_metadata(in_tmp):
    result = invoke("plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    features = {f["name"]: f for f in json.loads(result.stdout)}
    assert {"conv_frontend", "layer_norm"} <= set(features)
    conv = features["conv_frontend"]
    assert conv["group"] == "functional" and conv["source"] == "builtin"
    assert {"requires", "conflicts", "parameters"} <= set(conv)
    assert any(p["name"] == "channels1" and p["default"] == 8 for p in conv["parameters"])


def test_run_end_to_end_on_demo_data_records_mlflow(in_tmp):
    result = invoke("run", "quickstart", "--data", "demo-small", "--epochs", "1",
                    "--set", "hidden_sizes=[16, 16]", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["is_demo"] is True
    assert 0 <= summary["val_accuracy"] <= 1 and summary["epochs_run"] == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{in_tmp / 'mlflow.db'}")
    run = client.get_run(summary["run_id"])
    assert run.data.params["feature.conv_frontend"] == "True"
    assert run.data.tags["bionic.run_key"] == summary["run_key"]
    assert "final_val_accuracy" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 1




def test_unknown_experiment(in_tmp):
    one_error_line(invoke("run", "nope"), "experiments.toml", "unknown experiment 'nope'")


def test_unknown_feature(in_tmp):
    one_error_line(invoke("run", "quickstart", "--without", "hebian"), "unknown feature 'hebian'")
    one_error_line(invoke("run", "quickstart", "--only", "conv_frontend,nope"), "'nope'")


def test_bad_toml_value_and_unknown_key(in_tmp):
    bad = in_tmp / "bad.toml"
    bad.write_text('[experiments.x]\nepochs = "many"\n')
    one_error_line(invoke("run", "x", "--experiments", str(bad)), "bad.toml",
                    "experiments.x.epochs: expected int")
    bad.write_text('[experiments.x]\nepoch = 3\n')
    one_error_line(invoke("run", "x", "--experiments", str(bad)), "unknown key 'epoch'")


def test_missing_data_path(in_tmp):
    one_error_line(invoke("run", "quickstart", "--data", str(in_tmp / "missing.csv")),
                    "missing.csv")


def test_bad_csv_row(in_tmp):
    csv = in_tmp / "fer.csv"
    csv.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2303) + ",Training\n")
    one_error_line(invoke("run", "quickstart", "--data", str(csv)), "fer.csv", "2303")


def test_python_dash_m_entry_point(in_tmp):
    out = subprocess.run([sys.executable, "-m", "bionic_cli", "run", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown experiment" in out.stderr


# ============================================================================ how help reads


def _commands(command=None, path=()):
    """Every command of the app with its words (`data info`), groups included."""
    import typer

    command = command or typer.main.get_command(app)
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def test_help_shows_no_type_after_flags_and_names_arguments_in_capitals(in_tmp):
    for path, _ in _commands():
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path
        usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
        assert "{" not in usage, usage
    usage = " ".join(runner.invoke(app, ["ablate", "--help"], env={"COLUMNS": "200"})
                     .stdout.split())
    assert "ablate [OPTIONS] EXPERIMENT" in usage and "[ablation] table" in usage


def test_the_plan_counts_in_words(in_tmp):
    result = invoke("ablate", "quickstart", "--seeds", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "× 1 seed =" in " ".join(result.stdout.split()) and "1 seeds" not in result.stdout


def test_a_mistake_in_the_command_line_is_one_line(in_tmp):
    one_error_line(invoke("run"), "bionic run: Missing argument 'EXPERIMENT'")
    one_error_line(invoke("run", "quickstart", "--epoch", "3"), "bionic run: No such option")
    one_error_line(invoke("--nope"), "bionic: No such option: --nope")


def test_a_front_end_pooled_to_nothing_is_one_line(in_tmp):
    line = one_error_line(invoke("run", "quickstart", "-q", "--epochs", "1", "--data", "demo-small",
                                 "--set", "conv_frontend.blocks=4", "--set",
                                 "conv_frontend.pool=3"),
                          "params.conv_frontend: 4 blocks pooled by 3", "48×48")
    assert "fewer blocks" in line
