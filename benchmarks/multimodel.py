"""The multi-model engine: S = 4 seeds of one configuration trained together versus one after
another, each way from model building to final evaluation: `speedup_ratio` = sequential time /
together time.

    python benchmarks/multimodel.py [--data DIR] [--experiment paper] [--limit N] [--epochs E]
                                    [--seeds 4] [--device cpu|cuda] [--mode auto|batched|per-model]

Together means `bionic_core.multimodel.train_many`: on a GPU one vmapped step for all models
(`batched`), on the CPU each model's own step spread over worker threads (`per-model`); both
give the one-by-one results (see the module). Targets: never slower than sequential on the
2-core CPU; ≥ 10× on a GPU. Epochs run on a seeded subset of `--limit` training images
(validation: a quarter as many) unless `--limit 0`.
"""

from __future__ import annotations

import time

import harness


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--experiment", default="paper")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=2048,
                   help="training images per epoch (a seeded subset; 0 = all)")
    p.add_argument("--mode", default="auto", choices=("auto", "batched", "per-model"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = p.parse_args()
    device = harness.setup(args)

    from bionic_core.multimodel import default_batched, train_many
    from bionic_core.training import load_run_data, train_run

    config, catalogue = harness.experiment(args.experiment, args.data, device,
                                           epochs=args.epochs, patience=0,
                                           precision=args.precision)
    limit = args.limit or None
    data = harness.subset(load_run_data(config), limit, None if limit is None
                          else max(256, limit // 4))
    configs = [config.replace(seed=s) for s in range(args.seeds)]
    batched = default_batched(device) if args.mode == "auto" else args.mode == "batched"
    train_run(configs[0].replace(epochs=1), catalogue, data=data)  # warm-up

    started = time.perf_counter()
    alone = [train_run(c, catalogue, data=data) for c in configs]
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    together = train_many(configs, catalogue, data=data, batched=batched)
    together_s = time.perf_counter() - started

    gap = max(abs(a.history[-1]["train_loss"] - b.history[-1]["train_loss"])
              / abs(a.history[-1]["train_loss"]) for a, b in zip(alone, together, strict=True))
    print(f"{args.seeds} seeds of {args.experiment}: one after another {sequential:.1f} s, "
          f"together ({'batched' if batched else 'per-model'}) {together_s:.1f} s")
    harness.emit({
        "benchmark": "multimodel", "experiment": args.experiment, "seeds": args.seeds,
        "epochs": args.epochs, "train_images": len(data.splits["train"].labels),
        "val_images": len(data.splits["val"].labels), "limit": limit,
        "subset": limit is not None, "mode": "batched" if batched else "per-model",
        "precision": args.precision,
        "sequential_seconds": round(sequential, 3), "together_seconds": round(together_s, 3),
        "speedup_ratio": round(sequential / together_s, 3),
        "max_relative_train_loss_gap": float(f"{gap:.3g}"),
        "target": 10.0 if device.type == "cuda" else 1.0,
        "machine": harness.machine(device)})


if __name__ == "__main__":
    main()
