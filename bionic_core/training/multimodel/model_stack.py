"""The stacked model: S models of one shape as one, their parameters and buffers stacked along
a new leading dimension and one forward pass through ``vmap`` over a template copy."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils import _pytree as pytree

from bionic_core.contract.random_streams import stacked_streams
from bionic_core.training.loop import RunState
from bionic_core.training.multimodel.compatibility import MultiModelUnsupported, model_signature

_BACKWARD_HOOKS = ("_backward_hooks", "_backward_pre_hooks")


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


def _check_stackable(models: Sequence[nn.Module]) -> None:
    """Raise :class:`MultiModelUnsupported` unless ``models`` can run as one template: one
    shape and module settings, no global module hooks, no backward hooks."""
    first = model_signature(models[0])
    for model in models[1:]:
        if model_signature(model) != first:
            raise MultiModelUnsupported("the networks differ in shape or module settings")
    if (torch.nn.modules.module._global_forward_hooks
            or torch.nn.modules.module._global_forward_pre_hooks
            or torch.nn.modules.module._global_backward_hooks):
        raise MultiModelUnsupported("global module hooks are registered")
    for model in models:
        for module in model.modules():
            if any(getattr(module, attr, None) for attr in _BACKWARD_HOOKS):
                raise MultiModelUnsupported("a feature registers backward hooks")


def _own_copies(model: nn.Module) -> None:
    """Give a model that leaves the stacks its own copies of its parameters and buffers."""
    for p in model.parameters():
        p.data, p.grad = p.data.clone(), None
    for module in model.modules():
        for attr, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[attr] = buffer.clone()


class ModelStack:
    """S models of one shape as one: stacked parameters and buffers, one vmapped forward.

    Each model's own parameters become views of its slice of the stacks (gradients too), so
    its optimizer, its after-step hooks and its checkpoint keep working on the model object.
    """

    def __init__(self, states: Sequence[RunState]) -> None:
        models = [s.model for s in states]
        _check_stackable(models)
        self.template = copy.deepcopy(models[0])
        _strip_hooks(self.template)
        self.param_names = [n for n, _ in self.template.named_parameters()]
        self.buffer_names = [n for n, _ in self.template.named_buffers()]
        self._calls: list[_Call] = []
        self._watch_hooked_modules(models)
        self.steps = 0
        self.restack(states)

    def _watch_hooked_modules(self, models: Sequence[nn.Module]) -> None:
        """Record the template's calls of the modules whose forward hooks must see each
        model's activity (hooked in any of ``models``)."""
        watched = sorted({name for model in models for name, module in model.named_modules()
                          if _hooked(module)})
        for name in watched:
            module = self.template.get_submodule(name)
            module.register_forward_pre_hook(
                lambda mod, args, name=name: self._record(name, "pre", (args,)))
            module.register_forward_hook(
                lambda mod, args, out, name=name: self._record(name, "post", (args, out)))

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
                _own_copies(state.model)
        self.states = list(states)
        models = [s.model for s in self.states]
        self._stack_parameters(models)
        self._stack_buffers(models)
        self._modules = [{name: m.get_submodule(name) for name, _ in m.named_modules()}
                         for m in models]
        self.streams = self._per_run_streams(models)

    def _per_run_streams(self, models: list[nn.Module]) -> dict[int, list[torch.Generator]]:
        """Each generator a template module holds (a copy of run 0's stream) → the matching
        generator of every stacked run, so that noise in the batched pass is drawn per run
        (:func:`~bionic_core.contract.random_streams.normal_like`)."""
        streams: dict[int, list[torch.Generator]] = {}
        for name, module in self.template.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, torch.Generator):
                    streams[id(value)] = [getattr(m.get_submodule(name), attr) for m in models]
        return streams

    def _stack_parameters(self, models: list[nn.Module]) -> None:
        """Stack each parameter (and a zero gradient) and make each model's a view of it."""
        self.params: dict[str, torch.Tensor] = {}
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

    def _stack_buffers(self, models: list[nn.Module]) -> None:
        """Stack each buffer and make each model's a view of it."""
        self.buffers: dict[str, torch.Tensor] = {}
        for name in self.buffer_names:
            path, _, attr = name.rpartition(".")
            stacked = torch.stack([m.get_buffer(name) for m in models])
            for i, model in enumerate(models):
                model.get_submodule(path)._buffers[attr] = stacked[i]
            self.buffers[name] = stacked

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
        with stacked_streams(self.streams):
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
