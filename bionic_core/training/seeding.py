"""One place that seeds Python, NumPy and torch, and picks the device."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from bionic_core.contract.errors import BionicError


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed every random generator a run touches; optionally force deterministic kernels."""
    if deterministic:
        # Must be set before the first cuBLAS call for deterministic CUDA matmuls.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BionicError("--device cuda: no CUDA device is available on this machine")
    if name not in ("cpu", "cuda"):
        raise BionicError(f"device '{name}': expected auto, cpu or cuda")
    return torch.device(name)
