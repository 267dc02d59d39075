"""The hook contract: every phase of a training run a feature plugin can take part in.

Hooks are grouped by phase — describe, build (once per run), train (every step), observe and
keep state (every epoch) — and each says how the answers of several features combine:

- **all answers**: every enabled feature that answers contributes, in ``Feature.order`` (ties by
  name) — explicit, not pluggy's last-registered-first;
- **single answer**: at most one enabled feature may answer; two answers are a configuration
  error naming both (exit 2), none means the core's default.

Hooks are called by the core, only through :class:`bionic_core.host.FeatureHost`, never by
features (a front end asks for its stages through ``ctx.host.call``). Build-time hooks return
torch modules or callables, so the training step itself runs plain torch. Every hook receives
``ctx``, the run's :class:`~bionic_core.contract.context.RunContext`; a feature reads its own
parameters with ``ctx.params("<feature name>")``. A hook that raises anything but a
``BionicError`` fails the run with one line naming the feature, its source and the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bionic_core.contract.context import RunContext
    from bionic_core.contract.features import Feature
    from bionic_core.contract.layers import HiddenLayer, LayerPlan

PROJECT = "bionic"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ============================================================================ describe


@hookspec
def bionic_feature() -> Feature:
    """Describe the feature: name, group, typed parameters, requires/conflicts.

    Called once when the plugin is registered. Every feature plugin implements it.
    """


# ============================================================================ build (once per run)


@hookspec
def bionic_batch_transform(
    ctx: RunContext,
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """Return a transform applied to each *training* batch on the device, or None.

    Called once before training. The transform receives a float batch ``(B, 1, 48, 48)`` in
    [0, 1] and the run's device generator and returns a batch of the same shape; it must draw
    per-image randomness from that generator. Transforms are chained in feature order.

    All answers: transforms are chained in feature order.
    """


@hookspec
def bionic_frontend(ctx: RunContext, in_channels: int, image_size: int) -> nn.Module | None:
    """Return the front end that maps images ``(B, C, H, W)`` to features ``(B, ...)``, or None.

    Called once when the model is built. At most one feature may provide a front end (features
    that do declare each other in ``conflicts``); without one the core flattens the image.

    Single answer.
    """


@hookspec
def bionic_frontend_stage(ctx: RunContext, stage: str, channels: int) -> nn.Module | None:
    """Return a module to insert at a named point inside a front end, or None.

    Called by a front-end feature while it builds itself, once per stage it offers (the conv
    front end offers ``"after_conv1"``); the module maps ``(B, channels, H, W)`` to the same
    shape. Inserted modules run in feature order.

    All answers: inserted modules run in feature order.
    """


@hookspec
def bionic_layer_plan(ctx: RunContext) -> LayerPlan | None:
    """Return the hidden-layer plan (sizes, names, cell types per unit), or None.

    Called once when the model is built. Without an answer the core uses uniform layers from the
    config's ``hidden_sizes``.

    Single answer.
    """


@hookspec
def bionic_layer_options(ctx: RunContext, plan: LayerPlan) -> dict[str, Any] | None:
    """Return options that switch on optional parts of every hidden layer, or None.

    Called once after the plan is known. Recognised keys: ``"intra_layer": True`` adds a masked
    within-layer term ``W_intra ⊙ M_intra`` to each hidden layer.

    All answers: the dictionaries are merged in feature order (a later key wins).
    """


@hookspec
def bionic_connectivity(
    ctx: RunContext, plan: LayerPlan, in_features: int, options: dict[str, Any]
) -> list[HiddenLayer] | None:
    """Return the plan's layers with connectivity masks filled in, or None for dense layers.

    Called once after the plan and the layer options are known. Each returned
    :class:`HiddenLayer` carries ``mask`` (out × in, or None for a dense projection) and
    ``intra_mask`` (n × n or None); it may change a layer's size (a control with other widths).
    ``in_features`` is the front end's output width (the first layer's input), ``options`` the
    merged answers of ``bionic_layer_options``.

    Single answer.
    """


@hookspec
def bionic_layer_activity(ctx: RunContext, layer: HiddenLayer, index: int) -> nn.Module | None:
    """Return a module that post-processes one hidden layer's activity, or None.

    Called once per hidden layer when the model is built. The module maps ``(B, n)`` to
    ``(B, n)`` after the activation; modules of several features run in feature order.

    All answers: the modules run in feature order.
    """


@hookspec
def bionic_model_built(ctx: RunContext, model: nn.Module) -> None:
    """Observe or adjust the finished model (e.g. register forward hooks, parametrizations).

    Called once, after the model is built and moved to the device, before the optimizer exists.
    A feature that (re-)initialises a tensor here does it with ``layer.initialise(name,
    values)``, which keeps a parametrization an earlier feature registered on it.

    All features, in feature order.
    """


@hookspec
def bionic_criterion(ctx: RunContext) -> nn.Module | None:
    """Return the training loss module ``(logits, targets) -> loss``, or None for cross-entropy.

    At most one feature may answer. Evaluation always uses plain cross-entropy.

    Single answer.
    """


@hookspec
def bionic_optimizer(
    ctx: RunContext, parameters: list[torch.nn.Parameter]
) -> torch.optim.Optimizer | None:
    """Return the optimizer over ``parameters``, or None for Adam at the config's learning rate.

    Single answer.
    """


@hookspec
def bionic_scheduler(ctx: RunContext, optimizer: torch.optim.Optimizer) -> Any | None:
    """Return a learning-rate scheduler, or None for a constant rate.

    The core steps it once per epoch, with the validation metric when it is
    ``ReduceLROnPlateau`` and without arguments otherwise.

    Single answer.
    """


# ============================================================================ train (every step)


@hookspec
def bionic_after_step(ctx: RunContext, model: nn.Module, step: int, lr: float) -> None:
    """Act after each optimizer step, outside autograd (e.g. Hebbian and homeostatic updates).
    ``lr`` is the learning rate that step used (the optimizer's first parameter group, after
    the schedule), for a local rule that should slow down with it.

    Called in feature order under ``torch.no_grad()``. A feature that writes weights must keep
    masked entries at zero (multiply its update by the layer's mask).

    All features, in feature order.
    """


# ============================================================================ observe, keep state


@hookspec
def bionic_epoch_end(
    ctx: RunContext, model: nn.Module, epoch: int, metrics: dict[str, float]
) -> None:
    """Observe the end of an epoch with its metrics (train loss, validation metrics, epoch time).

    All features, in feature order.
    """


@hookspec
def bionic_state(ctx: RunContext) -> dict[str, Any] | None:
    """Return this feature's run state to save with the run's checkpoint, or None.

    Called after every epoch, when the core checkpoints the run. The dictionary may hold
    tensors, numbers, strings and lists/dicts of them (it is saved with ``torch.save`` and
    loaded with ``weights_only=True``); state kept in ``ctx.stash`` that changes during training
    (running rates, thresholds, counters) belongs here, or a resumed run would differ from an
    uninterrupted one. Each feature's answer is saved under its name.
    """


@hookspec
def bionic_restore_state(ctx: RunContext, state: dict[str, Any]) -> None:
    """Restore what :func:`bionic_state` returned, when a run resumes from its checkpoint.

    Called once, after the model and optimizer are restored and before training continues,
    only for features that saved a state.
    """
