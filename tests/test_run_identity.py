"""Run identity: the key is canonical (explicit defaults do not change it) and covers the
features' code; a feature that fails at run time is named, with its traceback kept."""

from __future__ import annotations

import json
import types

import pytest

from bionic_core.api import Feature, FeatureFailure, Param, hookimpl
from bionic_core.config import resolve_features
from bionic_core.host import plugin_provenance
from bionic_core.training.loop import train_run

from .conftest import tiny_config


def test_explicit_default_does_not_change_the_key(catalogue):
    default_rate = catalogue["hebbian"].defaults()["rate"]
    plain = resolve_features(tiny_config(features=("hebbian",)), catalogue, "t")
    explicit = resolve_features(
        tiny_config(features=("hebbian",), params={"hebbian": {"rate": default_rate}}),
        catalogue, "t")
    other = resolve_features(
        tiny_config(features=("hebbian",), params={"hebbian": {"rate": default_rate * 2}}),
        catalogue, "t")
    assert plain.key() == explicit.key()
    assert plain.key() != other.key()
    # Resolved configs carry every parameter, and resolving twice changes nothing.
    assert set(plain.params["hebbian"]) == {p.name for p in catalogue["hebbian"].params}
    assert resolve_features(plain, catalogue, "t").key() == plain.key()


def test_key_covers_the_features_provenance(catalogue):
    config = resolve_features(tiny_config(features=("layer_norm",)), catalogue, "t")
    assert config.feature_provenance == {"layer_norm": catalogue["layer_norm"].provenance}
    assert config.feature_provenance["layer_norm"].startswith("bionic ")
    changed = config.replace(feature_provenance={"layer_norm": "bionic 9.9.9"})
    assert changed.key() != config.key()
    # Provenance of features that are not enabled does not matter.
    extra = config.replace(feature_provenance={**config.feature_provenance, "hebbian": "x"})
    assert extra.key() == config.key()


class _Dist:
    def __init__(self, name, version, editable):
        self.name, self.version, self._editable = name, version, editable

    def read_text(self, filename):
        if filename == "direct_url.json" and self._editable:
            return json.dumps({"url": "file:///src", "dir_info": {"editable": True}})
        return None


def test_plugin_provenance_hashes_editable_and_unversioned_sources(tmp_path):
    module = types.ModuleType("my_feature")
    path = tmp_path / "my_feature.py"
    path.write_text("X = 1\n")
    module.__file__ = str(path)
    builtin = plugin_provenance(module, "builtin")
    assert builtin.startswith("bionic ") and "+src." in builtin
    assert plugin_provenance(module, "pkg 1.0", _Dist("pkg", "1.0", False)) == "pkg 1.0"
    editable = plugin_provenance(module, "pkg 1.0", _Dist("pkg", "1.0", True))
    assert editable.startswith("pkg 1.0+src.")
    path.write_text("X = 2\n")  # an edited feature gets another provenance, hence another key
    assert plugin_provenance(module, "pkg 1.0", _Dist("pkg", "1.0", True)) != editable
    # a built-in edited in a checkout keeps bionic's version, and still gets new keys
    assert plugin_provenance(module, "builtin") != builtin
    assert plugin_provenance(module, "tests").startswith("tests+src.")


class Exploding:
    """A feature whose after-step hook divides by zero."""

    @hookimpl
    def bionic_feature(self):
        return Feature(name="exploding", group="functional", help="test: raises in a step",
                       params=(Param("when", int, 1, "step"),))

    @hookimpl
    def bionic_after_step(self, step):
        if step >= 1:
            1 / 0  # noqa: B018


def test_a_failing_feature_is_named_with_its_source_and_hook(catalogue, register_plugin):
    register_plugin(Exploding(), source="explodepkg 1.0")
    with pytest.raises(FeatureFailure) as info:
        train_run(tiny_config(features=("exploding",)), catalogue)
    assert str(info.value) == ("feature 'exploding' (explodepkg 1.0) failed in "
                               "bionic_after_step: ZeroDivisionError: division by zero")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.exit_code == 1


class _EntryPoint:
    """A stand-in for an installed distribution's ``bionic.features`` entry point."""

    def __init__(self, plugin):
        self.name, self.value, self._plugin = "exploding", "explodepkg:plugin", plugin
        self.dist = types.SimpleNamespace(name="explodepkg", version="1.0")

    def load(self):
        return self._plugin


@pytest.fixture
def exploding_installed(store, monkeypatch):
    from bionic_core import host

    monkeypatch.setattr(host, "entry_points", lambda group: [_EntryPoint(Exploding())])
    monkeypatch.delenv(host.DISABLE_ENV, raising=False)
    from .conftest import TINY_EXPERIMENTS

    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    return store


def test_cli_run_names_the_failing_feature_exit_1_and_keeps_the_traceback(exploding_installed):
    from bionic_cli.app import app
    from typer.testing import CliRunner

    from bionic_core.studies.tracking import Tracker

    result = CliRunner().invoke(app, ["run", "tiny", "--experiments", "exp.toml",
                                      "--only", "exploding"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == ("bionic: run failed: feature 'exploding' (explodepkg 1.0) failed in "
                         "bionic_after_step: ZeroDivisionError: division by zero")
    assert "Traceback" not in result.output
    tracker = Tracker()
    [run] = tracker.find_runs("tiny", "attributes.status = 'FAILED'")
    assert run.data.tags["bionic.failed_feature"] == "exploding"
    assert run.data.tags["bionic.failed_hook"] == "bionic_after_step"
    assert "explodepkg 1.0" in run.data.tags["bionic.feature_provenance"]
    assert [a.path for a in tracker.list_artifacts(run.info.run_id)] == ["traceback.txt"]
    text = open(tracker.download_artifacts(run.info.run_id, "traceback.txt",
                                           str(exploding_installed))).read()
    assert "ZeroDivisionError" in text and "bionic_after_step" in text


def test_cli_ablate_names_the_failing_feature_in_the_failed_runs_table(exploding_installed):
    from bionic_cli.app import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                      "--reference", "layer_norm,exploding", "--seeds", "1",
                                      "--json"])
    assert result.exit_code == 1, result.output
    runs = json.loads(result.stdout)["runs"]
    errors = [r for r in runs if r["status"] == "error"]
    assert errors and all(r["feature"] == "exploding" for r in errors)
    assert all("failed in bionic_after_step" in r["reason"] for r in errors)
    assert any(r["status"] == "finished" for r in runs)  # the others still ran
