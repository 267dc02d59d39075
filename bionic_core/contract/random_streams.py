"""A run's random generators: seeded from the run seed (and a stream name), on its device."""

from __future__ import annotations

import hashlib

import torch


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for shuffling and augmentation draws of one run."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def derived_seed(seed: int, name: str) -> int:
    """A seed for the stream ``name`` of the run seeded ``seed``: fixed by the two, and
    unrelated to the seeds of other names (a hash, not ``seed + offset``)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
