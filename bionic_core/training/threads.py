"""CPU threads of a run: each run computes with its config's ``cpu_threads`` intra-op threads,
alone or beside other runs, so that its numbers do not depend on what trains beside it (torch's
CPU reductions split their work by thread count, and the split changes the float rounding)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def machine_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def runs_at_once(cpu_threads: int, runs: int) -> int:
    """How many runs of ``cpu_threads`` threads each the CPU trains at once (at least one)."""
    return max(1, min(runs, machine_cores() // max(1, cpu_threads)))


@contextmanager
def intra_op_threads(threads: int, device: torch.device) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` while a run computes on the CPU (restored
    afterwards); a no-op on another device."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
