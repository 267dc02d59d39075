"""hebbian: a small local Hebbian update of every hidden layer's feedforward weights after each
optimizer step, with homeostatic regulation of each unit's activity.

After every optimizer step (outside autograd), for each hidden layer with presynaptic input
``x`` ``(B, m)`` and rate ``y = act(...)`` ``(B, n)`` from the last training batch (⟨·⟩ = batch
mean, η = ``rate``, M = the layer's mask, all-ones when dense, ``w_i`` = unit i's weight row):

- ``rule = "oja"`` (default; Oja 1982 in its explicit-normalisation form):
  ``w_i ← ‖w_i‖ · u / ‖u‖`` with ``u = w_i + η ‖w_i‖ ĥ_i`` and ``ĥ_i = ⟨y_i x⟩ ⊙ M_i / (√⟨y_i²⟩
  √⟨‖x‖²⟩)``. The Hebbian term turns each weight vector towards the inputs that drive the unit;
  the normalisation holds its length at the value backprop gave it (Oja's rule is the first-order
  expansion of exactly this, for unit length). By Cauchy–Schwarz ‖ĥ_i‖ ≤ 1, so a step turns a
  weight vector by at most η radians whatever the layer's activity scale.
- ``rule = "covariance"`` (Sejnowski 1977): the same normalised step with the batch means
  taken out of both sides, ``ĥ_i = ⟨(y_i − ȳ_i)(x − x̄)⟩ ⊙ M_i / (std(y_i) √⟨‖x − x̄‖²⟩)``. With
  non-negative inputs (ReLU activity, pooled conv maps) the plain ⟨y_i x⟩ of every unit points
  into the positive orthant, towards the mean input, so all units drift towards one direction;
  the covariance form turns a unit towards the input variation it responds to, and a unit whose
  rate does not co-vary with its input does not move.
- ``rule = "bcm"`` (Bienenstock, Cooper & Munro 1982): ``w_i ← w_i + η ‖w_i‖ ĝ_i`` with
  ``ĝ_i = ⟨φ_i x⟩ ⊙ M_i / (√⟨φ_i²⟩ √⟨‖x‖²⟩)``, ``φ_i = y_i (y_i − θ_i)`` and the sliding
  threshold θ_i a running mean of ⟨y_i²⟩: activity above θ potentiates, below depresses, and θ
  rises faster than the activity (which is what bounds BCM). A step changes ‖w_i‖ by at most a
  factor 1 ± η. (Law & Cooper's division by θ cancels in the normalisation.)

Homeostasis (``"threshold"``, an adaptive threshold / intrinsic plasticity) keeps each unit's
running firing probability p̄_i — the fraction of samples on which y_i > 0, averaged with time
constant ``tau`` steps — near ``target``: ``b_i += η_h (target − p̄_i) ‖w_i‖ rms(x)``, where the
factor ‖w_i‖ rms(x) is the typical size of the unit's input, so η_h is scale-free. A unit that
fires too rarely lowers its threshold, one that fires too often raises it; dead units revive.
With ``follow_lr`` both rates are multiplied by the optimizer's current learning rate over the
run's initial one (``lr_t / lr``), so plasticity slows down with the learning-rate schedule.
With constant rates (the default) the local rule's pull stays while the gradient step decays:
once a reduce-on-plateau schedule has brought the learning rate near η, the rule undoes what
backprop learned (measured on `paper`, seed 0: the training loss rises again from 1.33 to 1.44
once lr ≤ 1.25e-4 = 1.25 η; RESULTS.md).
Synaptic scaling is not offered: with LayerNorm after the activation a unit's absolute rate is
arbitrary, so scaling its weights towards a fixed rate has no well-defined set point.

Activity is captured with forward hooks on each hidden layer (its input) and on its activation
(its rate), in training mode only. The running averages live in the run's stash and are saved
with the run's checkpoint (``bionic_state``), so a resumed run continues them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from bionic_core.api import BionicError, Feature, MaskedHiddenLayer, Param, StashKey, hookimpl

NAME = "hebbian"
EPS = 1e-6


@dataclass
class LayerTrace:
    """One hidden layer's last training activity and running averages."""

    layer: MaskedHiddenLayer
    pre: torch.Tensor | None = None  # (B, in) the layer's input
    post: torch.Tensor | None = None  # (B, n) the layer's rate after the activation
    firing: torch.Tensor | None = None  # (n,) running fraction of samples with y > 0
    theta: torch.Tensor | None = None  # (n,) running mean of ⟨y²⟩ (BCM threshold)


@dataclass
class HebbianState:
    traces: list[LayerTrace] = field(default_factory=list)


STATE: StashKey[HebbianState] = StashKey()


def _input_norm(x: torch.Tensor) -> torch.Tensor:
    """√⟨‖x‖²⟩ over the batch (a scalar tensor)."""
    return (x * x).sum(1).mean().sqrt()


def hebbian_direction(pre: torch.Tensor, drive: torch.Tensor,
                      mask: torch.Tensor | None) -> torch.Tensor:
    """``⟨d_i x⟩ ⊙ M_i / (√⟨d_i²⟩ √⟨‖x‖²⟩)`` per unit i: rows of norm ≤ 1 (0 for silent units)."""
    scale = (drive * drive).mean(0).sqrt() * _input_norm(pre)
    corr = drive.T @ pre  # fresh: scaled in place (two passes over the weight-sized matrix)
    if mask is not None:
        corr.mul_(mask)
    return corr.div_(scale.clamp_min(EPS).mul_(pre.shape[0]).unsqueeze(1))


def oja_step(weight: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
             mask: torch.Tensor | None, rate: float) -> torch.Tensor:
    """The new weight under the normalised Oja rule (row norms unchanged)."""
    norm = weight.norm(dim=1, keepdim=True)
    moved = torch.addcmul(weight, hebbian_direction(pre, post, mask), norm, value=rate)
    return moved.mul_(norm / moved.norm(dim=1, keepdim=True).clamp_min(EPS))


def bcm_step(weight: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, theta: torch.Tensor,
             mask: torch.Tensor | None, rate: float) -> torch.Tensor:
    """The new weight under the normalised BCM rule with sliding threshold ``theta``."""
    norm = weight.norm(dim=1, keepdim=True)
    return weight + rate * norm * hebbian_direction(pre, post * (post - theta), mask)


def _running(old: torch.Tensor | None, new: torch.Tensor, tau: float) -> torch.Tensor:
    """Exponential running mean with time constant ``tau`` steps; starts at the first value."""
    return new.clone() if old is None else old + (new - old) / tau


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The stored feedforward weight (under a parametrization, its unparametrized original)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def update_layer(trace: LayerTrace, p: dict, scale: float = 1.0) -> None:
    """Apply one Hebbian + homeostatic step to ``trace.layer`` from its captured activity, with
    both rates multiplied by ``scale``."""
    if trace.pre is None or trace.post is None:
        return
    layer = trace.layer
    weight = raw_weight(layer)
    x = trace.pre.to(weight.dtype).reshape(trace.pre.shape[0], -1)
    y = trace.post.to(weight.dtype)
    trace.pre = trace.post = None
    rate = p["rate"] * scale
    if p["rule"] == "bcm":
        trace.theta = _running(trace.theta, (y * y).mean(0), p["tau"])
        new = bcm_step(weight, x, y, trace.theta, layer.mask, rate)
    elif p["rule"] == "covariance":
        new = oja_step(weight, x - x.mean(0), y - y.mean(0), layer.mask, rate)
    else:
        new = oja_step(weight, x, y, layer.mask, rate)
    if p["homeostasis"] == "threshold":
        trace.firing = _running(trace.firing, (y > 0).to(y.dtype).mean(0), p["tau"])
        rms_x = _input_norm(x) / x.shape[1] ** 0.5
        layer.bias.add_(p["homeostasis_rate"] * scale * (p["target"] - trace.firing)
                        * weight.norm(dim=1) * rms_x)
    weight.copy_(new)


def _params(ctx) -> dict:
    p = ctx.params(NAME)
    for name in ("rate", "homeostasis_rate"):
        if not 0 <= p[name] < 1:
            raise BionicError(f"params.{NAME}.{name}: {p[name]} is outside [0, 1)")
    if not 0 < p["target"] < 1:
        raise BionicError(f"params.{NAME}.target: {p['target']} is outside (0, 1)")
    if p["tau"] < 1:
        raise BionicError(f"params.{NAME}.tau: {p['tau']} must be at least 1 step")
    return p


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Local Hebbian update (normalised Oja, covariance or BCM) of the hidden layers' "
             "feedforward weights after each optimizer step, restricted to the mask, with an "
             "adaptive threshold holding each unit's firing probability near a target.",
        params=(
            Param("rule", str, "oja", "Hebbian rule: normalised Oja, its covariance form "
                  "(batch means removed), or BCM", choices=("oja", "covariance", "bcm")),
            Param("rate", float, 1e-3, "Hebbian rate η: the most a step turns (Oja) or "
                  "rescales (BCM) a unit's weight vector (≳ 1e-2 pulls all units onto one "
                  "input direction)", low=1e-5, high=3e-3, log=True),
            Param("homeostasis", str, "threshold", "adaptive threshold, or none",
                  choices=("threshold", "none")),
            Param("homeostasis_rate", float, 1e-3, "homeostatic rate η_h per step",
                  low=1e-5, high=1e-2, log=True),
            Param("target", float, 0.3, "target firing probability: fraction of samples on "
                  "which a unit is active", low=0.05, high=0.5),
            Param("tau", float, 100.0, "time constant of the running averages, in steps",
                  low=10.0, high=1000.0, log=True),
            Param("follow_lr", bool, False, "multiply both rates by the learning rate's "
                  "schedule (lr_t / lr), so plasticity slows down with it", choices=(True, False)),
        ),
        touches=("hidden.weight", "hidden.bias"),
    )


@hookimpl
def bionic_model_built(ctx, model: nn.Module) -> None:
    _params(ctx)  # fail on bad parameters before training starts
    state = HebbianState()
    for layer in model.modules():
        if not isinstance(layer, MaskedHiddenLayer):
            continue
        trace = LayerTrace(layer)

        def keep_pre(module, args, trace=trace):
            if module.training:
                trace.pre = args[0].detach()

        def keep_post(module, args, output, trace=trace, layer=layer):
            if layer.training:  # the last call wins (the intra-layer term calls it twice)
                trace.post = output.detach()

        layer.register_forward_pre_hook(keep_pre)
        layer.activation.register_forward_hook(keep_post)
        state.traces.append(trace)
    ctx.stash[STATE] = state


@hookimpl
def bionic_after_step(ctx, lr: float) -> None:
    p = ctx.params(NAME)
    scale = lr / ctx.config.lr if p["follow_lr"] else 1.0
    for trace in ctx.stash[STATE].traces:
        update_layer(trace, p, scale)


@hookimpl
def bionic_state(ctx) -> dict:
    traces = ctx.stash[STATE].traces
    return {"firing": [t.firing for t in traces], "theta": [t.theta for t in traces]}


@hookimpl
def bionic_restore_state(ctx, state: dict) -> None:
    traces = ctx.stash[STATE].traces
    for trace, firing, theta in zip(traces, state["firing"], state["theta"], strict=True):
        trace.firing, trace.theta = firing, theta
