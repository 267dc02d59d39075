"""The multi-model engine: S = 1, 2, …, `--seeds` seeds of one configuration trained together
versus one after another, each way from model building to final evaluation: `speedup_ratio` =
sequential time / together time for every S (`per_group_size`), `min_speedup_ratio` the worst.

    python benchmarks/multimodel.py [--data DIR] [--experiment paper] [--limit N] [--epochs E]
                                    [--seeds 4] [--device cpu|cuda] [--mode auto|batched|per-model]

Together means `bionic_core.multimodel.train_many`: on a GPU one vmapped step for all models
(`batched`), on the CPU each model's own step spread over worker threads (`per-model`); both
give the one-by-one results (see the module; on the CPU exactly, each run computing with its
config's `cpu_threads`). Targets: never slower than sequential at any S on the 2-core CPU;
≥ 10× on a GPU at 14+ models. Epochs run on a seeded subset of `--limit` training images
(validation: a quarter as many) unless `--limit 0`.

On the CPU it also reports `parallel_ceiling`: one model's step time on one intra-op thread
divided by the number of threads, against its time on all of them — the most that training
models side by side (one thread each) can gain over one after another (all threads each).
"""

from __future__ import annotations

import time

import harness


def step_ceiling(config, catalogue, data, steps: int = 24) -> dict[str, float]:
    """One model's seconds per training step on all T torch threads and on one. One after
    another a model-step costs step(all); side by side, T models on a thread each cost at best
    step(one) / T per model-step, so per-model parallelism gains at most T·step(all)/step(one)."""
    import contextlib

    import torch

    from bionic_core.training.loop import RunState, device_splits

    train, _ = device_splits(data, torch.device("cpu"))
    state = RunState(config, catalogue, data)
    state.model.train()
    batches = list(train.shuffled(config.batch_size, state.generator))[:steps + 4]
    threads = torch.get_num_threads()
    seconds = {}
    for n in (threads, 1, threads):
        torch.set_num_threads(n)
        for x, y in batches[:4]:  # warm-up at this thread count
            state.train_step(x, y, state.model, contextlib.nullcontext())
        started = time.perf_counter()
        for x, y in batches[4:]:
            state.train_step(x, y, state.model, contextlib.nullcontext())
        seconds[n] = (time.perf_counter() - started) / len(batches[4:])  # the last `threads` counts
    torch.set_num_threads(threads)
    return {"step_seconds_all_threads": round(seconds[threads], 5),
            "step_seconds_one_thread": round(seconds[1], 5),
            "parallel_ceiling": round(threads * seconds[threads] / seconds[1], 3)}


def measure(configs, catalogue, data, batched: bool) -> dict[str, float]:
    """Seconds for ``configs`` one after another and together (build to final evaluation),
    and the largest relative gap between their final training losses."""
    from bionic_core.training.loop import train_run
    from bionic_core.training.multimodel import train_many

    started = time.perf_counter()
    alone = [train_run(c, catalogue, data=data) for c in configs]
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    together = train_many(configs, catalogue, data=data, batched=batched)
    together_s = time.perf_counter() - started
    gap = max(abs(a.history[-1]["train_loss"] - b.history[-1]["train_loss"])
              / abs(a.history[-1]["train_loss"]) for a, b in zip(alone, together, strict=True))
    return {"sequential_seconds": round(sequential, 3), "together_seconds": round(together_s, 3),
            "speedup_ratio": round(sequential / together_s, 3),
            "max_relative_train_loss_gap": float(f"{gap:.3g}")}


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--experiment", default="paper")
    p.add_argument("--seeds", type=int, default=4, help="the largest group size S tried")
    p.add_argument("--sizes", default="",
                   help="comma-separated group sizes to try (default 2, …, --seeds: a group "
                   "of one is trained alone, the same code path both ways)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=2048,
                   help="training images per epoch (a seeded subset; 0 = all)")
    p.add_argument("--mode", default="auto", choices=("auto", "batched", "per-model"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    from bionic_core.training.loop import load_run_data, train_run
    from bionic_core.training.multimodel import default_batched

    config, catalogue = harness.experiment(args.experiment, args.data, device,
                                           epochs=args.epochs, patience=0,
                                           precision=args.precision)
    limit = args.limit or None
    data = harness.subset(load_run_data(config), limit, None if limit is None
                          else max(256, limit // 4))
    batched = default_batched(device) if args.mode == "auto" else args.mode == "batched"
    train_run(config.replace(epochs=1), catalogue, data=data)  # warm-up
    sizes = ([int(s) for s in args.sizes.split(",") if s.strip()] if args.sizes
             else list(range(2, max(2, args.seeds) + 1)))
    per_size = {}
    for size in sizes:
        configs = [config.replace(seed=s) for s in range(size)]
        per_size[size] = measure(configs, catalogue, data, batched)
        print(f"S = {size} seeds of {args.experiment}: one after another "
              f"{per_size[size]['sequential_seconds']:.1f} s, together "
              f"({'batched' if batched else 'per-model'}) "
              f"{per_size[size]['together_seconds']:.1f} s")
    ceiling = step_ceiling(config, catalogue, data) if device.type == "cpu" else {}
    worst = min(r["speedup_ratio"] for r in per_size.values())
    largest = per_size[max(sizes)]
    harness.emit(harness.gated({
        "benchmark": "multimodel", "experiment": args.experiment, "seeds": max(sizes),
        "epochs": args.epochs, "train_images": len(data.splits["train"].labels),
        "val_images": len(data.splits["val"].labels), "limit": limit,
        "subset": limit is not None, "mode": "batched" if batched else "per-model",
        "precision": args.precision, "cpu_threads_per_run": config.cpu_threads,
        "per_group_size": {str(k): v for k, v in per_size.items()},
        **largest, "min_speedup_ratio": worst, **ceiling,
        "target": 10.0 if device.type == "cuda" else 1.0,
        "meets_target": (largest["speedup_ratio"] >= 10.0 if device.type == "cuda"
                         else worst >= 1.0),
        "machine": harness.machine(device)},
        ("speedup_ratio", "min_speedup_ratio", "meets_target"), load))


if __name__ == "__main__":
    main()
