"""conv_frontend: the paper's convolutional front end (retinotopic spatial processing).

Conv(c1) → ReLU → [modules other features insert at stage "after_conv1", e.g. lateral
inhibition] → pool → Conv(c2) → ReLU → [CBAM attention] → pool → flatten.

``blocks > 2`` widens it beyond the paper (for models whose biology is in the hidden layers,
such as the record attempt of RESULTS.md): each further block is pool → Conv(c3, 3×3) → ReLU,
inserted before the attention, which stays after the last convolution. ``blocks = 2`` is the
paper's front end, module for module.

CBAM (Woo et al. 2018, "Convolutional Block Attention Module"): channel attention (a shared
MLP over the average- and max-pooled channel descriptors) followed by spatial attention (a k×k
convolution over the channel-wise mean and max maps); each rescales the features by a sigmoid
gate. With ``attention = false`` the front end is the plain two-layer CNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bionic_core.api import BionicError, Feature, Param, hookimpl

NAME = "conv_frontend"


class ChannelAttention(nn.Module):
    """``x · σ(MLP(avgpool x) + MLP(maxpool x))`` with one gate per channel."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(),
                                 nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The spatial max as a global max pooling: the same values, ~5× faster than amax
        # forward and backward on channels-last maps (the gradient differs only on ties,
        # i.e. all-zero maps after the ReLU, whose gradient the ReLU zeroes anyway).
        peak = F.adaptive_max_pool2d(x, 1).flatten(1)
        gate = self.mlp(x.mean(dim=(2, 3))) + self.mlp(peak)
        return x * torch.sigmoid(gate)[:, :, None, None]


class SpatialAttention(nn.Module):
    """``x · σ(conv([mean_c x, max_c x]))`` with one gate per position."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(channels_last(maps)))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout on the CPU, where oneDNN's pooling and small convolutions
    run 1.5–2.5× faster in it than in NCHW (the same values); unchanged elsewhere."""
    if x.device.type != "cpu":
        return x
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # inside torch.func.vmap (batched multi-model steps): keep NCHW
        return x


class ConvFrontEnd(nn.Sequential):
    """The front end's layers in order, the first convolution's output made channels-last on
    the CPU, so that the rest (lateral inhibition's depthwise sum, pooling, the second
    convolution, CBAM) runs on channels-last kernels; the final flatten restores NCHW order.
    (The first convolution, on one input channel, is fastest in NCHW itself; converting later,
    before the first pooling, measured slower: 35 vs 29 ms per `paper` step.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, module in enumerate(self):
            x = channels_last(module(x)) if index == 0 else module(x)
        return x


def _pool(kind: str, size: int) -> nn.Module:
    if size <= 1:
        return nn.Identity()
    return nn.MaxPool2d(size) if kind == "max" else nn.AvgPool2d(size)


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Two convolutional layers (the paper's Conv(8) → Conv(16)) with CBAM channel + "
             "spatial attention before the hidden layers.",
        params=(
            Param("channels1", int, 8, "channels of the first convolution", low=4, high=32),
            Param("channels2", int, 16, "channels of the second convolution", low=8, high=64),
            Param("blocks", int, 2, "convolution blocks (2 = the paper's; each further one is "
                  "pool → Conv(channels3, 3×3) → ReLU before the attention)", choices=(2, 3, 4)),
            Param("channels3", int, 64, "channels of each convolution after the second "
                  "(blocks > 2)", low=16, high=256),
            Param("kernel1", int, 3, "kernel size of the first convolution", choices=(3, 5, 7)),
            Param("kernel2", int, 3, "kernel size of the second convolution", choices=(3, 5)),
            Param("pool", int, 2, "pooling window and stride after each convolution (1 = none)",
                  choices=(1, 2, 3)),
            Param("pool_type", str, "max", "pooling: max or average", choices=("max", "avg")),
            Param("attention", bool, True, "CBAM channel + spatial attention after Conv(c2)",
                  choices=(True, False)),
            Param("reduction", int, 4, "CBAM channel-MLP reduction ratio (hidden = c2 / r)",
                  choices=(2, 4, 8)),
            Param("spatial_kernel", int, 7, "kernel size of CBAM's spatial-attention "
                  "convolution", choices=(3, 5, 7)),
        ),
        touches=("frontend",),
    )


@hookimpl
def bionic_frontend(ctx, in_channels: int, image_size: int) -> nn.Module:
    p = ctx.params(NAME)
    if image_size // p["pool"] ** p["blocks"] < 1:  # the side after every block's pooling
        raise BionicError(f"params.{NAME}: {p['blocks']} blocks pooled by {p['pool']} leave no "
                          f"pixel of the {image_size}×{image_size} image; use fewer blocks or a "
                          "smaller pool")
    c1, c2 = p["channels1"], p["channels2"]
    after_conv1 = [m for _, m in ctx.host.call("bionic_frontend_stage", ctx=ctx,
                                                  stage="after_conv1", channels=c1)]
    further, last = [], c2
    for _ in range(p["blocks"] - 2):
        further += [_pool(p["pool_type"], p["pool"]),
                     nn.Conv2d(last, p["channels3"], 3, padding=1), nn.ReLU()]
        last = p["channels3"]
    attention = ([ChannelAttention(last, p["reduction"]), SpatialAttention(p["spatial_kernel"])]
                 if p["attention"] else [])
    return ConvFrontEnd(
        nn.Conv2d(in_channels, c1, p["kernel1"], padding=p["kernel1"] // 2),
        nn.ReLU(),
        *after_conv1,
        _pool(p["pool_type"], p["pool"]),
        nn.Conv2d(c1, c2, p["kernel2"], padding=p["kernel2"] // 2),
        nn.ReLU(),
        *further,
        *attention,
        _pool(p["pool_type"], p["pool"]),
        nn.Flatten(),
    )
