"""One training run: build the model from the enabled features, train with early stopping,
checkpoint every epoch (a rerun resumes), and evaluate the best epoch."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bionic_core.batches import DeviceSplit
from bionic_core.config import RunConfig
from bionic_core.context import RunContext
from bionic_core.data import CLASS_NAMES, Dataset, load_dataset
from bionic_core.metrics import classification_metrics
from bionic_core.model import BionicNet, build_model, count_parameters
from bionic_core.plugin_manager import Catalogue
from bionic_core.seeding import make_generator, resolve_device, seed_everything

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class RunResult:
    """What a finished (or failed) run produced."""

    key: str
    config: RunConfig
    status: str  # "finished" | "failed"
    reason: str = ""
    device: str = "cpu"
    dataset: dict[str, Any] = field(default_factory=dict)  # name, is_demo, fingerprint, splits
    plan: dict[str, Any] = field(default_factory=dict)  # layer sizes and their source
    n_parameters: int = 0
    best_epoch: int = -1
    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    val: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    train_seconds: float = 0.0
    model_state: dict[str, torch.Tensor] | None = None
    resumed_from_epoch: int = 0

    def summary(self) -> dict[str, Any]:
        """Flat final metrics, named by split (``val_accuracy``, ``test_macro_f1``, ...)."""
        out: dict[str, Any] = {}
        for split, metrics in (("val", self.val), ("test", self.test)):
            for name in ("accuracy", "macro_f1", "roc_auc"):
                if metrics and name in metrics:
                    out[f"{split}_{name}"] = metrics[name]
        out.update(best_epoch=self.best_epoch, epochs_run=self.epochs_run,
                   n_parameters=self.n_parameters, train_seconds=round(self.train_seconds, 3))
        return out


@lru_cache(maxsize=4)
def _load(spec: str, val_fraction: float, test: str | None) -> Dataset:
    # The validation holdout uses a fixed seed, so every run of a study sees the same split.
    return load_dataset(spec, seed=0, val_fraction=val_fraction, test=test)


def load_run_data(config: RunConfig) -> Dataset:
    return _load(config.dataset, config.val_fraction, config.test_data)


def dataset_record(data: Dataset) -> dict[str, Any]:
    return {"name": data.name, "is_demo": data.is_demo, "source": data.source,
            "format": data.format, "fingerprint": data.fingerprint(),
            "splits": {k: {"n": len(s.labels), "origin": s.origin}
                       for k, s in data.splits.items()}}


@torch.no_grad()
def evaluate(model: nn.Module, split: DeviceSplit, batch_size: int) -> dict[str, Any]:
    """Metrics of ``model`` (eval mode) on a whole split."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x).float() for x, _ in split.in_order(batch_size)])
    model.train(was_training)
    return classification_metrics(logits, split.labels, CLASS_NAMES)


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
    ctx.host.ordered("bionic_model_built", ctx=ctx, model=model)
    return ctx, model, plan


def train_run(
    config: RunConfig,
    catalogue: Catalogue,
    *,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    data: Dataset | None = None,
) -> RunResult:
    """Train one run to completion (or divergence). With ``checkpoint``, state is saved after
    every epoch and a rerun with the same path continues from the last finished epoch."""
    data = data or load_run_data(config)
    ctx, model, plan = prepare(config, catalogue)
    device, host = ctx.device, ctx.host
    result = RunResult(key=config.key(), config=config, status="finished", device=str(device),
                       dataset=dataset_record(data),
                       plan={"sizes": plan.sizes, "source": plan.source,
                             "provenance": ctx.provenance},
                       n_parameters=count_parameters(model))

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (host.single("bionic_optimizer", ctx=ctx, parameters=params)
                 or torch.optim.Adam(params, lr=config.lr))
    scheduler = host.single("bionic_scheduler", ctx=ctx, optimizer=optimizer)
    criterion = host.single("bionic_criterion", ctx=ctx) or nn.CrossEntropyLoss()
    transforms = [t for _, t in host.ordered("bionic_batch_transform", ctx=ctx)]
    after_step = host.implementations("bionic_after_step")
    step_args: dict[str, Any] = {"ctx": ctx, "model": model, "step": 0}
    generator = make_generator(config.seed, device)
    train = DeviceSplit(data.splits["train"].images, data.splits["train"].labels, device)
    val = DeviceSplit(data.splits["val"].images, data.splits["val"].labels, device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else nullcontext())

    start_epoch, step, bad_epochs, stopped = 0, 0, 0, False
    best_metric, best_state = -math.inf, _clone_state(model)
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"].cpu())
        start_epoch, step, bad_epochs = saved["epoch"], saved["step"], saved["bad_epochs"]
        best_metric, best_state = saved["best_metric"], saved["best_state"]
        result.best_epoch, result.history = saved["best_epoch"], saved["history"]
        result.resumed_from_epoch = start_epoch
        stopped = saved["stopped"]

    began = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        for x, y in train.shuffled(config.batch_size, generator):
            for transform in transforms:
                x = transform(x, generator)
            with autocast:
                logits = model(x)
            loss = criterion(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if after_step:
                step_args["step"] = step
                with torch.no_grad():
                    for _, impl in after_step:
                        impl.function(**{a: step_args[a] for a in impl.argnames})
            loss_sum += loss.detach() * y.shape[0]
        train_loss = float(loss_sum / len(train))  # the one host sync of the epoch
        if not math.isfinite(train_loss):
            result.status = "failed"
            result.reason = f"diverged: training loss is {train_loss} in epoch {epoch + 1}"
            break
        val_metrics = evaluate(model, val, config.eval_batch_size)
        monitored = val_metrics[config.monitor.removeprefix("val_")]
        if scheduler is not None:
            scheduler.step(monitored) if _is_plateau(scheduler) else scheduler.step()
        if monitored > best_metric:
            best_metric, best_state, bad_epochs = monitored, _clone_state(model), 0
            result.best_epoch = epoch + 1
        else:
            bad_epochs += 1
        row = {"epoch": epoch + 1, "train_loss": train_loss,
               "val_accuracy": val_metrics["accuracy"], "val_macro_f1": val_metrics["macro_f1"],
               "epoch_time": time.perf_counter() - t0,
               "lr": float(optimizer.param_groups[0]["lr"])}
        result.history.append(row)
        host.ordered("bionic_epoch_end", ctx=ctx, model=model, epoch=epoch + 1, metrics=row)
        stopped = config.patience > 0 and bad_epochs >= config.patience
        if checkpoint is not None:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                          "generator": generator.get_state(), "epoch": epoch + 1, "step": step,
                          "bad_epochs": bad_epochs, "best_metric": best_metric,
                          "best_state": best_state, "best_epoch": result.best_epoch,
                          "history": result.history, "stopped": stopped}, checkpoint)
        if on_epoch is not None:
            on_epoch(epoch + 1, row)

    result.train_seconds = time.perf_counter() - began
    result.epochs_run = len(result.history)
    model.load_state_dict(best_state)
    result.model_state = {k: v.detach().cpu() for k, v in best_state.items()}
    result.val = evaluate(model, val, config.eval_batch_size)
    if "test" in data.splits:
        test = DeviceSplit(data.splits["test"].images, data.splits["test"].labels, device)
        result.test = evaluate(model, test, config.eval_batch_size)
    return result
