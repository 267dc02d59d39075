"""A run's random generators: seeded from the run seed (and a stream name), on its device."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

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


# While the multi-model engine runs a batched (vmapped) forward pass of several runs, the
# template network's generators stand for one generator per run: id(template generator) → the
# runs' generators of that stream, in the order of the stacked models.
_STACKED: contextvars.ContextVar[dict[int, list[torch.Generator]] | None] = (
    contextvars.ContextVar("bionic_stacked_streams", default=None))


@contextmanager
def stacked_streams(streams: dict[int, list[torch.Generator]]) -> Iterator[None]:
    """Within this block, :func:`normal_like` on a vmapped tensor draws each model's slice from
    its own run's generator (used by the multi-model engine around a batched forward pass)."""
    token = _STACKED.set(streams)
    try:
        yield
    finally:
        _STACKED.reset(token)


def normal_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """ξ ~ N(0, 1) shaped like ``x``, drawn from ``generator`` (a run's stream, see
    ``RunContext.random_stream``). Inside the multi-model engine's batched step, where ``x``
    holds every model's slice, each slice is drawn from its own run's generator — exactly the
    numbers the run draws alone."""
    if not torch._C._functorch.is_batchedtensor(x):
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    runs = (_STACKED.get() or {}).get(id(generator))
    if runs is None:
        raise RuntimeError("normal_like: a vmapped tensor outside the multi-model engine's "
                           "batched step (no per-run generators are known for it)")
    from torch._functorch.pyfunctorch import temporarily_pop_interpreter_stack

    level = torch._C._functorch.maybe_get_level(x)
    with temporarily_pop_interpreter_stack():  # draw plainly, one run after another
        drawn = torch.stack([torch.randn(tuple(x.shape), generator=g, device=g.device,
                                         dtype=x.dtype) for g in runs])
    return torch._C._functorch._add_batch_dim(drawn, 0, level)
