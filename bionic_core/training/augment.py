"""Per-image random augmentation of a batch on its device: flip, affine, photometric, erasing.

Every image draws its own parameters from the given generator (torchvision's v2 transforms
draw *one* set per call, so a whole batch would share one flip and one rotation). Geometry is one
batch of 2×3 affine matrices through ``affine_grid``/``grid_sample``; jitter and erasing are
broadcast arithmetic. No per-image Python work, so it runs on the GPU as fast as the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Aspect ratios of an erased rectangle, log-uniform (torchvision RandomErasing's default range).
ERASE_RATIO = (0.3, 3.3)
# Erased pixels are mid-grey: the model centres inputs at 0.5, so they carry no signal.
ERASE_VALUE = 0.5


def _uniform(n: int, low: float, high: float, generator: torch.Generator,
             device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def random_affine_matrices(n: int, generator: torch.Generator, device: torch.device, *,
                           flip: float = 0.0, degrees: float = 0.0, translate: float = 0.0,
                           scale: float = 0.0) -> torch.Tensor:
    """``(n, 2, 3)`` matrices for ``affine_grid``: per image a horizontal flip with probability
    ``flip``, a rotation in ±``degrees``, a shift in ±``translate`` of the image size on each
    axis and a zoom factor in ``[1 - scale, 1 + scale]``.

    The matrices map output coordinates to input coordinates (normalised to [-1, 1]), so a zoom
    ``s`` divides them by ``s``. Five uniform numbers per image are always drawn, so the random
    stream does not depend on which operations are on.
    """
    u = torch.rand(n, 5, generator=generator, device=device)
    sign = torch.where(u[:, 0] < flip, -1.0, 1.0)
    angle = (2 * u[:, 1] - 1) * math.radians(degrees)
    zoom = 1 + (2 * u[:, 2] - 1) * scale
    shift = (2 * u[:, 3:5] - 1) * (2 * translate)  # normalised coordinates span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * sign, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * sign, cos, shift[:, 1]], dim=1)], dim=1)
    return theta


def apply_affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` ``(B, C, H, W)`` through per-image matrices ``theta`` ``(B, 2, 3)``.

    Pixels that come from outside the image repeat the border (faces fill FER-2013's frames, so
    black corners would be a cue no test image has).
    """
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def jitter_brightness_contrast(x: torch.Tensor, generator: torch.Generator, *,
                               brightness: float = 0.0, contrast: float = 0.0) -> torch.Tensor:
    """Per image: multiply by a brightness factor in ``1 ± brightness``, then stretch around the
    image mean by a contrast factor in ``1 ± contrast``; clamp to [0, 1] (torchvision's
    ColorJitter semantics, one factor pair per image)."""
    b = x.shape[0]
    bright = _uniform(b, 1 - brightness, 1 + brightness, generator, x.device).view(b, 1, 1, 1)
    contr = _uniform(b, 1 - contrast, 1 + contrast, generator, x.device).view(b, 1, 1, 1)
    x = x * bright
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contr + mean).clamp(0.0, 1.0)


def random_erasing(x: torch.Tensor, generator: torch.Generator, *, p: float,
                   area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """With probability ``p`` per image, set one rectangle covering a fraction of the image in
    ``area`` (aspect ratio log-uniform in :data:`ERASE_RATIO`) to :data:`ERASE_VALUE`."""
    b, _, h, w = x.shape
    u = torch.rand(b, 5, generator=generator, device=x.device)
    frac = area[0] + (area[1] - area[0]) * u[:, 0]
    log_lo, log_hi = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    ratio = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])
    eh = torch.sqrt(frac * h * w * ratio).round().clamp(1, h)
    ew = torch.sqrt(frac * h * w / ratio).round().clamp(1, w)
    top = ((h - eh + 1) * u[:, 2]).floor()
    left = ((w - ew + 1) * u[:, 3]).floor()
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
              & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))
              & (u[:, 4] < p).view(b, 1, 1))
    return torch.where(inside.unsqueeze(1), torch.full_like(x, ERASE_VALUE), x)


@dataclass(frozen=True)
class BatchAugmenter:
    """The training-batch augmentation: geometry, then photometric jitter, then erasing.

    Call as ``augment(x, generator)`` with ``x`` ``(B, C, H, W)`` in [0, 1]; the result has
    the same shape, dtype and device. A strength of 0 switches that operation off.
    """

    flip: float = 0.5  # probability of a horizontal flip
    degrees: float = 0.0  # maximum rotation, ±degrees
    translate: float = 0.0  # maximum shift, ± fraction of the image size
    scale: float = 0.0  # maximum zoom, factor in [1 - scale, 1 + scale]
    brightness: float = 0.0  # brightness factor in 1 ± brightness
    contrast: float = 0.0  # contrast factor in 1 ± contrast
    erase: float = 0.0  # probability of erasing one rectangle
    erase_area: tuple[float, float] = (0.02, 0.2)  # erased fraction of the image

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.flip > 0 or self.degrees > 0 or self.translate > 0 or self.scale > 0:
            theta = random_affine_matrices(x.shape[0], generator, x.device, flip=self.flip,
                                           degrees=self.degrees, translate=self.translate,
                                           scale=self.scale)
            x = apply_affine(x, theta)
        if self.brightness > 0 or self.contrast > 0:
            x = jitter_brightness_contrast(x, generator, brightness=self.brightness,
                                           contrast=self.contrast)
        if self.erase > 0:
            x = random_erasing(x, generator, p=self.erase, area=self.erase_area)
        return x
