"""The lockstep loop and :func:`train_many`: runs grouped by compatibility, each group trained
epoch by epoch through an engine, every run finished as soon as it is done."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from bionic_core.config import RunConfig
from bionic_core.data import Dataset
from bionic_core.host import Catalogue
from bionic_core.training.batch_progress import BatchCallback, BatchTicker
from bionic_core.training.batches import DeviceSplit
from bionic_core.training.loop import (
    EpochCallback,
    RunResult,
    RunState,
    device_splits,
    load_run_data,
    train_state,
)
from bionic_core.training.multimodel.compatibility import (
    MultiModelUnsupported,
    default_batched,
    group_by_key,
    model_signature,
    runtime_key,
)
from bionic_core.training.multimodel.engines import (
    BatchedEngine,
    Engine,
    ParallelEngine,
    global_rng_state,
    set_global_rng_state,
)
from bionic_core.training.threads import intra_op_threads, runs_at_once

Finished = Callable[[RunState, RunResult], None]


class _Results:
    """The runs' results by input position; ``on_finished(i, result)`` as each comes in."""

    def __init__(self, states: list[RunState],
                 on_finished: Callable[[int, RunResult], None] | None) -> None:
        self.index = {id(s): i for i, s in enumerate(states)}
        self.results: list[RunResult | None] = [None] * len(states)
        self.on_finished = on_finished

    def __call__(self, state: RunState, result: RunResult) -> None:
        i = self.index[id(state)]
        self.results[i] = result
        if self.on_finished is not None:
            self.on_finished(i, result)

    def has(self, state: RunState) -> bool:
        return self.results[self.index[id(state)]] is not None

    def in_order(self) -> list[RunResult]:
        return [r for r in self.results if r is not None]


def _lockstep_epoch(engine: Engine, active: list[RunState], train: DeviceSplit,
                    val: DeviceSplit, finished: Finished) -> list[RunState]:
    """One epoch of every ``active`` run; finishes the runs that are done, returns the rest."""
    config, device = active[0].config, active[0].device
    started = time.perf_counter()
    for state in active:
        state.model.train()
    loss_sum = torch.zeros(len(active), device=device)
    tick = BatchTicker(active, len(train), config.batch_size)
    for done, batches in enumerate(zip(*(train.shuffled(config.batch_size, s.generator)
                                         for s in active), strict=True), 1):
        loss_sum += engine.step(active, list(batches)) * batches[0][1].shape[0]
        tick(done)
    engine.end_epoch()
    train_losses = (loss_sum / len(train)).tolist()  # the one host sync of the epoch
    validated = engine.each(lambda s: s.validate(val), active)
    share = (time.perf_counter() - started) / len(active)
    for state, train_loss, metrics in zip(active, train_losses, validated, strict=True):
        state.end_epoch(train_loss, val, time.perf_counter() - share, metrics)
    done = [s for s in active if s.done]
    for state, result in zip(done, engine.each(lambda s: s.finish(val), done), strict=True):
        finished(state, result)
    remaining = [s for s in active if not s.done]
    if remaining and len(remaining) < len(active):
        engine.shrink(remaining)
    return remaining


def _train_lockstep(states: list[RunState], train: DeviceSplit, val: DeviceSplit,
                    finished: Finished, *, batched: bool,
                    rng: dict[int, torch.Tensor]) -> None:
    """Train ``states`` together until each is done; ``finished(state, result)`` as each
    ends. The engine also validates and finishes the runs (in parallel on the CPU)."""
    for state in [s for s in states if s.done]:
        finished(state, state.finish(val))
    active = [s for s in states if not s.done]
    if not active:
        return
    engine = (BatchedEngine(active) if batched
              else ParallelEngine(active, rng,
                                  workers=runs_at_once(active[0].config.cpu_threads, len(active))))
    try:
        while active:
            active = _lockstep_epoch(engine, active, train, val, finished)
    finally:
        engine.close()


def _train_group(group: list[RunState], train: DeviceSplit, val: DeviceSplit,
                 results: _Results, *, batched: bool, rng: dict[int, torch.Tensor],
                 device: torch.device) -> None:
    """Train ``group`` together, or one by one when it is a single run or cannot be; every run
    with its config's ``cpu_threads`` on the CPU, as alone."""
    with intra_op_threads(group[0].config.cpu_threads, device):
        _train_group_threads(group, train, val, results, batched=batched, rng=rng, device=device)


def _train_group_threads(group: list[RunState], train: DeviceSplit, val: DeviceSplit,
                         results: _Results, *, batched: bool, rng: dict[int, torch.Tensor],
                         device: torch.device) -> None:
    if len(group) > 1:
        try:
            _train_lockstep(group, train, val, results, batched=batched, rng=rng)
            return
        except MultiModelUnsupported:
            pass  # raised before the first step: nothing has changed yet
    for state in group:  # one by one: alone, or not batchable
        if not results.has(state):
            set_global_rng_state(rng[id(state)], device)
            results(state, train_state(state, train, val))


def _check_same_data(configs: Sequence[RunConfig]) -> None:
    data_keys = {(c.dataset, c.val_fraction, c.test_data) for c in configs}
    if len(data_keys) > 1:
        raise ValueError(f"train_many: the configs use different data: {sorted(data_keys)}")


def _start_states(configs: Sequence[RunConfig], catalogue: Catalogue, data: Dataset,
                  checkpoints: Sequence[Path | None], callbacks: Sequence[EpochCallback | None],
                  batch_callbacks: Sequence[BatchCallback | None]
                  ) -> tuple[list[RunState], dict[int, torch.Tensor]]:
    """Every run's state, and each run's global-generator state as it would be alone."""
    states: list[RunState] = []
    rng: dict[int, torch.Tensor] = {}
    for i, config in enumerate(configs):
        states.append(RunState(config, catalogue, data, checkpoint=checkpoints[i],
                               on_epoch=callbacks[i], on_batch=batch_callbacks[i]))
        rng[id(states[-1])] = global_rng_state(states[-1].device)
    return states, rng


def train_many(
    configs: Sequence[RunConfig],
    catalogue: Catalogue,
    *,
    checkpoints: Sequence[Path | None] | None = None,
    on_epoch: Sequence[EpochCallback | None] | None = None,
    data: Dataset | None = None,
    on_finished: Callable[[int, RunResult], None] | None = None,
    batched: bool | None = None,
    on_batch: Sequence[BatchCallback | None] | None = None,
) -> list[RunResult]:
    """Train every config, those of one shape together; return the results in input order.

    ``checkpoints``, ``on_epoch`` and ``on_batch`` are per config, as in :func:`train_run` (a
    checkpoint is the same file either way, so a run may be resumed alone or together).
    ``on_finished(i, result)`` is called as soon as run ``i`` has its final result. The configs
    must share their data (dataset, validation fraction, test data); others differences only
    split the groups.
    ``batched`` chooses vmapped steps (default on CUDA) or per-model steps in parallel threads
    (default on the CPU).
    """
    configs = list(configs)
    n = len(configs)
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * n
    callbacks = list(on_epoch) if on_epoch is not None else [None] * n
    batch_callbacks = list(on_batch) if on_batch is not None else [None] * n
    _check_same_data(configs)
    if n == 0:
        return []
    data = data or load_run_data(configs[0])
    states, rng = _start_states(configs, catalogue, data, checkpoints, callbacks,
                                batch_callbacks)
    device = states[0].device
    batched = default_batched(device) if batched is None else batched
    results = _Results(states, on_finished)
    train, val = device_splits(data, device)
    keys = [(runtime_key(s.config), model_signature(s.model) if batched else None)
            for s in states]
    for chunk in group_by_key(keys, configs, device):
        _train_group([states[i] for i in chunk], train, val, results, batched=batched, rng=rng,
                     device=device)
    return results.in_order()
