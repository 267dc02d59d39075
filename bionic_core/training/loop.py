"""One training run: build the model from the enabled features, train with early stopping,
checkpoint every epoch (a rerun resumes), and evaluate the best epoch."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bionic_core.config import RunConfig, resolve_features
from bionic_core.contract.context import RunContext
from bionic_core.contract.random_streams import make_generator
from bionic_core.data import CLASS_NAMES, Dataset, describe, load_dataset
from bionic_core.host import Catalogue
from bionic_core.network.model import BionicNet, build_model, count_parameters
from bionic_core.training.batch_progress import BatchCallback, BatchTicker
from bionic_core.training.batches import DeviceSplit
from bionic_core.training.host_memory import keep_freed_memory
from bionic_core.training.inference_views import PLAIN, InferenceViews
from bionic_core.training.metrics import classification_metrics
from bionic_core.training.saved_state import load_checkpoint
from bionic_core.training.seeding import resolve_device, seed_everything
from bionic_core.training.threads import intra_op_threads

EpochCallback = Callable[[int, dict[str, float]], None]


class RunStatus(StrEnum):
    """How a training run ended: trained to the end (or stopped early), or diverged."""

    FINISHED = "finished"
    FAILED = "failed"


@dataclass
class RunResult:
    """What a finished (or failed) run produced."""

    key: str
    config: RunConfig
    status: RunStatus
    reason: str = ""
    device: str = "cpu"
    dataset: dict[str, Any] = field(default_factory=dict)  # name, is_demo, fingerprint, splits
    plan: dict[str, Any] = field(default_factory=dict)  # layer sizes and their source
    n_parameters: int = 0
    best_epoch: int = -1
    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    val: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] | None = None  # the primary test split's metrics (dataset's primary_test)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # every test split's metrics
    train_seconds: float = 0.0
    model_state: dict[str, torch.Tensor] | None = None
    resumed_from_epoch: int = 0

    def summary(self) -> dict[str, Any]:
        """Flat final metrics, named by split: ``val_accuracy``, ``test_macro_f1`` (the primary
        test split), ``test_public_accuracy`` (each named test split), ..."""
        out: dict[str, Any] = {}
        named = [(s, m) for s, m in self.tests.items() if s != "test"]
        for split, metrics in (("val", self.val), ("test", self.test), *named):
            for name in ("accuracy", "macro_f1", "roc_auc"):
                if metrics and name in metrics:
                    out[f"{split}_{name}"] = metrics[name]
        out.update(best_epoch=self.best_epoch, epochs_run=self.epochs_run,
                   n_parameters=self.n_parameters, train_seconds=round(self.train_seconds, 3))
        return out


@lru_cache(maxsize=4)
def _load(spec: str, val_fraction: float, val_seed: int, dedupe: bool,
          test: str | None) -> Dataset:
    # The validation holdout has its own seed (val_seed), so every run of a study sees one split.
    return load_dataset(spec, val_fraction=val_fraction, val_seed=val_seed, dedupe=dedupe,
                        test=test)


def load_run_data(config: RunConfig) -> Dataset:
    return _load(config.dataset, config.val_fraction, config.val_seed, config.dedupe,
                 config.test_data)


def dataset_record(data: Dataset) -> dict[str, Any]:
    """What a run records about its data: every split's role, size and origin, the validation
    holdout, dedupe and the primary test split."""
    described = describe(data)
    return {**{k: described[k] for k in ("name", "is_demo", "source", "format", "fingerprint",
                                        "holdout", "deduped", "primary_test")},
            "splits": {k: {"n": s["n"], "role": s["role"], "origin": s["origin"]}
                       for k, s in described["splits"].items()}}


@torch.no_grad()
def split_logits(model: nn.Module, split: DeviceSplit, batch_size: int, *,
                 views: InferenceViews = PLAIN) -> torch.Tensor:
    """``model``'s logits (eval mode, float32) for every image of a split, in order; with more
    ``views`` than the image itself (test-time augmentation), the log of the mean of their
    softmax (see :class:`~bionic_core.training.inference_views.InferenceViews`)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([views.scores(model, x) for x, _ in split.in_order(batch_size)])
    model.train(was_training)
    return logits


def evaluate(model: nn.Module, split: DeviceSplit, batch_size: int, *,
             views: InferenceViews = PLAIN) -> dict[str, Any]:
    """Metrics of ``model`` (eval mode) on a whole split; ``views``: see :func:`split_logits`."""
    return classification_metrics(split_logits(model, split, batch_size, views=views),
                                  split.labels, CLASS_NAMES)


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def prepare(config: RunConfig, catalogue: Catalogue,
            device: torch.device | None = None) -> tuple[RunContext, BionicNet, Any]:
    """Seed, build the context and the model on its device; returns ``(ctx, model, plan)``."""
    seed_everything(config.seed, deterministic=config.deterministic)
    device = device or resolve_device(config.device)
    ctx = RunContext(config=config, device=device, host=catalogue.host(config.features),
                     seed=config.seed)
    model, plan = build_model(ctx)
    model.to(device)
    ctx.host.call("bionic_model_built", ctx=ctx, model=model)
    return ctx, model, plan


class RunState:
    """One run in training: its model, optimizer, scheduler, loss, batch transforms, data-order
    generator and early-stopping bookkeeping, resumed from its checkpoint when there is one.

    :func:`train_run` drives one run; the multi-model engine
    (:mod:`bionic_core.training.multimodel`) drives several in lockstep. Both leave the per-run
    work — after-step hooks, the end of an epoch, checkpoints, the final evaluation — to this
    class, so the two paths cannot drift.
    """

    def __init__(self, config: RunConfig, catalogue: Catalogue, data: Dataset, *,
                 checkpoint: Path | None = None, on_epoch: EpochCallback | None = None,
                 device: torch.device | None = None,
                 on_batch: BatchCallback | None = None) -> None:
        # Configs built in code have not been through resolve_features: resolving makes the
        # key canonical (parameter defaults, feature provenance) and checks the config.
        config = resolve_features(config, catalogue, "run config")
        self.config, self.data = config, data
        self.checkpoint, self.on_epoch, self.on_batch = checkpoint, on_epoch, on_batch
        self.ctx, self.model, plan = prepare(config, catalogue, device)
        self.device = self.ctx.device
        if self.device.type == "cpu":
            keep_freed_memory()
        self.result = self._new_result(plan)
        self._build_training_parts()
        self.generator = make_generator(config.seed, self.device)
        self.epoch = self.step = self.bad_epochs = 0  # epoch: epochs finished so far
        self.stopped = False
        self.best_metric, self.best_state = -math.inf, _clone_state(self.model)
        self.seconds = 0.0  # training time of this run (its share, when trained with others)
        if checkpoint is not None and checkpoint.is_file():
            self._resume(checkpoint)

    def _new_result(self, plan: Any) -> RunResult:
        """The run's result before training: its key, device, data, plan and size."""
        return RunResult(key=self.config.key(), config=self.config, status=RunStatus.FINISHED,
                         device=str(self.device), dataset=dataset_record(self.data),
                         plan={"sizes": plan.sizes, "source": plan.source,
                               "provenance": self.ctx.provenance},
                         n_parameters=count_parameters(self.model))

    def _build_training_parts(self) -> None:
        """The optimizer, scheduler, loss and batch transforms, from the features or the
        defaults (Adam, no schedule, cross-entropy, none)."""
        ctx, host = self.ctx, self.ctx.host
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = (host.single("bionic_optimizer", ctx=ctx, parameters=params)
                          or torch.optim.Adam(params, lr=self.config.lr, **ctx.adam_options()))
        self.scheduler = host.single("bionic_scheduler", ctx=ctx, optimizer=self.optimizer)
        self.criterion = host.single("bionic_criterion", ctx=ctx) or nn.CrossEntropyLoss()
        self.transforms = [t for _, t in host.call("bionic_batch_transform", ctx=ctx)]
        self.has_after_step = host.has("bionic_after_step")

    def _resume(self, checkpoint: Path) -> None:
        saved = load_checkpoint(checkpoint, self.device)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved.get("scheduler") is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"].cpu())
        for name, stream in saved.get("streams", {}).items():
            self.ctx.random_stream(name).set_state(stream.cpu())
        for feature, state in saved.get("feature_states", {}).items():
            self.ctx.host.call_feature(feature, "bionic_restore_state", ctx=self.ctx, state=state)
        self.epoch, self.step, self.bad_epochs = saved["epoch"], saved["step"], saved["bad_epochs"]
        self.best_metric, self.best_state = saved["best_metric"], saved["best_state"]
        self.result.best_epoch, self.result.history = saved["best_epoch"], saved["history"]
        self.result.resumed_from_epoch = self.epoch
        self.stopped = saved["stopped"]

    @property
    def done(self) -> bool:
        """Stopped early, diverged, or trained every epoch."""
        return (self.stopped or self.result.status != RunStatus.FINISHED
                or self.epoch >= self.config.epochs)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The features' training-batch transforms, drawing from this run's generator."""
        for transform in self.transforms:
            x = transform(x, self.generator)
        return x

    def train_step(self, x: torch.Tensor, y: torch.Tensor, forward: Callable[..., Any],
                   autocast: Any) -> torch.Tensor:
        """One optimizer step on one training batch (augmented here); the detached loss."""
        x = self.augment(x)
        with autocast:
            logits = forward(x)
        loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.after_optimizer_step()
        return loss.detach()

    def after_optimizer_step(self) -> None:
        """Count the step and call the features' after-step hooks (outside autograd)."""
        self.step += 1
        if self.has_after_step:
            with torch.no_grad():
                self.ctx.host.call("bionic_after_step", ctx=self.ctx, model=self.model,
                                   step=self.step, lr=self.optimizer.param_groups[0]["lr"])

    def validate(self, val: DeviceSplit) -> dict[str, Any]:
        """This run's metrics on the validation split (what :meth:`end_epoch` monitors)."""
        return evaluate(self.model, val, self.config.eval_batch_size)

    def end_epoch(self, train_loss: float, val: DeviceSplit, started: float,
                  val_metrics: dict[str, Any] | None = None) -> None:
        """Validate (unless ``val_metrics`` of :meth:`validate` are given), step the scheduler,
        keep the best state, decide on early stopping, log the epoch's row, checkpoint and
        report. ``started`` is the ``perf_counter`` time the epoch began (for a run trained
        with others: now minus its share of the training time)."""
        if self._check_divergence(train_loss):
            return
        if val_metrics is None:
            val_metrics = self.validate(val)
        monitored = val_metrics[self.config.monitor.removeprefix("val_")]
        self._step_scheduler(monitored)
        self.epoch += 1
        self._keep_best(monitored)
        row = self._record_epoch(train_loss, val_metrics, started)
        self.stopped = self.config.patience > 0 and self.bad_epochs >= self.config.patience
        self._save_checkpoint()
        if self.on_epoch is not None:
            self.on_epoch(self.epoch, row)

    def _check_divergence(self, train_loss: float) -> bool:
        """Mark the run failed if its training loss is not finite; whether it diverged."""
        if math.isfinite(train_loss):
            return False
        self.result.status = RunStatus.FAILED
        self.result.reason = f"diverged: training loss is {train_loss} in epoch {self.epoch + 1}"
        return True

    def _step_scheduler(self, monitored: float) -> None:
        """Step the scheduler, if any (a plateau schedule on the monitored metric)."""
        if self.scheduler is None:
            return
        if _is_plateau(self.scheduler):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def _keep_best(self, monitored: float) -> None:
        """Keep a copy of the weights of a better epoch; otherwise count a bad one."""
        if monitored > self.best_metric:
            self.best_metric, self.best_state, self.bad_epochs = (
                monitored, _clone_state(self.model), 0)
            self.result.best_epoch = self.epoch
        else:
            self.bad_epochs += 1

    def _record_epoch(self, train_loss: float, val_metrics: dict[str, Any],
                      started: float) -> dict[str, float]:
        """Count the epoch's time, append its row to the history and tell the features."""
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        row = {"epoch": self.epoch, "train_loss": train_loss,
               "val_accuracy": val_metrics["accuracy"], "val_macro_f1": val_metrics["macro_f1"],
               "epoch_time": elapsed, "lr": float(self.optimizer.param_groups[0]["lr"])}
        self.result.history.append(row)
        self.ctx.host.call("bionic_epoch_end", ctx=self.ctx, model=self.model,
                           epoch=self.epoch, metrics=row)
        return row

    def _save_checkpoint(self) -> None:
        """Save everything :meth:`_resume` needs, when the run has a checkpoint file."""
        if self.checkpoint is not None:
            _atomic_save(self._checkpoint_state(), self.checkpoint)

    def _checkpoint_state(self) -> dict[str, Any]:
        """The checkpoint's contents: copies, since a model trained with others holds views."""
        scheduler, result = self.scheduler, self.result
        return {"model": _clone_state(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "generator": self.generator.get_state(),
                "streams": {n: g.get_state() for n, g in self.ctx.streams.items()},
                "feature_states": dict(self.ctx.host.call("bionic_state", ctx=self.ctx)),
                "epoch": self.epoch,
                "step": self.step, "bad_epochs": self.bad_epochs,
                "best_metric": self.best_metric, "best_state": self.best_state,
                "best_epoch": result.best_epoch, "history": result.history,
                "stopped": self.stopped}

    def finish(self, val: DeviceSplit) -> RunResult:
        """Restore the best epoch's weights and evaluate them on validation and on every test
        split, each on its own."""
        result, config = self.result, self.config
        result.train_seconds = self.seconds
        result.epochs_run = len(result.history)
        self.model.load_state_dict(self.best_state)
        result.model_state = {k: v.detach().cpu() for k, v in self.best_state.items()}
        result.val = self.validate(val)
        for name in self.data.test_splits():
            split = self.data.splits[name]
            result.tests[name] = evaluate(self.model, DeviceSplit(split.images, split.labels,
                                                                  self.device),
                                          config.eval_batch_size)
        result.test = result.tests.get(self.data.primary_test() or "")
        return result


def autocast_for(config: RunConfig, device: torch.device) -> Any:
    """bf16 autocast when the config asks for it on CUDA; a no-op context otherwise."""
    if config.precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def device_splits(data: Dataset, device: torch.device) -> tuple[DeviceSplit, DeviceSplit]:
    """The training and validation splits on the device."""
    return (DeviceSplit(data.splits["train"].images, data.splits["train"].labels, device),
            DeviceSplit(data.splits["val"].images, data.splits["val"].labels, device))


def train_state(state: RunState, train: DeviceSplit, val: DeviceSplit) -> RunResult:
    """Train one run from its state to the end; the loop of :func:`train_run`."""
    config, device, model = state.config, state.device, state.model
    autocast = autocast_for(config, device)
    forward = torch.compile(model) if config.compile else model
    with intra_op_threads(config.cpu_threads, device):
        while not state.done:
            started = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            tick = BatchTicker([state], len(train), config.batch_size)
            for done, (x, y) in enumerate(train.shuffled(config.batch_size, state.generator), 1):
                loss_sum += state.train_step(x, y, forward, autocast) * y.shape[0]
                tick(done)
            train_loss = float(loss_sum / len(train))  # the one host sync of the epoch
            state.end_epoch(train_loss, val, started)
        return state.finish(val)


def train_run(
    config: RunConfig,
    catalogue: Catalogue,
    *,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    data: Dataset | None = None,
    on_batch: BatchCallback | None = None,
) -> RunResult:
    """Train one run to completion (or divergence). With ``checkpoint``, state is saved after
    every epoch and a rerun with the same path continues from the last finished epoch.
    ``on_epoch(epoch, row)`` follows the finished epochs, ``on_batch`` the batches inside one
    (see :mod:`~bionic_core.training.batch_progress`)."""
    data = data or load_run_data(config)
    state = RunState(config, catalogue, data, checkpoint=checkpoint, on_epoch=on_epoch,
                     on_batch=on_batch)
    return train_state(state, *device_splits(data, state.device))
