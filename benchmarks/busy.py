"""A busy machine: one `paper` training step on an idle CPU and beside a competing process that
keeps one core busy, with torch's default intra-op threads (all cores: the old default) and with
bionic's default `cpu_threads = 1`: `busy_slowdown` = step time beside the competitor / step
time idle, for each.

    python benchmarks/busy.py [--data DIR] [--steps 40]

On a 2-core machine torch's two OpenMP threads spin-wait for each other while the other core
is taken, so a step can take many times longer; one intra-op thread per run degrades to
roughly what the competitor takes away. Run it on an otherwise quiet machine (it makes its own
load).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import harness

BURN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def step_seconds(state, batches, threads: int) -> float:
    """Median seconds of a training step over ``batches`` with ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    for x, y in batches[:3]:  # warm-up at this thread count
        state.train_step(x, y, state.model, contextlib.nullcontext())
    times = []
    for x, y in batches[3:]:
        started = time.perf_counter()
        state.train_step(x, y, state.model, contextlib.nullcontext())
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    import torch

    from bionic_core.training.loop import RunState, device_splits, load_run_data

    cores = os.cpu_count() or 1
    config, catalogue = harness.experiment("paper", args.data, device)
    data = harness.subset(load_run_data(config), 4096, 256)
    state = RunState(config, catalogue, data)
    state.model.train()
    train, _ = device_splits(data, state.device)
    batches = list(train.shuffled(config.batch_size, state.generator))[:args.steps + 3]
    figures = {}
    for label, threads in (("all_threads", cores), ("cpu_threads_1", 1)):
        idle = step_seconds(state, batches, threads)
        competitor = subprocess.Popen([sys.executable, "-c", BURN])
        try:
            time.sleep(0.5)
            busy = step_seconds(state, batches, threads)
        finally:
            competitor.kill()
            competitor.wait()
        figures[label] = {"threads": threads, "idle_step_s": round(idle, 5),
                          "busy_step_s": round(busy, 5),
                          "busy_slowdown": round(busy / idle, 2)}
        print(f"{threads} intra-op thread(s): {1000 * idle:.1f} ms a step idle, "
              f"{1000 * busy:.1f} ms beside a process burning one core "
              f"({busy / idle:.1f}×)")
    torch.set_num_threads(cores)
    harness.emit(harness.gated({
        "benchmark": "busy", "experiment": "paper", "cores": cores, **figures,
        "machine": harness.machine(device)}, (), load))


if __name__ == "__main__":
    main()
