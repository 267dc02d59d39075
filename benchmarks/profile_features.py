"""What each feature of `paper` costs in a training step: the step's CPU time with every feature
on, and with each feature (and what requires it) taken out — the difference is that feature's
cost. Also the plain `baseline` step for scale.

    python benchmarks/profile_features.py [--data DIR] [--steps 60]

Times are the thread CPU time of one intra-op thread (bionic's default `cpu_threads = 1`), the
median of `--steps` steps after a warm-up: CPU time, so that other processes distort the figures
less than wall time would (they still share caches and memory bandwidth).
"""

from __future__ import annotations

import contextlib
import time

import harness


def step_cpu_ms(config, catalogue, data, steps: int) -> float:
    """Median thread CPU milliseconds of a training step of ``config`` (batch augmentation,
    forward, backward, optimizer, after-step hooks)."""
    import torch

    from bionic_core.training.loop import RunState, device_splits

    torch.set_num_threads(1)
    state = RunState(config, catalogue, data)
    state.model.train()
    train, _ = device_splits(data, state.device)
    batches = list(train.shuffled(config.batch_size, state.generator))[:steps + 5]
    times = []
    for i, (x, y) in enumerate(batches):
        started = time.thread_time()
        state.train_step(x, y, state.model, contextlib.nullcontext())
        if i >= 5:
            times.append(time.thread_time() - started)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    from bionic_core.studies.designs import plan_design
    from bionic_core.training.loop import load_run_data

    config, catalogue = harness.experiment("paper", args.data, device)
    data = harness.subset(load_run_data(config), 4096, 256)
    # The first model built in a process pays one-off costs (allocator, kernels): take the
    # faster of two measurements of the full model.
    full = min(step_cpu_ms(config, catalogue, data, args.steps) for _ in range(2))
    rows = {"paper (all 13)": round(full, 2)}
    design = plan_design("leave-one-out", catalogue=catalogue.features(),
                         reference=config.features)
    costs = {}
    for configuration in design.configurations:
        if not configuration.removed:
            continue
        reduced = config.with_features(configuration.features)
        ms = step_cpu_ms(reduced, catalogue, data, args.steps)
        name = "−" + "−".join(configuration.removed)
        rows[name] = round(ms, 2)
        costs[name] = round(full - ms, 2)
        print(f"{name:40s} {ms:7.2f} ms  (cost {full - ms:+.2f} ms)")
    baseline, _ = harness.experiment("baseline", args.data, device)
    rows["baseline (plain CNN)"] = round(step_cpu_ms(baseline, catalogue, data, args.steps), 2)
    print(f"{'paper':40s} {full:7.2f} ms; baseline {rows['baseline (plain CNN)']:.2f} ms")
    harness.emit(harness.gated({
        "benchmark": "profile_features", "step_cpu_ms": rows, "feature_cost_ms": costs,
        "machine": harness.machine(device)}, (), load))


if __name__ == "__main__":
    main()
