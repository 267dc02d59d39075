"""Device-resident splits: one uint8 tensor per split, batches drawn on the device."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class DeviceSplit:
    """A split kept on the training device as uint8 ``(N, 48, 48)`` plus int64 labels.

    Batches are index gathers on the device: no DataLoader, no per-image Python work.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device) -> None:
        self.images = torch.as_tensor(images, dtype=torch.uint8).to(device)
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(device)
        self.device = device

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @staticmethod
    def to_float(images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 48, 48)`` → float ``(B, 1, 48, 48)`` in [0, 1]."""
        return images.unsqueeze(1).float().div_(255.0)

    def shuffled(self, batch_size: int,
                 generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Training batches in a fresh seeded order; the last partial batch is kept."""
        order = torch.randperm(len(self), generator=generator, device=self.device)
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.to_float(self.images[idx]), self.labels[idx]

    def in_order(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield (self.to_float(self.images[start:start + batch_size]),
                   self.labels[start:start + batch_size])
