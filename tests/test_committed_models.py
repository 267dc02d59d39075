"""The models committed under results/models (the headline's seed-0 models and the record
attempt's ensemble members) still load into today's code, and — where the FER-2013 files are
present — reproduce their runs' PublicTest metrics through `bionic evaluate FOLDER`; the
ensemble reports under results/ensembles reproduce from those folders the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.studies.saved_models import load_model_files, read_model_folder

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted(p for p in (REPO / "results" / "models").glob("*") if p.is_dir())
# The tuned record pair's members are re-run by the headline ensemble's test below (record_tuned)
# or only with -m slow (record_cnn_tuned): each evaluation is seconds of CPU, and the default
# test run has to stay short.
ENSEMBLE_MEMBER = ("record_tuned-s", "record_cnn_tuned-s")


def _slow_unless(keep: bool, path: Path) -> object:
    return pytest.param(path, id=path.stem if path.is_file() else path.name,
                        marks=() if keep else pytest.mark.slow)
PUBLIC_TEST = REPO.parent / "shared" / "data" / "fer2013" / "fer2013_publictest.npz"
runner = CliRunner()


@pytest.mark.skipif(not MODELS, reason="no committed model under results/models")
@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_a_committed_model_loads(folder, catalogue):
    run, hashes = read_model_folder(folder)
    config, model, _ = load_model_files(folder, catalogue, "cpu", str(folder))
    assert config.seed == run["seed"] and list(config.features) == run["features"]
    assert len(hashes) > 20_000  # the distinct images of its FER-2013 training part
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.skipif(not MODELS, reason="no committed model under results/models")
@pytest.mark.skipif(not PUBLIC_TEST.is_file(), reason=f"FER-2013 PublicTest not found at "
                    f"{PUBLIC_TEST} (the shared data beside the repository)")
@pytest.mark.parametrize("folder", [_slow_unless(not p.name.startswith(ENSEMBLE_MEMBER), p)
                                    for p in MODELS])
def test_a_committed_model_reproduces_its_public_test_score(folder):
    run, _ = read_model_folder(folder)
    result = runner.invoke(app, ["evaluate", str(folder), "--data", str(PUBLIC_TEST),
                                 "--allow-train-overlap", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    logged = run["final"]["test_public"]
    assert report["data"]["n"] == 3589
    assert report["accuracy"] == pytest.approx(logged["accuracy"], abs=1e-9)
    assert report["macro_f1"] == pytest.approx(logged["macro_f1"], abs=1e-9)


ENSEMBLES = sorted((REPO / "results" / "ensembles").glob("*.json"))
HEADLINE_ENSEMBLE = "record_tuned-s0-2.publictest.mirror"  # the record attempt's best model


@pytest.mark.skipif(not ENSEMBLES, reason="no committed ensemble report under results/ensembles")
@pytest.mark.parametrize("report_file", ENSEMBLES, ids=[p.stem for p in ENSEMBLES])
def test_a_committed_ensemble_names_committed_members(report_file, catalogue):
    from bionic_core.network.model import count_parameters

    [report] = json.loads(report_file.read_text())
    counted = 0
    for member in report["members"]:
        folder = REPO / member["model"]
        run, _ = read_model_folder(folder)
        assert run["mlflow_run_id"] == member["run_id"]
        counted += count_parameters(load_model_files(folder, catalogue, "cpu", str(folder))[1])
    assert counted == report["n_parameters"]


@pytest.mark.skipif(not ENSEMBLES, reason="no committed ensemble report under results/ensembles")
@pytest.mark.skipif(not PUBLIC_TEST.is_file(), reason=f"FER-2013 PublicTest not found at "
                    f"{PUBLIC_TEST} (the shared data beside the repository)")
@pytest.mark.parametrize("report_file", [_slow_unless(p.stem == HEADLINE_ENSEMBLE, p)
                                         for p in ENSEMBLES])
def test_a_committed_ensemble_reproduces_its_public_test_score(report_file, monkeypatch):
    [report] = json.loads(report_file.read_text())
    dropped = "pixel copies of training images" in report["data"]["origin"]
    monkeypatch.chdir(REPO)  # the report names its members and data relative to the repository
    result = runner.invoke(app, ["evaluate", *report["ensemble"], "--data", str(PUBLIC_TEST),
                                 "--drop-train-overlap" if dropped else "--allow-train-overlap",
                                 *(["--mirror"] if report["mirror"] else []),
                                 "--shift", str(report.get("shift", 0)), "--json",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [again] = json.loads(result.stdout)
    assert again["data"]["n"] == report["data"]["n"]
    assert again["accuracy"] == pytest.approx(report["accuracy"], abs=1e-9)
    assert again["macro_f1"] == pytest.approx(report["macro_f1"], abs=1e-9)
    assert [m["accuracy"] for m in again["members"]] == pytest.approx(
        [m["accuracy"] for m in report["members"]], abs=1e-9)


@pytest.mark.skipif(not ENSEMBLES, reason="no committed ensemble report under results/ensembles")
def test_the_headline_ensemble_is_committed():
    # the default test run re-runs this one report; a rename must not leave it re-running none
    assert HEADLINE_ENSEMBLE in [p.stem for p in ENSEMBLES]
