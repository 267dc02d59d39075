"""One FER-2013 epoch of the full `paper` model (every feature on) through bionic's training
loop: seconds, training images per second, peak resident memory.

    python benchmarks/epoch.py [--data DIR] [--device cpu|cuda] [--threads N]

``--threads N`` is the run's ``cpu_threads`` (default 1, as in every bionic run).

The epoch time is the one the run records (training pass plus the validation pass over
PublicTest); data loading and model building are reported apart, and so is the process CPU time
of the epoch (on a shared machine, with --threads 1, the epoch time of an idle one). Targets on
the 2-core CPU: ≤ 20 s and ≤ 2 GB peak RSS.
"""

from __future__ import annotations

import time

import harness

TARGET_SECONDS = 20.0
TARGET_RSS_MB = 2048.0


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--experiment", default="paper")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    from bionic_core.training.loop import load_run_data, train_run

    began = time.perf_counter()
    config, catalogue = harness.experiment(args.experiment, args.data, device, epochs=1,
                                           patience=0, precision=args.precision,
                                           compile=args.compile,
                                           cpu_threads=max(1, args.threads))
    data = load_run_data(config)
    loaded = time.perf_counter() - began
    cpu: list[float] = [time.process_time()]
    result = train_run(config, catalogue, data=data,
                       on_epoch=lambda epoch, row: cpu.append(time.process_time()))
    wall = time.perf_counter() - began
    row = result.history[0]
    n_train = len(data.splits["train"].labels)
    seconds = row["epoch_time"]
    rss = harness.peak_rss_mb()
    print(f"{args.experiment}: one epoch of {n_train} images in {seconds:.1f} s "
          f"({n_train / seconds:.0f} images/s, validation included), peak RSS {rss:.0f} MB")
    harness.emit(harness.gated({
        "benchmark": "epoch", "experiment": args.experiment, "features": list(config.features),
        "dataset": data.name, "train_images": n_train,
        "val_images": len(data.splits["val"].labels), "batch_size": config.batch_size,
        "epoch_seconds": round(seconds, 3), "images_per_s": round(n_train / seconds, 1),
        "peak_rss_mb": rss, "load_seconds": round(loaded, 3), "wall_seconds": round(wall, 3),
        # Process CPU time from model building to the end of the epoch: with --threads 1 this
        # is what the epoch takes on an idle machine, whatever else runs now.
        "epoch_cpu_seconds": round(cpu[-1] - cpu[0], 3),
        "train_loss": round(row["train_loss"], 4), "val_accuracy": round(row["val_accuracy"], 4),
        "precision": args.precision, "compile": args.compile,
        "targets": {"epoch_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
        "meets_targets": seconds <= TARGET_SECONDS and rss <= TARGET_RSS_MB,
        "machine": harness.machine(device)}, ("meets_targets",), load))


if __name__ == "__main__":
    main()
