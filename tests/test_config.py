"""experiments.toml parsing, overrides, run keys and their errors."""

from __future__ import annotations

import pytest

from bionic_core.config import RunConfig, apply_overrides, resolve_features
from bionic_core.contract.errors import BionicError
from bionic_core.experiments import ExperimentFile

from .conftest import REPO


def write(tmp_path, text):
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return path


def test_repository_experiments_parse(catalogue):
    file = ExperimentFile.load(REPO / "experiments.toml")
    assert {"quickstart", "baseline", "paper"} <= set(file.names())
    quick = file.config("quickstart")
    assert quick.dataset == "demo" and quick.seeds and quick.seed == quick.seeds[0]
    resolve_features(quick, catalogue, "quickstart")
    # relative dataset paths are resolved against the experiments file's folder
    assert file.config("baseline").dataset.startswith(str(REPO.parent))


def test_defaults_extends_and_types(tmp_path):
    path = write(tmp_path, """
[defaults]
lr = 0.01
epochs = 3
[experiments.a]
features = ["layer_norm"]
batch_size = 16
[experiments.b]
extends = "a"
lr = 1
""")
    file = ExperimentFile.load(path)
    a, b = file.config("a"), file.config("b")
    assert (a.lr, a.epochs, a.batch_size, a.features) == (0.01, 3, 16, ("layer_norm",))
    assert b.lr == 1.0 and isinstance(b.lr, float) and b.batch_size == 16


@pytest.mark.parametrize("text, message", [
    ("[experiments.a]\nepochs = \"ten\"\n", "experiments.a.epochs: expected int, got str"),
    ("[experiments.a]\nlearning_rate = 0.1\n", "experiments.a: unknown key 'learning_rate'"),
    ("[experiments.a]\nfeatures = \"layer_norm\"\n", "experiments.a.features: expected a list"),
    ("[experiment.a]\n", "unknown top-level key 'experiment'"),
    ("[experiments.a]\nepochs = 3\nepochs = 4\n", "invalid TOML"),
    ("[experiments.a]\nextends = \"zzz\"\n", "unknown experiment 'zzz'"),
])
def test_bad_toml_values_name_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(BionicError) as info:
        ExperimentFile.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_experiment_lists_known(tmp_path):
    file = ExperimentFile.load(write(tmp_path, "[experiments.a]\n"))
    with pytest.raises(BionicError, match=r"unknown experiment 'b' \(known: a\)"):
        file.config("b")


def test_overrides():
    base = RunConfig(features=("conv_frontend", "layer_norm"))
    c = apply_overrides(base, sets=["lr=5e-4", "conv_frontend.channels1=4", "hidden_sizes=[8, 8]"],
                        without=["layer_norm"], seed=7, epochs=2, device="cpu")
    assert c.lr == 5e-4 and c.hidden_sizes == (8, 8) and c.features == ("conv_frontend",)
    assert c.params == {"conv_frontend": {"channels1": 4}}
    assert (c.seed, c.seeds, c.epochs, c.device) == (7, (7,), 2, "cpu")
    only = apply_overrides(base, only=["layer_norm"])
    assert only.features == ("layer_norm",)
    with pytest.raises(BionicError, match="--set lr: expected float"):
        apply_overrides(base, sets=["lr=fast"])
    with pytest.raises(BionicError, match="--set nonsense: unknown key"):
        apply_overrides(base, sets=["nonsense=1"])
    with pytest.raises(BionicError, match="--device gpu"):
        apply_overrides(base, device="gpu")


def test_feature_parameters_are_checked(catalogue):
    bad_type = RunConfig(features=("conv_frontend",), params={"conv_frontend": {"channels1": "x"}})
    with pytest.raises(BionicError, match="params.conv_frontend.channels1: expected int"):
        resolve_features(bad_type, catalogue, "here")
    unknown = RunConfig(features=("conv_frontend",), params={"conv_frontend": {"chanels": 3}})
    with pytest.raises(BionicError, match="unknown parameter 'chanels'"):
        resolve_features(unknown, catalogue, "here")
    with pytest.raises(BionicError, match="unknown feature 'hebian'"):
        resolve_features(RunConfig(features=("hebian",)), catalogue, "here")


def test_run_key_is_stable_and_identifies_the_computation():
    a = RunConfig(features=("layer_norm", "conv_frontend"), seed=1)
    b = RunConfig(features=("conv_frontend", "layer_norm"), seed=1, experiment="other",
                  device="cuda")
    assert a.key() == b.key()  # order of features, experiment name and device do not matter
    assert a.key() != a.replace(seed=2).key()
    assert a.key() != a.replace(lr=0.1).key()
    # parameters of disabled features do not change the computation
    assert a.key() == a.replace(params={"hebbian": {"rate": 1.0}}).key()
    assert len(a.key()) == 16
