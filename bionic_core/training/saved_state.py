"""Reading back what bionic wrote with ``torch.save`` (epoch checkpoints, a run's logged model):
a damaged file is one line that names it, not a traceback."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bionic_core.contract.errors import BionicError

# What torch.load raises for a truncated or overwritten file.
DAMAGED = (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError,
           zipfile.BadZipFile)


def load_saved(path: Path, map_location: Any, what: str, remedy: str = "",
               shown: str | None = None) -> Any:
    """``torch.load(path)`` of tensors only; the error names the file as ``shown`` (default:
    its path) and ``what`` it is (``epoch checkpoint``), ``remedy`` says what to do."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except DAMAGED as exc:
        tail = f"; {remedy}" if remedy else ""
        raise BionicError(f"{shown or path}: damaged {what}: torch.load cannot read it "
                          f"({type(exc).__name__}){tail}") from None


CHECKPOINT_REMEDY = "delete it to train this run again from its first epoch"


def load_checkpoint(path: Path, map_location: Any) -> dict[str, Any]:
    """An epoch checkpoint of a run (see :class:`~bionic_core.training.loop.RunState`)."""
    return load_saved(path, map_location, "epoch checkpoint", CHECKPOINT_REMEDY)
