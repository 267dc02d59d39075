"""Progress inside an epoch: a run's optional ``on_batch`` callback, called at most twice a
second, so that a display can move while a long epoch trains."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

BatchCallback = Callable[[int, int, int], None]
"""``on_batch(epoch, batches_done, batches_per_epoch)``; ``epoch`` is the one in training
(1-based)."""

INTERVAL = 0.5  # seconds between two reports of one loop


class BatchTicker:
    """Tells the runs of one training loop how far the epoch is.

    Called after every batch, it reads the clock and nothing else (no host sync: the losses stay
    on the device); at most every :data:`INTERVAL` seconds it calls each run's ``on_batch``.
    ``states`` are :class:`~bionic_core.training.loop.RunState`\\ s (their ``epoch`` counts the
    finished epochs).
    """

    def __init__(self, states: Sequence[Any], n_examples: int, batch_size: int,
                 interval: float = INTERVAL) -> None:
        self.states = [s for s in states if s.on_batch is not None]
        self.batches = max(1, math.ceil(n_examples / batch_size))
        self.interval = interval
        self.due = time.perf_counter() + interval

    def __call__(self, done: int) -> None:
        if not self.states:
            return
        now = time.perf_counter()
        if now < self.due:
            return
        self.due = now + self.interval
        for state in self.states:
            state.on_batch(state.epoch + 1, done, self.batches)
