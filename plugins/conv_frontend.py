"""conv_frontend: the paper's convolutional front end (retinotopic spatial processing).

Conv(c1) → ReLU → [modules other features insert at stage "after_conv1", e.g. lateral
inhibition] → pool → Conv(c2) → ReLU → pool → flatten.
"""

from __future__ import annotations

from torch import nn

from bionic_core.features import Feature, Param
from bionic_core.hookspecs import hookimpl

NAME = "conv_frontend"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Two convolutional layers (the paper's Conv(8) → Conv(16)) before the hidden layers.",
        params=(
            Param("channels1", int, 8, "channels of the first convolution", low=4, high=32),
            Param("channels2", int, 16, "channels of the second convolution", low=8, high=64),
            Param("kernel_size", int, 3, "kernel size of both convolutions", choices=(3, 5)),
            Param("pool", int, 2, "max-pool size after each convolution (1 = none)",
                  choices=(1, 2)),
        ),
    )


@hookimpl
def bionic_frontend(ctx, in_channels: int) -> nn.Module:
    p = ctx.params(NAME)
    k, pad = p["kernel_size"], p["kernel_size"] // 2
    pool = nn.MaxPool2d(p["pool"]) if p["pool"] > 1 else nn.Identity()
    after_conv1 = [m for _, m in ctx.host.ordered("bionic_frontend_stage", ctx=ctx,
                                                  stage="after_conv1", channels=p["channels1"])]
    return nn.Sequential(
        nn.Conv2d(in_channels, p["channels1"], k, padding=pad),
        nn.ReLU(),
        *after_conv1,
        pool,
        nn.Conv2d(p["channels1"], p["channels2"], k, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(p["pool"]) if p["pool"] > 1 else nn.Identity(),
        nn.Flatten(),
    )
