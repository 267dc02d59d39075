"""Ablation sweeps: planning with stable keys, a real tracked sweep, resume after SIGKILL,
divergence, seed aggregates, a real `mlflow server`, and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bionic_cli.app import app
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.studies.seed_aggregates import aggregate_metrics
from bionic_core.studies.sweep_plan import DesignOptions, design_options, plan_sweep
from bionic_core.studies.sweep_run import run_sweep
from bionic_core.studies.tracking import Tracker

from .conftest import TINY_EXPERIMENTS, empty_store, one_error_line, tiny_config

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()





def feature_plugin(name: str, group: str = "functional", **kwargs):
    """A test feature with no effect on training (unless ``criterion`` is given)."""
    criterion = kwargs.pop("criterion", None)

    class Plugin:
        @hookimpl
        def bionic_feature(self):
            return Feature(name=name, group=group, help="test feature", **kwargs)

        @hookimpl
        def bionic_criterion(self, ctx):
            return criterion

    return Plugin()


def nan_loss(logits, targets):
    return torch.nn.functional.cross_entropy(logits, targets) * float("nan")




def runs_of(uri: str, experiment: str, kind: str | None = None) -> list:
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], max_results=1000)
    return [r for r in runs if kind is None or r.data.tags.get("bionic.kind") == kind]


# ============================================================================ planning


def test_plan_enumerates_each_design_with_stable_keys(catalogue, register_plugin):
    register_plugin(feature_plugin("a_test", "structural"))
    register_plugin(feature_plugin("b_test", requires=("a_test",)))
    register_plugin(feature_plugin("c_test"))
    base = tiny_config(features=("a_test", "b_test", "c_test"), seeds=(0, 1))

    loo = plan_sweep(base, catalogue, DesignOptions("leave-one-out"))
    # -a_test takes b_test, which requires it, along.
    assert [c.name for c in loo.configurations] == ["reference", "-a_test", "-b_test",
                                                    "-c_test"]
    assert loo.configurations[1].configuration.removed == ("a_test", "b_test")
    assert len(loo.runs) == 8 and loo.anchor == "reference" and not loo.design.dropped
    assert [c.group for c in loo.configurations] == ["none", "mixed", "functional",
                                                     "functional"]
    keys = [r.key for r in loo.runs]
    assert len(set(keys)) == 8
    assert all(r.key == r.config.key() and r.config.features == tuple(sorted(
        next(c for c in loo.configurations if c.name == r.configuration).configuration.features))
        for r in loo.runs)
    # Same input, same keys and sweep id; a different hyper-parameter changes both.
    again = plan_sweep(base, catalogue, DesignOptions("leave-one-out"))
    assert [r.key for r in again.runs] == keys and again.sweep_id == loo.sweep_id
    longer = plan_sweep(base.replace(epochs=3), catalogue, DesignOptions("leave-one-out"))
    assert not set(r.key for r in longer.runs) & set(keys)
    assert longer.sweep_id != loo.sweep_id
    # A run key is shared by every design that trains the same spec.
    add = plan_sweep(base, catalogue, DesignOptions("add-one-in", baseline=("a_test",)))
    assert [c.name for c in add.configurations] == ["baseline", "+b_test", "+c_test",
                                                    "reference"]
    assert add.anchor == "baseline" and add.sweep_id != loo.sweep_id
    assert {r.key for r in add.runs if r.configuration == "reference"} == \
        {r.key for r in loo.runs if r.configuration == "reference"}

    fac = plan_sweep(base, catalogue, DesignOptions("factorial", factors=("a_test", "b_test")),
                     seeds=[3])
    # 2^2 = 4 combinations, b_test-without-a_test dropped; c_test held on throughout.
    assert [c.name for c in fac.configurations] == ["f:a_test+b_test", "f:a_test", "f:none"]
    assert all("c_test" in c.configuration.features for c in fac.configurations)
    assert [r.seed for r in fac.runs] == [3, 3, 3] and fac.anchor == "f:a_test+b_test"
    sampled = plan_sweep(base, catalogue, DesignOptions("factorial", sample=2))
    assert len(sampled.configurations) == 2  # all-on and all-off of the 3 factors

    explicit = plan_sweep(base, catalogue, DesignOptions(
        "explicit", sets=(("c_test",), (), ("b_test",))))
    assert [c.name for c in explicit.configurations] == ["e:c_test", "e:none"]
    assert explicit.design.dropped[0].reason == "b_test requires a_test"


def test_plan_bad_input(catalogue, register_plugin):
    register_plugin(feature_plugin("needy_test", requires=("layer_norm",)))
    base = tiny_config(features=("layer_norm",))
    with pytest.raises(BionicError, match="every configuration was dropped: e:needy_test: "
                                          "needy_test requires layer_norm"):
        plan_sweep(base, catalogue, DesignOptions("explicit", sets=(("needy_test",),)))
    with pytest.raises(BionicError, match="unknown feature 'nope'"):
        plan_sweep(base, catalogue, DesignOptions("factorial", factors=("nope",)))
    with pytest.raises(BionicError, match="the plan is empty: no seeds"):
        plan_sweep(base, catalogue, DesignOptions(), seeds=[])
    with pytest.raises(BionicError, match="unknown key 'desing'"):
        design_options({"desing": "factorial"}, "experiments.x.ablation")
    with pytest.raises(BionicError, match="--design: unknown design 'loo'"):
        design_options({}, "experiments.x.ablation", kind="loo")
    with pytest.raises(BionicError, match=r"experiments.x.ablation.factors: expected a list"):
        design_options({"factors": "a"}, "experiments.x.ablation")
    opts = design_options({"design": "factorial", "factors": ["a"], "sample": 4},
                          "experiments.x.ablation", factors=("b", "c"), sample=None)
    assert opts == DesignOptions("factorial", factors=("b", "c"), sample=4)


def test_aggregates_match_hand_computed_values():
    out = aggregate_metrics([{"final_test_accuracy": 0.5, "final_x": 1.0},
                             {"final_test_accuracy": 0.6},
                             {"final_test_accuracy": 0.7, "final_x": float("nan")}])
    assert out["final_test_accuracy_mean"] == pytest.approx(0.6)
    assert out["final_test_accuracy_std"] == pytest.approx(0.1)
    assert out["final_test_accuracy_n"] == 3
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2 dof) · s / √n
    assert out["final_test_accuracy_ci_low"] == pytest.approx(0.6 - half)
    assert out["final_test_accuracy_ci_high"] == pytest.approx(0.6 + half)
    # One finite value: a mean and n, but no spread.
    assert out["final_x_mean"] == 1.0 and out["final_x_n"] == 1
    assert "final_x_std" not in out and "final_x_ci_low" not in out


# ============================================================================ running


def test_real_sweep_records_hierarchy_and_reruns_nothing(store):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    dry = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--dry-run",
                              "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["n_configurations"] == 2 and plan["n_runs"] == 4
    assert [c["name"] for c in plan["configurations"]] == ["reference", "-layer_norm"]
    assert not runs_of(uri, "tiny") and not (store / ".bionic").exists()  # dry: no trace

    result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["counts"]["finished"] == 4 and summary["sweep_id"] == plan["sweep_id"]

    sweeps = runs_of(uri, "tiny", "sweep")
    configs = runs_of(uri, "tiny", "configuration")
    seeds = runs_of(uri, "tiny", "run")
    assert len(sweeps) == 1 and len(configs) == 2 and len(seeds) == 4
    sweep = sweeps[0]
    assert sweep.info.status == "FINISHED"
    assert sweep.data.tags["bionic.sweep_id"] == plan["sweep_id"]
    assert sweep.data.tags["bionic.design"] == "leave-one-out"
    assert {c.data.tags["mlflow.parentRunId"] for c in configs} == {sweep.info.run_id}
    by_config = {c.info.run_id: c for c in configs}
    for run in seeds:
        tags, params = run.data.tags, run.data.params
        config = by_config[tags["mlflow.parentRunId"]]
        assert run.info.status == "FINISHED"
        assert tags["bionic.configuration"] == config.data.tags["bionic.configuration"]
        assert tags["bionic.experiment"] == "tiny" and tags["bionic.design"] == "leave-one-out"
        assert {"bionic.run_key", "device", "torch.version", "bionic.version"} <= set(tags)
        on = "layer_norm" in tags["bionic.features"]
        assert params["feature.layer_norm"] == str(on)
        assert ("layer_norm.affine" in params) == on  # resolved default parameters
        assert params["hidden_sizes"] == "[16, 16]" and params["epochs"] == "1"
    keys = {r.data.tags["bionic.run_key"] for r in seeds}
    assert keys == {r["key"] for c in plan["configurations"] for r in c["runs"]}

    # Each configuration run carries its seeds' statistics.
    for config in configs:
        mine = [r for r in seeds if r.data.tags["mlflow.parentRunId"] == config.info.run_id]
        values = [r.data.metrics["final_test_accuracy"] for r in mine]
        m = config.data.metrics
        mean = sum(values) / 2
        assert m["final_test_accuracy_mean"] == pytest.approx(mean)
        assert m["final_test_accuracy_std"] == pytest.approx(abs(values[0] - values[1])
                                                             / math.sqrt(2))
        assert m["final_test_accuracy_n"] == 2 and m["seeds_finished"] == 2
        assert config.info.status == "FINISHED"
        assert "final_val_macro_f1_ci_high" in m
    client = MlflowClient(tracking_uri=uri)
    artifacts = {a.path for a in client.list_artifacts(seeds[0].info.run_id, "model")}
    assert "model/state_dict.pt" in artifacts

    # Rerunning the same command trains nothing and records no new run.
    again = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["counts"]["skipped"] == 4
    assert len(runs_of(uri, "tiny")) == 7
    assert not list((store / ".bionic" / "checkpoints").glob("*.pt"))


def test_a_key_finished_in_another_experiment_is_copied_not_trained(store):
    """A run key that finished in another MLflow experiment of the store, on the same data, is
    copied into the new sweep (metric histories, artifacts, its original named), exported once
    as the original, and trained again only when the data differ."""
    again_text = TINY_EXPERIMENTS.replace("[experiments.tiny]", "[experiments.tiny_again]")
    third_text = TINY_EXPERIMENTS.replace("[experiments.tiny]", "[experiments.tiny_third]")
    (store / "exp.toml").write_text(TINY_EXPERIMENTS + again_text + third_text)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    first = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json"])
    assert first.exit_code == 0, first.output
    originals = {r.data.tags["bionic.run_key"]: r for r in runs_of(uri, "tiny", "run")}

    copied = runner.invoke(app, ["ablate", "tiny_again", "--experiments", "exp.toml", "--json"])
    assert copied.exit_code == 0, copied.output
    summary = json.loads(copied.stdout.strip().splitlines()[-1])
    assert summary["counts"]["skipped"] == 4 and summary["counts"]["finished"] == 0
    copies = runs_of(uri, "tiny_again", "run")
    configs = {c.info.run_id for c in runs_of(uri, "tiny_again", "configuration")}
    client = MlflowClient(tracking_uri=uri)
    assert sorted(r.data.tags["bionic.run_key"] for r in copies) == sorted(originals)
    for copy in copies:
        original = originals[copy.data.tags["bionic.run_key"]]
        assert copy.info.status == "FINISHED"
        assert copy.data.tags["bionic.copied_from"] == original.info.run_id
        assert copy.data.tags["bionic.sweep_id"] == summary["sweep_id"]
        assert copy.data.tags["bionic.experiment"] == "tiny_again"
        assert copy.data.tags["mlflow.parentRunId"] in configs
        assert copy.data.metrics == original.data.metrics
        assert copy.data.params == original.data.params
        assert [(m.step, m.value) for m in client.get_metric_history(copy.info.run_id,
                                                                      "val_macro_f1")] == \
               [(m.step, m.value) for m in client.get_metric_history(original.info.run_id,
                                                                      "val_macro_f1")]
        assert "model/state_dict.pt" in {a.path for a in
                                         client.list_artifacts(copy.info.run_id, "model")}
    # Exported once, as the originals: the second sweep's file names the same run files.
    exported = runner.invoke(app, ["results", "export", "tiny", "tiny_again", "--out", "results"])
    assert exported.exit_code == 0, exported.output
    runs = {p.stem for p in (store / "results" / "runs").glob("*.json")}
    assert runs == {f"{k}.{r.info.run_id[:8]}" for k, r in originals.items()}
    sweep = json.loads((store / "results" / "sweeps" / f"{summary['sweep_id']}.json")
                       .read_text())
    assert {n for c in sweep["configurations"] for n in c["runs"].values()} == runs

    # Runs recorded on other data (another fingerprint) are not copied: trained again.
    for run in [*originals.values(), *copies]:
        client.set_tag(run.info.run_id, "bionic.dataset_fingerprint", "other-data")
    trained = runner.invoke(app, ["ablate", "tiny_third", "--experiments", "exp.toml",
                                  "--json"])
    assert trained.exit_code == 0, trained.output
    counts = json.loads(trained.stdout.strip().splitlines()[-1])["counts"]
    assert counts["finished"] == 4 and counts["skipped"] == 0
    assert not any("bionic.copied_from" in r.data.tags for r in runs_of(uri, "tiny_third", "run"))

    # A copy whose original was deleted is exported as itself.
    gone = copies[0]
    client.delete_run(gone.data.tags["bionic.copied_from"])
    alone = runner.invoke(app, ["results", "export", "tiny_again", "--out", "alone"])
    assert alone.exit_code == 0, alone.output
    assert f"{gone.data.tags['bionic.run_key']}.{gone.info.run_id[:8]}" in {
        p.stem for p in (store / "alone" / "runs").glob("*.json")}


def test_diverging_run_is_failed_and_the_sweep_goes_on(store, catalogue, register_plugin):
    register_plugin(feature_plugin("explode_test", criterion=nan_loss))
    base = tiny_config(experiment="diverge", epochs=1, hidden_sizes=(8,), seeds=(0,))
    plan = plan_sweep(base, catalogue, DesignOptions("explicit",
                                                     sets=(("explode_test",), ())))
    tracker = Tracker()
    result = run_sweep(plan, catalogue, tracker)
    assert [o.status for o in result.outcomes] == ["failed", "finished"]
    assert "diverged" in result.failures[0].reason
    failed = tracker.get_run(result.failures[0].run_id)
    assert failed.info.status == "FAILED"
    assert "diverged" in failed.data.tags["bionic.reason"]
    sweep = tracker.get_run(result.sweep_run_id)
    assert sweep.info.status == "FAILED" and sweep.data.metrics["runs_failed"] == 1
    # A rerun does not train the diverged run again, unless asked to.
    again = run_sweep(plan, catalogue, tracker)
    assert [o.status for o in again.outcomes] == ["previously-failed", "skipped"]
    retried = run_sweep(plan, catalogue, tracker, retry_failed=True)
    assert [o.status for o in retried.outcomes] == ["failed", "skipped"]
    assert len(runs_of(tracker.uri, "diverge", "run")) == 3


def _wait_until(predicate, timeout: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (rc {proc.returncode}) before the kill: "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the sweep")


def test_sigkill_in_the_middle_then_rerun_finishes_each_key_exactly_once(tmp_path, monkeypatch,
                                                                        tmp_path_factory):
    shutil.copy(empty_store(tmp_path_factory), tmp_path / "mlflow.db")
    (tmp_path / "exp.toml").write_text(TINY_EXPERIMENTS.replace("epochs = 1", "epochs = 2")
                                       .replace("[16, 16]", "[64, 64]"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "BIONIC_DISABLE_PLUGINS": "1", "MLFLOW_TRACKING_URI": uri}
    env.pop("BIONIC_EXPERIMENTS", None)
    args = ["ablate", "tiny", "--experiments", "exp.toml", "--seeds", "1", "--json",
            "--no-compare"]
    checkpoints = tmp_path / ".bionic" / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "bionic_cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Kill once the first run has finished and the second has checkpointed an epoch.
        def finished_then_checkpoint() -> bool:
            saved = {p.stem for p in checkpoints.glob("*.pt")}
            if not saved:
                return False
            done = {r.data.tags["bionic.run_key"] for r in runs_of(uri, "tiny", "run")
                    if r.info.status == "FINISHED"}
            return bool(done) and bool(saved - done)

        _wait_until(finished_then_checkpoint, 180, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()

    before = runs_of(uri, "tiny", "run")
    done_before = {r.data.tags["bionic.run_key"]: r.info.run_id
                   for r in before if r.info.status == "FINISHED"}
    interrupted = [r for r in before if r.info.status == "RUNNING"]
    assert len(done_before) == 1 and len(interrupted) == 1
    assert (checkpoints / f"{interrupted[0].data.tags['bionic.run_key']}.pt").is_file()

    # The rerun (in this process, to save a second start-up) resumes the interrupted run.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BIONIC_DISABLE_PLUGINS", "1")
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0, rerun.output
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["counts"] == {"finished": 1, "skipped": 1, "failed": 0, "error": 0,
                                 "previously-failed": 0}
    resumed = [r for r in summary["runs"] if r["resumed_from_epoch"] > 0]
    assert [r["run_id"] for r in resumed] == [interrupted[0].info.run_id]

    after = runs_of(uri, "tiny", "run")
    finished = [r for r in after if r.info.status == "FINISHED"]
    keys = [r.data.tags["bionic.run_key"] for r in finished]
    assert len(finished) == 2 and len(set(keys)) == 2  # exactly one finished run per key
    assert len(after) == 2  # the interrupted run was continued, not duplicated
    for key, run_id in done_before.items():  # the finished run was not repeated
        assert [r.info.run_id for r in finished if r.data.tags["bionic.run_key"] == key] == \
            [run_id]
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(interrupted[0].info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2]  # each epoch logged once
    resumed_run = client.get_run(interrupted[0].info.run_id)
    assert int(resumed_run.data.tags["bionic.resumed_from_epoch"]) >= 1
    assert all(r.info.status == "FINISHED" for r in runs_of(uri, "tiny"))
    assert len(runs_of(uri, "tiny", "sweep")) == 1
    assert len(runs_of(uri, "tiny", "configuration")) == 2
    assert not list(checkpoints.glob("*.pt"))


# ============================================================================ tracking server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path, tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a free port; stopped afterwards."""
    import urllib.request

    port = _free_port()
    store = tmp_path / "server"
    store.mkdir()
    shutil.copy(empty_store(tmp_path_factory), store / "mlflow.db")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{store / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=store, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "mlflow server exited"
            assert time.monotonic() < end, "mlflow server did not start"
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its worker
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_sweep_and_compare_against_a_real_mlflow_server(in_tmp, mlflow_server):
    (in_tmp / "exp.toml").write_text(TINY_EXPERIMENTS)
    args = ["--experiments", "exp.toml", "--seeds", "1", "--tracking-uri", mlflow_server]
    result = runner.invoke(app, ["ablate", "tiny", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["counts"]["finished"] == 2
    assert not (in_tmp / "mlflow.db").exists()  # nothing went to the default store
    sweeps = runs_of(mlflow_server, "tiny", "sweep")
    seeds = runs_of(mlflow_server, "tiny", "run")
    assert len(sweeps) == 1 and len(seeds) == 2
    client = MlflowClient(tracking_uri=mlflow_server)
    assert "model/state_dict.pt" in {a.path for a in client.list_artifacts(
        seeds[0].info.run_id, "model")}
    compared = runner.invoke(app, ["compare", summary["sweep_id"], "--format", "json",
                                   "--tracking-uri", mlflow_server])
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.stdout)["rows"]
    assert [r["configuration"] for r in rows] == ["reference", "-layer_norm"]
    assert all(r["seeds"] == [0] for r in rows)


# ============================================================================ bad input


def test_ablate_bad_input_is_one_line(in_tmp):
    (in_tmp / "exp.toml").write_text(TINY_EXPERIMENTS + '\n[experiments.tiny.ablation]\n'
                                     'design = "factorial"\nfactors = ["layer_norm"]\n')

    def ablate(*args: str):
        return runner.invoke(app, ["ablate", *args, "--experiments", "exp.toml"])

    one_error_line(ablate("nope"), "unknown experiment 'nope'")
    one_error_line(ablate("tiny", "--factors", "layer_norm,warp_drive", "--dry-run"),
                   "design factorial: unknown feature 'warp_drive'")
    one_error_line(ablate("tiny", "--design", "sideways", "--dry-run"),
                   "--design: unknown design 'sideways'")
    one_error_line(ablate("tiny", "--seeds", "0", "--dry-run"), "--seeds 0")
    one_error_line(ablate("tiny", "--design", "explicit", "--dry-run"),
                   "design explicit: no feature sets given")
    # The [ablation] table is read: a 2^1 factorial; --configuration means explicit.
    planned = ablate("tiny", "--dry-run", "--json")
    assert [c["name"] for c in json.loads(planned.stdout)["configurations"]] == \
        ["f:layer_norm", "f:none"]
    explicit = ablate("tiny", "--configuration", "layer_norm", "--configuration", "none",
                      "--seeds", "3", "--dry-run", "--json")
    plan = json.loads(explicit.stdout)
    assert [c["name"] for c in plan["configurations"]] == ["reference", "e:none"]
    assert plan["design"] == "explicit" and plan["seeds"] == [0, 1, 2] and plan["n_runs"] == 6
    began = time.monotonic()
    line = one_error_line(ablate("tiny", "--tracking-uri", "http://127.0.0.1:9"),
                          "tracking URI http://127.0.0.1:9", "cannot")
    assert time.monotonic() - began < 20, line  # fails fast, no retries
    assert not (in_tmp / ".bionic").exists() and not (in_tmp / "mlflow.db").exists()
