"""The multi-model engine: train S runs together, in lockstep, each with its own everything.

An ablation study is dozens of small models, and a small model's step costs mostly per-step
overhead (kernel launches, Python, optimizer bookkeeping) on a GPU. So on a GPU the engine
trains S runs whose networks share a shape with *batched* steps: their parameters and buffers
are stacked along a new leading dimension and one forward pass runs all of them through
``torch.func.vmap`` over ``functional_call`` of a template copy of the network — linear layers
become batched matmuls, convolutions grouped convolutions, and every feature's module works
unchanged (its masks, gains and parameters are per-model slices of the stacks).

On a CPU a step is compute-bound and batched kernels are slower than plain ones (grouped
convolutions and strided elementwise work: measured 1.25× slower for the `paper` model), so
there the engine takes *per-model* steps with the one-by-one code, the models spread over
worker threads with one intra-op thread each (a few cores train a few models at once instead
of sharing each small operation); the validation after each epoch and the final evaluation
run on those workers too. :func:`default_batched` picks by device; both give the one-by-one
results.

Each run keeps everything that is its own, through its
:class:`~bionic_core.training.RunState`, exactly as in :func:`~bionic_core.training.train_run`:

- its model object; in batched steps its parameters and buffers are *views* of its slice of
  the stacks (gradients too), so features that write weights after a step (Hebbian updates)
  act on that run alone through the ordinary modules, and checkpoints are the usual files;
- its optimizer over those views (Adam's update is elementwise, so S optimizers over slices of
  one stacked tensor are S independent optimizers), its scheduler — so a plateau schedule
  gives each run its own learning rate —, its loss and batch transforms;
- its own generator: its own data order and augmentation draws, the same as one by one;
- its own early stopping: a run that stops (or diverges, or reaches its epochs) leaves the
  group (batched: the stacks are rebuilt from the remaining runs) and is finished at once.

Forward hooks that features put on a run's modules (the Hebbian plugin's activity capture)
see that run's own activity: in batched steps the template records every call of a hooked
module inside the batched pass and the engine then calls each run's hooks with its slice. A
hook must observe, not change, activity (return None); backward hooks are not supported. Runs
that cannot be batched — different shapes or module settings, such hooks — train one by one,
so :func:`train_many` always returns every result.

Equivalence: with the same seeds, runs trained together reproduce the one-by-one runs up to
floating-point rounding (batched kernels sum in another order). Noise drawn inside the
forward pass: from the run's private stream (``ctx.random_stream``, as synaptic noise does), a
per-model step draws exactly what the run draws alone, with no coordination; from torch's
global generator (a third-party feature may), per-model steps give each run its own saved
generator state, so it still draws what it draws alone, but such forward passes run one at a
time, under a lock. Batched steps draw independent noise per model (vmap
``randomness="different"``) from the global generator seeded by the group — the same
distribution, not the same numbers. ``--no-multimodel`` (``multimodel = false``) trains every
run alone.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils import _pytree as pytree

from bionic_core.config import RunConfig
from bionic_core.data import Dataset
from bionic_core.host import Catalogue
from bionic_core.network.model import IMAGE_SIZE
from bionic_core.training.batches import DeviceSplit
from bionic_core.training.loop import (
    EpochCallback,
    RunResult,
    RunState,
    autocast_for,
    device_splits,
    load_run_data,
    prepare,
    train_state,
)

# Models per group when the config's max_models is 0: on a GPU every model in a batched step
# amortises the launch overhead further; on the CPU a few per core keep the workers busy, and
# more would only hold more models in memory at once.
DEFAULT_MAX_MODELS = {"cpu": 8, "cuda": 64}

_BACKWARD_HOOKS = ("_backward_hooks", "_backward_pre_hooks")


class MultiModelUnsupported(Exception):
    """These models cannot be trained together (the engine then trains them one by one)."""


# ============================================================================ compatibility


def _freeze(value: Any) -> Any:
    """A hashable, comparable stand-in for a module attribute's value."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        return ("tensor", tuple(value.shape), str(value.dtype),
                hashlib.sha256(data).hexdigest())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        return value
    if callable(value):  # a function stored on a module: same only if the very same object
        return ("callable", id(value))
    return (type(value).__qualname__, repr(value))


def model_signature(model: nn.Module) -> tuple:
    """What must be equal for two models to run as one vmapped template: every submodule's
    type and public settings, and every parameter's and buffer's name, shape and dtype."""
    parts = []
    for name, module in model.named_modules():
        settings = tuple((k, _freeze(v)) for k, v in sorted(vars(module).items())
                         if not k.startswith("_") and k != "training")
        params = tuple((k, None if p is None else (tuple(p.shape), str(p.dtype), p.requires_grad))
                       for k, p in module._parameters.items())
        buffers = tuple((k, None if b is None else (tuple(b.shape), str(b.dtype)))
                        for k, b in module._buffers.items())
        parts.append((name, type(module).__module__, type(module).__qualname__, settings,
                      params, buffers))
    return tuple(parts)


def runtime_key(config: RunConfig) -> tuple:
    """What runs trained in one step must share besides the network's shape: the data, the
    batch size and how the step runs."""
    return (config.dataset, config.test_data, config.val_fraction, config.batch_size,
            config.device, config.deterministic, config.precision, config.compile)


def max_models(config: RunConfig, device: torch.device | str) -> int:
    """The group size limit: the config's ``max_models``, or the device's default for 0."""
    kind = torch.device(device).type
    return config.max_models if config.max_models > 0 else DEFAULT_MAX_MODELS.get(kind, 8)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    """Split ``items`` into chunks of at most ``size``, as even as possible."""
    if len(items) <= size:
        return [items]
    n = math.ceil(len(items) / size)
    return [items[i::n] for i in range(n)]


def compatible_groups(configs: Sequence[RunConfig], catalogue: Catalogue, *,
                      batched: bool | None = None) -> list[list[int]]:
    """Indices of ``configs`` in groups that can train together — same data, batch size and
    runtime and, for batched steps (:func:`default_batched` of the configs' device), networks
    of one shape — in order of first appearance, each at most :func:`max_models` long. Shapes
    are read from models built on the CPU once per configuration (seeds are assumed not to
    change a network's shape; :func:`train_many` checks again)."""
    from bionic_core.training.seeding import resolve_device

    if not configs:
        return []
    device = resolve_device(configs[0].device)
    batched = default_batched(device) if batched is None else batched
    signatures: dict[str, Any] = {}
    keys: list[tuple] = []
    for config in configs:
        signature = None
        if batched:
            spec = {k: v for k, v in config.spec().items() if k != "seed"}
            cache_key = repr(sorted(spec.items()))
            if cache_key not in signatures:
                cpu = torch.device("cpu")
                signatures[cache_key] = model_signature(
                    prepare(config.replace(device="cpu"), catalogue, cpu)[1])
            signature = signatures[cache_key]
        keys.append((runtime_key(config), signature))
    groups: dict[tuple, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    out = []
    for members in groups.values():
        out.extend(_chunks(members, max_models(configs[members[0]], device)))
    return sorted(out, key=lambda g: g[0])


# ============================================================================ the stack


@dataclass
class _Call:
    """One call of a hooked module inside the batched pass."""

    name: str  # the module's qualified name
    kind: str  # "pre" (forward pre-hook) or "post" (forward hook)
    spec: Any  # pytree spec of (args,) or (args, output)
    leaves: list[Any]  # the flattened leaves; tensors are replaced by the batched outputs
    tensor_slots: list[int]  # positions of the tensors among the leaves


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_pre_hooks or module._forward_hooks)


def _strip_hooks(model: nn.Module) -> None:
    for module in model.modules():
        for attr in ("_forward_pre_hooks", "_forward_hooks", "_forward_pre_hooks_with_kwargs",
                     "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                     *_BACKWARD_HOOKS):
            getattr(module, attr, {}).clear()


def _call_hooks(module: nn.Module, kind: str, args: tuple, output: Any = None) -> None:
    """Call ``module``'s own forward (pre-)hooks as its forward pass would have."""
    if kind == "pre":
        hooks, with_kwargs = module._forward_pre_hooks, module._forward_pre_hooks_with_kwargs
    else:
        hooks, with_kwargs = module._forward_hooks, module._forward_hooks_with_kwargs
    for hook_id, hook in list(hooks.items()):
        if kind == "pre":
            answer = hook(module, args, {}) if hook_id in with_kwargs else hook(module, args)
        else:
            answer = (hook(module, args, {}, output) if hook_id in with_kwargs
                      else hook(module, args, output))
        if answer is not None:
            raise MultiModelUnsupported(
                f"a forward hook on module '{module.__class__.__name__}' changes its "
                f"{'input' if kind == 'pre' else 'output'}; runs with it train one by one")


class ModelStack:
    """S models of one shape as one: stacked parameters and buffers, one vmapped forward.

    Each model's own parameters become views of its slice of the stacks (gradients too), so
    its optimizer, its after-step hooks and its checkpoint keep working on the model object.
    """

    def __init__(self, states: Sequence[RunState]) -> None:
        models = [s.model for s in states]
        first = model_signature(models[0])
        for state in states[1:]:
            if model_signature(state.model) != first:
                raise MultiModelUnsupported("the networks differ in shape or module settings")
        if (torch.nn.modules.module._global_forward_hooks
                or torch.nn.modules.module._global_forward_pre_hooks
                or torch.nn.modules.module._global_backward_hooks):
            raise MultiModelUnsupported("global module hooks are registered")
        for model in models:
            for module in model.modules():
                if any(getattr(module, attr, None) for attr in _BACKWARD_HOOKS):
                    raise MultiModelUnsupported("a feature registers backward hooks")
        self.template = copy.deepcopy(models[0])
        _strip_hooks(self.template)
        self.param_names = [n for n, _ in self.template.named_parameters()]
        self.buffer_names = [n for n, _ in self.template.named_buffers()]
        # Modules whose forward hooks must see each model's activity: record their calls.
        watched = sorted({name for model in models for name, module in model.named_modules()
                          if _hooked(module)})
        self._calls: list[_Call] = []
        for name in watched:
            module = self.template.get_submodule(name)
            module.register_forward_pre_hook(
                lambda mod, args, name=name: self._record(name, "pre", (args,)))
            module.register_forward_hook(
                lambda mod, args, out, name=name: self._record(name, "post", (args, out)))
        self.steps = 0
        self.restack(states)

    def _record(self, name: str, kind: str, payload: tuple) -> None:
        leaves, spec = pytree.tree_flatten(payload)
        slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        self._calls.append(_Call(name, kind, spec, leaves, slots))

    def restack(self, states: Sequence[RunState]) -> None:
        """(Re)build the stacks from ``states``' models and point each model at its slice; a
        model that leaves gets its own copies back, so the old stacks can be freed."""
        staying = {id(s) for s in states}
        for state in getattr(self, "states", []):
            if id(state) not in staying:
                for p in state.model.parameters():
                    p.data, p.grad = p.data.clone(), None
                for module in state.model.modules():
                    for attr, buffer in module._buffers.items():
                        if buffer is not None:
                            module._buffers[attr] = buffer.clone()
        self.states = list(states)
        models = [s.model for s in self.states]
        self.params: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.grads: list[torch.Tensor] = []
        named = [dict(m.named_parameters()) for m in models]
        for name in self.param_names:
            own = [n[name] for n in named]
            stacked = torch.stack([p.detach() for p in own]).requires_grad_(own[0].requires_grad)
            grad = torch.zeros_like(stacked) if stacked.requires_grad else None
            if grad is not None:
                stacked.grad = grad
                self.grads.append(grad)
            for i, p in enumerate(own):
                p.data = stacked.data[i]
                if grad is not None:
                    p.grad = grad[i]
            self.params[name] = stacked
        for name in self.buffer_names:
            path, _, attr = name.rpartition(".")
            stacked = torch.stack([m.get_buffer(name) for m in models])
            for i, model in enumerate(models):
                model.get_submodule(path)._buffers[attr] = stacked[i]
            self.buffers[name] = stacked
        self._modules = [{name: m.get_submodule(name) for name, _ in m.named_modules()}
                         for m in models]

    def check_views(self) -> None:
        """Fail loudly if something replaced a model's parameter instead of updating it."""
        for i, state in enumerate(self.states):
            for name, p in state.model.named_parameters():
                if p.data_ptr() != self.params[name][i].data_ptr():
                    raise RuntimeError(f"multi-model engine: parameter {name} of run "
                                       f"{state.config.key()} was replaced, not updated in place")

    def train(self, mode: bool = True) -> None:
        self.template.train(mode)
        for state in self.states:
            state.model.train(mode)

    def zero_grad(self) -> None:
        if self.grads:
            torch._foreach_zero_(self.grads)

    def _forward_one(self, tensors: dict[str, torch.Tensor], x: torch.Tensor
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._calls.clear()
        logits = functional_call(self.template, tensors, (x,))
        return logits, [call.leaves[i] for call in self._calls for i in call.tensor_slots]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(S, B, 7)`` of the stacked batch ``x`` ``(S, B, 1, 48, 48)``; then each
        model's forward hooks are called with its own slice of the recorded activity."""
        batched = vmap(self._forward_one, randomness="different")
        logits, captured = batched({**self.params, **self.buffers}, x)
        self._replay(captured)
        return logits

    def _replay(self, captured: list[torch.Tensor]) -> None:
        position = 0
        for call in self._calls:
            tensors = captured[position:position + len(call.tensor_slots)]
            position += len(call.tensor_slots)
            for i, modules in enumerate(self._modules):
                leaves = list(call.leaves)
                for slot, tensor in zip(call.tensor_slots, tensors, strict=True):
                    leaves[slot] = tensor[i]
                payload = pytree.tree_unflatten(leaves, call.spec)
                _call_hooks(modules[call.name], call.kind, *payload)


# ============================================================================ training


def _rng_state(device: torch.device) -> torch.Tensor:
    """The global generator's state for ``device`` (what noise inside a forward pass draws)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(state: torch.Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def _group_seed(states: Sequence[RunState]) -> int:
    text = ",".join(s.config.key() for s in states)
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


class _Batched:
    """One vmapped step for all models (:class:`ModelStack`): the engine on a GPU."""

    def __init__(self, states: list[RunState]) -> None:
        self.stack = ModelStack(states)
        self.stack.train()
        config = states[0].config
        self.autocast = autocast_for(config, states[0].device)
        self.compiled = torch.compile(self.stack.__call__) if config.compile else None
        # Noise drawn inside the forward pass comes from torch's global generator, one draw per
        # model (see the module docstring); seeded by the group, so a rerun draws the same.
        torch.manual_seed(_group_seed(states))
        self.generators = [s.generator.get_state() for s in states]

    def step(self, states: list[RunState], batches: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
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

    def each(self, work: Callable[[RunState], Any], states: list[RunState]) -> list[Any]:
        """``work(state)`` for every state, one after another (each a full-device call)."""
        return [work(state) for state in states]

    def shrink(self, states: list[RunState]) -> None:
        self.stack.restack(states)

    def close(self) -> None:
        pass


class _Parallel:
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
        import threading

        self.rng, self.device = rng, states[0].device
        config = states[0].config
        self.autocast = autocast_for(config, self.device)
        self.lock = threading.Lock()
        self.forwards = {}
        for state in states:
            forward = torch.compile(state.model) if config.compile else state.model
            self.forwards[id(state)] = (self._own_rng(state, forward)
                                        if self._draws_global_rng(state) else forward)
        self.workers = max(1, min(workers, len(states)))
        self.threads = torch.get_num_threads()
        self.pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            torch.set_num_threads(max(1, self.threads // self.workers))
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bionic-model")

    def _draws_global_rng(self, state: RunState) -> bool:
        """Whether a training-mode forward pass draws from the global generator."""
        saved = _rng_state(self.device)
        streams = {name: g.get_state() for name, g in state.ctx.streams.items()}
        was_training = state.model.training
        state.model.train()
        with torch.no_grad():
            state.model(torch.full((2, 1, IMAGE_SIZE, IMAGE_SIZE), 0.5, device=self.device))
        state.model.train(was_training)
        drew = not torch.equal(_rng_state(self.device), saved)
        _set_rng_state(saved, self.device)
        for name, stream in streams.items():  # the probe's draws must not shift the run's own
            state.ctx.streams[name].set_state(stream)
        return drew

    def _own_rng(self, state: RunState, forward: Callable[..., Any]) -> Callable[..., Any]:
        """``forward`` run under the lock with ``state``'s own global-generator state."""
        key = id(state)

        def guarded(x: torch.Tensor) -> torch.Tensor:
            with self.lock:
                _set_rng_state(self.rng[key], self.device)
                try:
                    return forward(x)
                finally:
                    self.rng[key] = _rng_state(self.device)

        return guarded

    def _steps(self, states: list[RunState], batches: list, indices: list[int],
               losses: list) -> None:
        for i in indices:
            losses[i] = states[i].train_step(*batches[i], self.forwards[id(states[i])],
                                             self.autocast)

    def step(self, states: list[RunState], batches: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> torch.Tensor:
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

    def end_epoch(self) -> None:
        pass

    def each(self, work: Callable[[RunState], Any], states: list[RunState]) -> list[Any]:
        """``work(state)`` for every state, spread over the workers (validation and final
        evaluation: with one intra-op thread per worker, evaluating the models one after
        another would leave all but one core idle)."""
        if self.pool is None or len(states) < 2:
            return [work(state) for state in states]
        return list(self.pool.map(work, states))

    def shrink(self, states: list[RunState]) -> None:
        pass

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            torch.set_num_threads(self.threads)


def _train_lockstep(states: list[RunState], train: DeviceSplit, val: DeviceSplit,
                    finished: Callable[[RunState, RunResult], None], *, batched: bool,
                    rng: dict[int, torch.Tensor]) -> None:
    """Train ``states`` together until each is done; ``finished(state, result)`` as each
    ends. The engine also validates and finishes the runs (in parallel on the CPU)."""
    config, device = states[0].config, states[0].device
    for state in [s for s in states if s.done]:
        finished(state, state.finish(val))
    active = [s for s in states if not s.done]
    if not active:
        return
    engine = (_Batched(active) if batched
              else _Parallel(active, rng, workers=min(len(active), torch.get_num_threads())))
    try:
        while active:
            started = time.perf_counter()
            for state in active:
                state.model.train()
            loss_sum = torch.zeros(len(active), device=device)
            for batches in zip(*(train.shuffled(config.batch_size, s.generator) for s in active),
                               strict=True):
                loss_sum += engine.step(active, list(batches)) * batches[0][1].shape[0]
            engine.end_epoch()
            train_losses = (loss_sum / len(train)).tolist()  # the one host sync of the epoch
            validated = engine.each(lambda s: s.validate(val), active)
            share = (time.perf_counter() - started) / len(active)
            for state, train_loss, metrics in zip(active, train_losses, validated, strict=True):
                state.end_epoch(train_loss, val, time.perf_counter() - share, metrics)
            done = [s for s in active if s.done]
            for state, result in zip(done, engine.each(lambda s: s.finish(val), done),
                                     strict=True):
                finished(state, result)
            remaining = [s for s in active if not s.done]
            if remaining and len(remaining) < len(active):
                engine.shrink(remaining)
            active = remaining
    finally:
        engine.close()


def default_batched(device: torch.device) -> bool:
    """Batched (vmapped) steps on a GPU; per-model steps in worker threads on a CPU."""
    return device.type == "cuda"


def train_many(
    configs: Sequence[RunConfig],
    catalogue: Catalogue,
    *,
    checkpoints: Sequence[Path | None] | None = None,
    on_epoch: Sequence[EpochCallback | None] | None = None,
    data: Dataset | None = None,
    on_finished: Callable[[int, RunResult], None] | None = None,
    batched: bool | None = None,
) -> list[RunResult]:
    """Train every config, those of one shape together; return the results in input order.

    ``checkpoints`` and ``on_epoch`` are per config, as in :func:`train_run` (a checkpoint is
    the same file either way, so a run may be resumed alone or together). ``on_finished(i,
    result)`` is called as soon as run ``i`` has its final result. The configs must share their
    data (dataset, validation fraction, test data); others differences only split the groups.
    ``batched`` chooses vmapped steps (default on CUDA) or per-model steps in parallel threads
    (default on the CPU).
    """
    configs = list(configs)
    n = len(configs)
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * n
    callbacks = list(on_epoch) if on_epoch is not None else [None] * n
    data_keys = {(c.dataset, c.val_fraction, c.test_data) for c in configs}
    if len(data_keys) > 1:
        raise ValueError(f"train_many: the configs use different data: {sorted(data_keys)}")
    if n == 0:
        return []
    data = data or load_run_data(configs[0])
    states: list[RunState] = []
    rng: dict[int, torch.Tensor] = {}  # each run's global-generator state, as it would be alone
    for i, config in enumerate(configs):
        states.append(RunState(config, catalogue, data, checkpoint=checkpoints[i],
                               on_epoch=callbacks[i]))
        rng[id(states[-1])] = _rng_state(states[-1].device)
    index = {id(s): i for i, s in enumerate(states)}
    device = states[0].device
    batched = default_batched(device) if batched is None else batched
    results: list[RunResult | None] = [None] * n
    train, val = device_splits(data, device)

    def finished(state: RunState, result: RunResult) -> None:
        i = index[id(state)]
        results[i] = result
        if on_finished is not None:
            on_finished(i, results[i])

    groups: dict[tuple, list[int]] = {}
    for i, state in enumerate(states):
        signature = model_signature(state.model) if batched else None
        groups.setdefault((runtime_key(state.config), signature), []).append(i)
    for members in groups.values():
        for chunk in _chunks(members, max_models(configs[members[0]], device)):
            group = [states[i] for i in chunk]
            if len(group) > 1:
                try:
                    _train_lockstep(group, train, val, finished, batched=batched, rng=rng)
                    continue
                except MultiModelUnsupported:
                    pass  # raised before the first step: nothing has changed yet
            for state in group:  # one by one: alone, or not batchable
                if results[index[id(state)]] is None:
                    _set_rng_state(rng[id(state)], device)
                    results[index[id(state)]] = train_state(state, train, val)
                    if on_finished is not None:
                        on_finished(index[id(state)], results[index[id(state)]])
    return [r for r in results if r is not None]
