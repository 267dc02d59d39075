"""The multi-model engine: runs trained together match the same runs trained one by one."""

from __future__ import annotations

import pytest
import torch

from bionic_core.contract.features import Feature
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.network.model import MaskedHiddenLayer
from bionic_core.training.loop import RunState, load_run_data, train_run
from bionic_core.training.multimodel import (
    ModelStack,
    compatible_groups,
    model_signature,
    train_many,
)

from .conftest import TINY_EXPERIMENTS, tiny_config

# Batched kernels sum in another order than the one-model kernels: losses agree to rounding.
LOSS_RTOL = 1e-4

BIO = ("conv_frontend", "lateral_inhibition", "adjacency_mask", "intra_layer",
       "graded_inhibition", "layer_norm", "hebbian", "augmentation", "label_smoothing",
       "lr_scheduler", "weight_decay")
# Small convolutions and a plateau scheduler that cuts the rate after every epoch without a
# better validation score, so that the runs' learning rates part ways.
BIO_PARAMS = {"conv_frontend": {"channels1": 4, "channels2": 8, "pool": 3},
              "lr_scheduler": {"patience": 0, "factor": 0.5},
              "hebbian": {"rate": 3e-3}}


def assert_same_runs(together, alone, *, val_n: int, rtol: float = LOSS_RTOL,
                     images: int = 1) -> None:
    """Same epochs, losses to ``rtol``, accuracies to ``images`` near-tie images, weights."""
    assert len(together) == len(alone)
    tie = images / val_n + 1e-12
    for a, b in zip(together, alone, strict=True):
        assert a.key == b.key and a.status == b.status == "finished"
        assert a.epochs_run == b.epochs_run and a.best_epoch == b.best_epoch
        for ra, rb in zip(a.history, b.history, strict=True):
            assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=rtol)
            assert ra["lr"] == pytest.approx(rb["lr"], rel=1e-12)
            # The same predictions up to near-tie images.
            assert abs(ra["val_accuracy"] - rb["val_accuracy"]) <= tie
        for split in ("val", "test"):
            assert getattr(a, split)["accuracy"] == pytest.approx(
                getattr(b, split)["accuracy"], abs=tie)
            assert getattr(a, split)["macro_f1"] == pytest.approx(
                getattr(b, split)["macro_f1"], abs=0.02)
        for name, tensor in a.model_state.items():
            assert torch.allclose(tensor, b.model_state[name], rtol=rtol * 10, atol=rtol / 10), name


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: these tiny steps only lose to thread hand-offs on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def val_n():
    return len(load_run_data(tiny_config()).splits["val"].labels)


# Both engines: vmapped steps (the GPU default) and per-model steps (the CPU default).
ENGINES = pytest.mark.parametrize("batched", [True, False], ids=["batched", "per-model"])


@ENGINES
def test_plain_seeds_together_match_one_by_one(catalogue, val_n, batched):
    configs = [tiny_config(seed=s, epochs=3) for s in (0, 1, 2)]
    together = train_many(configs, catalogue, batched=batched)
    alone = [train_run(c, catalogue) for c in configs]
    assert_same_runs(together, alone, val_n=val_n)
    # The seeds really are different runs (their own data order and initialisation).
    assert len({r.history[-1]["train_loss"] for r in together}) == 3


@ENGINES
def test_biological_features_together_match_one_by_one(catalogue, val_n, batched):
    """Masks, intra-layer term, graded and lateral inhibition, LayerNorm, the conv front end
    with CBAM, per-model Hebbian updates, augmentation draws, label smoothing, AdamW and a
    plateau scheduler that gives each run its own learning rate."""
    configs = [tiny_config(seed=s, epochs=2, features=BIO, params=BIO_PARAMS)
               for s in (0, 1, 2)]
    together = train_many(configs, catalogue, batched=batched)
    alone = [train_run(c, catalogue) for c in configs]
    assert_same_runs(together, alone, val_n=val_n)
    lrs = {tuple(row["lr"] for row in r.history) for r in together}
    assert len(lrs) > 1, "the scheduler should have cut some runs' rates and not others"
    for result in together:  # masked weights stay exactly zero under Adam + Hebbian + decay
        state = result.model_state
        for name in [k for k in state if k.endswith(".mask")]:
            weight = state[name.removesuffix("mask") + "weight"]
            assert torch.all(weight[state[name] == 0] == 0)


def test_configurations_of_one_shape_group_and_others_do_not(catalogue):
    base = tiny_config(features=("layer_norm", "adjacency_mask"))
    configs = [
        base,
        base.replace(seed=1),
        base.with_features(("layer_norm", "adjacency_mask", "hebbian")),  # same modules
        base.with_features(("layer_norm", "adjacency_mask", "weight_decay")),
        base.replace(hidden_sizes=(16, 32)),  # other shape
        base.with_features(("adjacency_mask",)),  # no LayerNorm modules
        base.replace(batch_size=32),  # same shape, other step
    ]
    assert compatible_groups(configs, catalogue, batched=True) == [[0, 1, 2, 3], [4], [5], [6]]
    # Per-model steps need no common shape, only the same data and batch size.
    assert compatible_groups(configs, catalogue, batched=False) == [[0, 1, 2, 3, 4, 5], [6]]


def test_mixed_configurations_train_together_and_match(catalogue, val_n):
    base = tiny_config(features=("layer_norm", "adjacency_mask"), epochs=2)
    configs = [base, base.with_features(("layer_norm", "adjacency_mask", "hebbian")),
               base.replace(hidden_sizes=(16, 32)),
               base.with_features(("layer_norm", "adjacency_mask", "weight_decay")),
               base.replace(seed=5, epochs=1)]  # leaves the stack after its one epoch
    finished = []
    together = train_many(configs, catalogue, on_finished=lambda i, r: finished.append(i),
                          batched=True)
    alone = [train_run(c, catalogue) for c in configs]
    assert sorted(finished) == list(range(len(configs)))
    assert finished.index(4) < finished.index(0)  # reported as soon as it is done
    assert_same_runs(together, alone, val_n=val_n)


def test_early_stopping_is_per_model(catalogue, val_n):
    # An absurd rate for one run: it stops early, the other trains on.
    configs = [tiny_config(seed=0, epochs=5, patience=1, lr=0.5),
               tiny_config(seed=1, epochs=5, patience=0)]
    together = train_many(configs, catalogue, batched=True)
    alone = [train_run(c, catalogue) for c in configs]
    assert together[0].epochs_run < 5 and together[1].epochs_run == 5
    assert_same_runs(together, alone, val_n=val_n)


def test_checkpoint_written_together_resumes_alone(catalogue, tmp_path, val_n):
    configs = [tiny_config(seed=s, epochs=3) for s in (0, 1)]
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    train_many([c.replace(epochs=2) for c in configs], catalogue, checkpoints=paths,
               batched=True)
    resumed = train_run(configs[1], catalogue, checkpoint=paths[1])
    full = train_run(configs[1], catalogue)
    assert resumed.resumed_from_epoch == 2
    assert_same_runs([resumed], [full], val_n=val_n)


def test_parameters_are_views_of_the_stack(catalogue):
    data = load_run_data(tiny_config())
    states = [RunState(tiny_config(seed=s, features=("adjacency_mask",)), catalogue, data)
              for s in (0, 1)]
    stack = ModelStack(states)
    layer = states[1].model.hidden[1]
    assert isinstance(layer, MaskedHiddenLayer)
    with torch.no_grad():  # a feature's in-place update of one model reaches only its slice
        layer.weight.add_(1.0)
    stacked = stack.params["hidden.1.weight"]
    assert torch.equal(stacked[1], layer.weight) and not torch.equal(stacked[0], stacked[1])
    assert torch.equal(stack.buffers["hidden.1.mask"][1], layer.mask)
    logits = stack(torch.rand(2, 5, 1, 48, 48))
    assert logits.shape == (2, 5, 7)
    stack.check_views()
    kept = layer.weight.detach().clone()
    stack.restack(states[:1])  # run 1 leaves: its own copies again, the same values
    assert stack.params["hidden.1.weight"].shape[0] == 1
    assert layer.weight.data_ptr() != stacked.data_ptr() and torch.equal(layer.weight, kept)


@pytest.mark.parametrize("target", ["activations", "weights"])
def test_batched_noise_is_each_runs_own_draws(catalogue, val_n, target):
    """Batched: each model's noise comes from its own run's stream — two copies of a noisy run
    stay identical, other seeds differ, and a run gives its one-by-one numbers (to the batched
    kernels' rounding) whatever it is grouped with."""
    noisy = tiny_config(epochs=2, features=("synaptic_noise",),
                        params={"synaptic_noise": {"target": target, "sigma": 0.5}})
    copies = train_many([noisy, noisy], catalogue, batched=True)
    assert copies[0].history == copies[1].history or all(
        a["train_loss"] == b["train_loss"]
        for a, b in zip(copies[0].history, copies[1].history, strict=True))
    other = noisy.replace(seed=1)
    alone = train_run(noisy, catalogue)
    for group in ([noisy, other], [noisy, other, tiny_config(epochs=2, seed=2)]):
        together = train_many(group, catalogue, batched=True)
        assert_same_runs(together[:1], [alone], val_n=val_n)
        assert together[0].history[0]["train_loss"] != together[1].history[0]["train_loss"]


def test_per_model_steps_draw_noise_as_alone(catalogue):
    """Per-model steps (the CPU engine): noisy runs draw exactly as alone."""
    noisy = tiny_config(epochs=1).with_features(("synaptic_noise",))
    configs = [noisy.replace(seed=s) for s in (0, 1)]
    together = train_many(configs, catalogue, batched=False)
    alone = [train_run(c, catalogue) for c in configs]
    for a, b in zip(together, alone, strict=True):
        assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
        assert a.val == b.val


class GlobalNoise:
    """A third-party-style feature that draws its noise from torch's global generator."""

    @hookimpl
    def bionic_feature(self):
        return Feature(name="global_noise", group="functional", help="test: global-RNG noise")

    @hookimpl
    def bionic_layer_activity(self):
        class Noise(torch.nn.Module):
            def forward(self, h):
                return h + 0.1 * torch.randn_like(h) if self.training else h

        return Noise()


def test_per_model_steps_in_parallel_threads(catalogue, register_plugin, val_n):
    """Two workers: runs whose noise comes from their own stream (synaptic noise) in parallel
    like noise-free ones; a run drawing from the global generator in turn, with its own saved
    generator state. Every run draws exactly what it draws alone."""
    from bionic_core.training.multimodel.engines import draws_global_rng

    register_plugin(GlobalNoise())
    configs = [tiny_config(seed=s, epochs=2, features=("layer_norm", "hebbian"))
               for s in (0, 1, 2)]
    configs.append(configs[0].with_features(("layer_norm", "synaptic_noise")))
    configs.append(configs[1].with_features(("layer_norm", "global_noise")))
    data = load_run_data(configs[0])
    states = [RunState(c, catalogue, data) for c in configs]
    assert [draws_global_rng(s) for s in states] == [False, False, False, False, True]
    torch.set_num_threads(2)  # two workers (the module's fixture restores one thread)
    try:
        together = train_many(configs, catalogue, batched=False)
        assert torch.get_num_threads() == 2  # restored after the workers' single thread
    finally:
        torch.set_num_threads(1)
    alone = [train_run(c, catalogue) for c in configs]
    assert_same_runs(together, alone, val_n=val_n)
    for noisy in (3, 4):
        assert together[noisy].history == [
            {**r, "epoch_time": t["epoch_time"]}
            for r, t in zip(alone[noisy].history, together[noisy].history, strict=True)]


def test_hook_that_changes_activity_falls_back_to_one_by_one(catalogue, register_plugin):
    class Doubling:
        @hookimpl
        def bionic_feature(self):
            return Feature(name="doubling", group="functional", help="test: doubles a layer")

        @hookimpl
        def bionic_model_built(self, model):
            model.hidden[0].register_forward_hook(lambda module, args, out: 2 * out)

    register_plugin(Doubling())
    configs = [tiny_config(seed=s, features=("doubling",)) for s in (0, 1)]
    together = train_many(configs, catalogue, batched=True)
    alone = [train_run(c, catalogue) for c in configs]
    for a, b in zip(together, alone, strict=True):  # the very same computation, one by one
        assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_signature_sees_module_settings(catalogue):
    from bionic_core.training.loop import prepare

    def signature(**params):
        config = tiny_config(features=("conv_frontend", "lateral_inhibition"),
                             params={"lateral_inhibition": params})
        return model_signature(prepare(config, catalogue)[1])

    assert signature(strength=1.0) == signature(strength=1.0)
    assert signature(strength=1.0) != signature(strength=2.0)  # a Python float, not a tensor





def test_ablate_trains_runs_together_and_no_multimodel_one_by_one(store, catalogue):
    """`bionic ablate` trains its pending runs together (on the CPU: every run of one data set
    and batch size, here the reference and -layer_norm, 2 seeds each) and records each as its
    own run, with the metrics it has alone; `--no-multimodel` trains one by one."""
    import json

    from bionic_cli.app import app
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from bionic_core.config import RunConfig, resolve_features

    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    runner, client = CliRunner(), MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")

    def ablate(*options: str) -> tuple[dict, dict]:
        result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json",
                                     "--no-compare", *options])
        assert result.exit_code == 0, result.output
        runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                  "tags.`bionic.kind` = 'run'")
        return json.loads(result.stdout.strip().splitlines()[-1]), {
            r.data.tags["bionic.run_key"]: r for r in runs}

    summary, runs = ablate()
    assert summary["counts"]["finished"] == 4 and len(runs) == 4
    assert [r.data.tags["bionic.trained_with"] for r in runs.values()] == ["4"] * 4
    # Resolved as `ablate` resolves it: a run's key covers its features' defaults and code.
    config = resolve_features(
        RunConfig(experiment="tiny", dataset="demo-small", hidden_sizes=(16, 16),
                  batch_size=64, epochs=1, patience=0, device="cpu",
                  features=("layer_norm",), seed=1), catalogue, "test")
    alone, run = train_run(config, catalogue), runs[config.key()]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["final_test_accuracy"] == pytest.approx(alone.test["accuracy"],
                                                                    abs=0.01)

    summary, runs = ablate("--no-multimodel", "--seeds", "3")  # seed 2 is new: 2 runs
    assert summary["counts"]["finished"] == 2 and summary["counts"]["skipped"] == 4
    assert sum("bionic.trained_with" not in r.data.tags for r in runs.values()) == 2


# ---------------------------------------------------------------- on a GPU (bench/gpu_check.sh)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture
def no_tf32():
    """Full fp32 convolutions: cuDNN's default TF32 rounds grouped and plain convolutions
    differently, which would hide what the comparison is about."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
@needs_cuda
def test_cuda_batched_together_match_one_by_one(catalogue, val_n, no_tf32):
    """The GPU engine (one vmapped step for all models) against one-by-one runs on the GPU;
    CUDA kernels may sum in a different order from run to run, so the tolerances are looser."""
    configs = [tiny_config(seed=s, epochs=2, device="cuda", features=BIO, params=BIO_PARAMS)
               for s in (0, 1, 2)]
    together = train_many(configs, catalogue)
    alone = [train_run(c, catalogue) for c in configs]
    assert_same_runs(together, alone, val_n=val_n, rtol=1e-3, images=2)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("option", [{"precision": "bf16"}, {"compile": True}],
                         ids=["bf16", "compile"])
def test_cuda_precision_and_compile_options_train(catalogue, option):
    features = ("conv_frontend", "layer_norm")
    configs = [tiny_config(seed=s, epochs=2, device="cuda", features=features, **option)
               for s in (0, 1)]
    for result in (*train_many(configs, catalogue), train_run(configs[0], catalogue)):
        assert result.status == "finished" and result.epochs_run == 2
        assert result.history[1]["train_loss"] < result.history[0]["train_loss"] * 1.05
