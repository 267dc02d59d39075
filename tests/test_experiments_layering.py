"""Where experiments come from: the shipped file, with the user's file read on top of it (it
extends shipped experiments and replaces them by name), and `--with` / `--without`."""

from __future__ import annotations

import json

import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.config import apply_overrides
from bionic_core.contract.errors import BionicError
from bionic_core.experiments import ExperimentFile, shipped_experiments_path

from .conftest import REPO, one_error_line

runner = CliRunner()
SHIPPED = ExperimentFile.load(REPO / "experiments.toml")


def write(path, text):
    path.write_text(text)
    return path


def test_the_shipped_file_is_the_repositorys():
    assert shipped_experiments_path() == REPO / "experiments.toml"


def test_a_users_file_extends_and_keeps_the_shipped_experiments(tmp_path):
    mine = write(tmp_path / "mine.toml", """
[experiments.quick2]
extends = "quickstart"
epochs = 2
""")
    file = ExperimentFile.load(mine)
    assert {"quickstart", "baseline", "paper", "quick2"} <= set(file.names())
    quick2, shipped = file.config("quick2"), SHIPPED.config("quickstart")
    assert quick2.epochs == 2 and quick2.features == shipped.features
    assert quick2.params == shipped.params  # the shipped feature parameters come along
    assert file.origin("quick2") == mine and file.origin("quickstart") == REPO / "experiments.toml"


def test_a_users_experiment_replaces_a_shipped_one_by_name(tmp_path):
    file = ExperimentFile.load(write(tmp_path / "mine.toml", """
[experiments.quickstart]
extends = "quickstart"   # the shipped quickstart, changed
epochs = 1
[experiments.baseline]   # a different experiment under a shipped name
features = ["layer_norm"]
"""))
    quick, shipped = file.config("quickstart"), SHIPPED.config("quickstart")
    assert quick.epochs == 1 and quick.features == shipped.features
    assert file.config("baseline").features == ("layer_norm",)
    assert file.config("paper").features == SHIPPED.config("paper").features  # untouched


def test_paths_resolve_against_the_file_that_names_them(tmp_path):
    (tmp_path / "data").mkdir()
    file = ExperimentFile.load(write(tmp_path / "mine.toml", """
[defaults]
epochs = 4
[experiments.local]
dataset = "data/fer.npz"
[experiments.paper_here]
extends = "paper"
"""))
    assert file.config("local").dataset == str(tmp_path / "data" / "fer.npz")
    assert file.config("local").epochs == 4  # the user's [defaults] apply to the user's file
    # `paper` names its data relative to the shipped file, wherever it is extended from
    assert file.config("paper_here").dataset == SHIPPED.config("paper").dataset
    assert file.config("quickstart").epochs == SHIPPED.config("quickstart").epochs


@pytest.mark.parametrize("how", ["--experiments", "BIONIC_EXPERIMENTS", "./experiments.toml"])
def test_the_users_file_is_found_three_ways(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIONIC_EXPERIMENTS", raising=False)
    monkeypatch.setenv("BIONIC_DISABLE_PLUGINS", "1")
    name = "experiments.toml" if how.startswith("./") else "mine.toml"
    write(tmp_path / name, '[experiments.mine]\nextends = "quickstart"\ndescription = "mine"\n')
    if how == "BIONIC_EXPERIMENTS":
        monkeypatch.setenv("BIONIC_EXPERIMENTS", str(tmp_path / name))
    args = ["--experiments", name] if how == "--experiments" else []
    listed = runner.invoke(app, ["experiments", "--json", *args])
    assert listed.exit_code == 0, listed.output
    names = json.loads(listed.stdout)
    assert names["mine"]["description"] == "mine" and "quickstart" in names


def test_layering_mistakes_are_one_line(tmp_path):
    with pytest.raises(BionicError, match="unknown experiment 'nope'.*bionic ships: quickstart"):
        ExperimentFile.load(write(tmp_path / "a.toml", '[experiments.a]\nextends = "nope"\n'))
    with pytest.raises(BionicError, match="experiments.a.extends: expected the name"):
        ExperimentFile.load(write(tmp_path / "b.toml", '[experiments.a]\nextends = ["x"]\n'))
    with pytest.raises(BionicError, match="a.toml: experiments.a: 'extends' forms a cycle"):
        ExperimentFile.load(write(tmp_path / "a.toml", '[experiments.a]\nextends = "b"\n'
                                                       '[experiments.b]\nextends = "a"\n'))
    with pytest.raises(BionicError, match="extends itself, but no file below defines 'a'"):
        ExperimentFile.load(write(tmp_path / "a.toml", '[experiments.a]\nextends = "a"\n'))
    with pytest.raises(BionicError, match="missing.toml: experiments file not found"):
        ExperimentFile.load(tmp_path / "missing.toml")


# ============================================================================ --with, --without


def test_with_and_without_change_the_features():
    base = SHIPPED.config("quickstart")
    changed = apply_overrides(base, with_=["hebbian"], without=["augmentation"])
    assert set(changed.features) == set(base.features) - {"augmentation"} | {"hebbian"}
    only = apply_overrides(base, only=["layer_norm"], with_=["conv_frontend"])
    assert only.features == ("conv_frontend", "layer_norm")
    with pytest.raises(BionicError, match="--with hebbian and --without hebbian"):
        apply_overrides(base, with_=["hebbian"], without=["hebbian"])
    with pytest.raises(BionicError, match="--set features: features are switched with --with"):
        apply_overrides(base, sets=["features=['hebbian']"])


def test_ablate_with_and_without_change_the_reference(in_tmp):
    result = runner.invoke(app, ["ablate", "quickstart", "--with", "layer_norm", "--without",
                                 "augmentation", "--with", "weight_decay", "--dry-run",
                                 "--json"])
    assert result.exit_code == 0, result.output
    reference = json.loads(result.stdout)["configurations"][0]
    assert reference["name"] == "reference"
    assert "augmentation" not in reference["features"]
    assert {"weight_decay", "conv_frontend"} <= set(reference["features"])


def test_with_an_unknown_feature_is_one_line(in_tmp):
    one_error_line(runner.invoke(app, ["run", "quickstart", "--with", "hebian"]),
                   "--with", "unknown feature 'hebian'")
