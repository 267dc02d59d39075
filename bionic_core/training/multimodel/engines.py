"""The two engines that take one training step for S runs: :class:`BatchedEngine` (one
vmapped step through a :class:`ModelStack`, on a GPU) and :class:`ParallelEngine` (per-model
steps in worker threads, on a CPU)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from bionic_core.network.model import IMAGE_SIZE
from bionic_core.training.loop import RunState, autocast_for
from bionic_core.training.multimodel.compatibility import MultiModelUnsupported
from bionic_core.training.multimodel.model_stack import ModelStack

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def global_rng_state(device: torch.device) -> torch.Tensor:
    """The global generator's state for ``device`` (what noise inside a forward pass draws)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_global_rng_state(state: torch.Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def draws_global_rng(state: RunState) -> bool:
    """Whether a training-mode forward pass of ``state``'s model draws from torch's global
    generator (probed on a small batch; the generators are restored afterwards)."""
    device = state.device
    saved = global_rng_state(device)
    streams = {name: g.get_state() for name, g in state.ctx.streams.items()}
    was_training = state.model.training
    state.model.train()
    with torch.no_grad():
        state.model(torch.full((2, 1, IMAGE_SIZE, IMAGE_SIZE), 0.5, device=device))
    state.model.train(was_training)
    drew = not torch.equal(global_rng_state(device), saved)
    set_global_rng_state(saved, device)
    for name, stream in streams.items():  # the probe's draws must not shift the run's own
        state.ctx.streams[name].set_state(stream)
    return drew


class Engine:
    """Steps S runs together; what the engines share (the hooks default to doing nothing)."""

    def step(self, states: list[RunState], batches: Batches) -> torch.Tensor:
        """One optimizer step of every run on its batch; the detached losses ``(S,)``."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Called after an epoch's last step."""

    def each(self, work: Callable[[RunState], Any], states: list[RunState]) -> list[Any]:
        """``work(state)`` for every state, one after another (each a full-device call)."""
        return [work(state) for state in states]

    def shrink(self, states: list[RunState]) -> None:
        """Runs have finished: go on with ``states`` only."""

    def close(self) -> None:
        """Release what the engine holds."""


class BatchedEngine(Engine):
    """One vmapped step for all models (:class:`ModelStack`): the engine on a GPU."""

    def __init__(self, states: list[RunState]) -> None:
        self.stack = ModelStack(states)
        self.stack.train()
        config = states[0].config
        self.autocast = autocast_for(config, states[0].device)
        self.compiled = torch.compile(self.stack.__call__) if config.compile else None
        # Noise comes from each run's own streams (normal_like draws each model's slice from its
        # run's generator); a run that draws from torch's global generator cannot be batched
        # without tying its numbers to the group, so such runs train one by one.
        for state in states:
            if draws_global_rng(state):
                raise MultiModelUnsupported("a feature draws from torch's global generator in "
                                            "the forward pass; these runs train one by one")
        self.generators = [s.generator.get_state() for s in states]

    def step(self, states: list[RunState], batches: Batches) -> torch.Tensor:
        x = torch.stack([s.augment(xb) for s, (xb, _) in zip(states, batches, strict=True)])
        try:
            with self.autocast:
                logits = self._forward(x)
        except MultiModelUnsupported:
            if self.stack.steps:
                raise RuntimeError("multi-model engine: a forward hook changed activity "
                                   "after training began") from None
            for state, saved in zip(states, self.generators, strict=True):
                state.generator.set_state(saved)  # one by one from the very same draws
            raise
        losses = torch.stack([s.criterion(logits[i].float(), y)
                              for i, (s, (_, y)) in enumerate(zip(states, batches, strict=True))])
        self.stack.zero_grad()
        losses.sum().backward()
        for state in states:
            state.optimizer.step()
        self.stack.steps += 1
        for state in states:
            state.after_optimizer_step()
        return losses.detach()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None and not self.stack.steps:  # compiles on the first call
            try:
                return self.compiled(x)
            except MultiModelUnsupported:
                raise
            except Exception as exc:  # noqa: BLE001 - the eager pass is the same computation
                warnings.warn(f"torch.compile of the batched step failed ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); training without it", RuntimeWarning,
                              stacklevel=2)
                self.compiled = None
        return self.compiled(x) if self.compiled is not None else self.stack(x)

    def end_epoch(self) -> None:
        self.stack.check_views()

    def shrink(self, states: list[RunState]) -> None:
        self.stack.restack(states)


class ParallelEngine(Engine):
    """Each model takes its step with the one-by-one code, the models spread over worker
    threads with one intra-op thread each: the engine on a CPU, where a step is compute-bound
    and batched kernels (grouped convolutions, strided elementwise work) are slower than the
    plain ones, but several cores can each train a model.

    A model whose forward pass draws from torch's global generator (rather than from its
    private ``ctx.random_stream``) runs that pass under a lock, with its own saved generator
    state — so it draws exactly what it draws alone — while the other workers go on with
    their backward passes, optimizer steps and draw-free forward passes.
    """

    def __init__(self, states: list[RunState], rng: dict[int, torch.Tensor],
                 workers: int) -> None:
        self.rng, self.device = rng, states[0].device
        config = states[0].config
        self.autocast = autocast_for(config, self.device)
        self.lock = threading.Lock()
        self.forwards = {}
        for state in states:
            forward = torch.compile(state.model) if config.compile else state.model
            self.forwards[id(state)] = (self._own_rng(state, forward)
                                        if draws_global_rng(state) else forward)
        self.workers = max(1, min(workers, len(states)))
        self.pool = None
        if self.workers > 1:  # each worker computes with the runs' cpu_threads, set by the caller
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bionic-model")

    def _own_rng(self, state: RunState, forward: Callable[..., Any]) -> Callable[..., Any]:
        """``forward`` run under the lock with ``state``'s own global-generator state."""
        key = id(state)

        def guarded(x: torch.Tensor) -> torch.Tensor:
            with self.lock:
                set_global_rng_state(self.rng[key], self.device)
                try:
                    return forward(x)
                finally:
                    self.rng[key] = global_rng_state(self.device)

        return guarded

    def _steps(self, states: list[RunState], batches: Batches, indices: list[int],
               losses: list) -> None:
        for i in indices:
            losses[i] = states[i].train_step(*batches[i], self.forwards[id(states[i])],
                                             self.autocast)

    def step(self, states: list[RunState], batches: Batches) -> torch.Tensor:
        losses: list[torch.Tensor | None] = [None] * len(states)
        if self.pool is None:
            self._steps(states, batches, list(range(len(states))), losses)
        else:
            futures = [self.pool.submit(self._steps, states, batches,
                                        list(range(w, len(states), self.workers)), losses)
                       for w in range(self.workers)]
            for future in futures:
                future.result()
        return torch.stack(losses)

    def each(self, work: Callable[[RunState], Any], states: list[RunState]) -> list[Any]:
        """``work(state)`` for every state, spread over the workers (validation and final
        evaluation: with one intra-op thread per worker, evaluating the models one after
        another would leave all but one core idle)."""
        if self.pool is None or len(states) < 2:
            return super().each(work, states)
        return list(self.pool.map(work, states))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
