"""lr_scheduler: lower the learning rate during training — on a validation plateau (default) or
along a cosine curve.

The core steps the scheduler once per epoch; a ``ReduceLROnPlateau`` receives the monitored
validation metric (macro-F1 or accuracy: higher is better, hence ``mode="max"``).
"""

from __future__ import annotations

import torch

from bionic_core.api import Feature, Param, hookimpl

NAME = "lr_scheduler"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Learning-rate schedule: 'plateau' multiplies the rate by `factor` after `patience` "
             "epochs without a better validation metric; 'cosine' anneals it to `min_lr` over "
             "the run's maximum epochs.",
        params=(
            Param("kind", str, "plateau", "schedule", choices=("plateau", "cosine")),
            Param("factor", float, 0.5, "plateau: multiply the rate by this", low=0.1, high=0.7),
            Param("patience", int, 5, "plateau: epochs without improvement before a cut",
                  low=2, high=10),
            Param("min_lr", float, 1e-6, "lowest rate (both kinds)", low=1e-7, high=1e-4,
                  log=True),
        ),
        touches=("scheduler",),
    )


@hookimpl
def bionic_scheduler(ctx, optimizer: torch.optim.Optimizer):
    p = ctx.params(NAME)
    if p["kind"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, ctx.config.epochs), eta_min=p["min_lr"])
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=p["factor"], patience=p["patience"], min_lr=p["min_lr"])
