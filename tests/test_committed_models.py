"""The models committed under results/models (the headline's seed-0 models) still load into
today's code, and — where the FER-2013 files are present — reproduce their runs' PublicTest
metrics through `bionic evaluate FOLDER`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.studies.saved_models import load_model_files, read_model_folder

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted(p for p in (REPO / "results" / "models").glob("*") if p.is_dir())
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
@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
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
