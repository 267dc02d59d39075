"""What the benchmarks share: the FER-2013 folder option, the machine record, subsets of the
data, and the closing JSON line (every benchmark prints one JSON object as its last line)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bionic_core.data.dataset import BUILTIN_DATASETS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013"  # ../shared/data/fer2013


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="FER-2013 folder, .npz or .csv (default: ../shared/data/fer2013 "
                        "relative to the repository root); a built-in demonstration set's "
                        "name (demo-small) for smoke runs")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--force", action="store_true",
                   help="report ratios even when other processes kept the CPU busy")
    return p


# Busier than this (the share of all cores other processes used in the second before the
# benchmark started, or its 1-minute load average per core) and a ratio is not reported.
BUSY_SHARE = 0.25


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(seconds: float = 1.0) -> float:
    """The share of all cores busy over ``seconds`` while this process sleeps: what other
    processes use (0 where /proc/stat cannot be read)."""
    try:
        busy0, total0 = _cpu_ticks()
        time.sleep(seconds)
        busy1, total1 = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy1 - busy0) / max(1, total1 - total0)


def quiet_enough(args: argparse.Namespace) -> dict[str, Any]:
    """How busy the machine was before the benchmark, and whether its ratios may be reported
    (``--force`` reports them anyway, marked as taken under load)."""
    share = busy_share()
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    busy = share > BUSY_SHARE or load > 1.0
    return {"busy_share_before": round(share, 3), "load_per_core_before": round(load, 2),
            "quiet": not busy, "forced": bool(busy and args.force),
            "report": not busy or args.force}


def gated(record: dict[str, Any], ratio_keys: tuple[str, ...],
          load: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its ratios withheld (None, with the reason) when the machine was busy
    and the run was not forced."""
    record = {**record, "load": load}
    if not load["report"]:
        for key in ratio_keys:
            record[key] = None
        record["withheld"] = ("other processes kept the CPU busy (busy share "
                              f"{load['busy_share_before']}, load/core "
                              f"{load['load_per_core_before']}); rerun on a quiet machine or "
                              "pass --force")
    return record


def setup(args: argparse.Namespace) -> Any:
    """Apply --threads; return the torch device --device names."""
    import torch

    from bionic_core.training.seeding import resolve_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not Path(args.data).exists() and args.data not in BUILTIN_DATASETS:
        sys.exit(f"{args.data}: FER-2013 data not found (pass --data DIR)")
    return resolve_device(args.device)


def machine(device: Any) -> dict[str, Any]:
    """Where the figures were measured: CPU, cores, load, threads, GPU, versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    record = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "device": str(device), "torch": torch.__version__,
              "python": platform.python_version()}
    if getattr(device, "type", str(device)) == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


def experiment(name: str, data: str, device: Any, **changes: Any) -> tuple[Any, Any]:
    """The named experiment of the repository's experiments.toml on ``data``, validated."""
    from bionic_core.config import resolve_features
    from bionic_core.experiments import ExperimentFile
    from bionic_core.host import load_catalogue

    catalogue = load_catalogue(third_party=False)
    config = ExperimentFile.load(REPO / "experiments.toml").config(name)
    dataset = data if data in BUILTIN_DATASETS else str(Path(data).resolve())
    config = config.replace(dataset=dataset, device=device.type, **changes)
    return resolve_features(config, catalogue, f"experiments.{name}"), catalogue


def subset(dataset: Any, train: int | None, val: int | None, seed: int = 0) -> Any:
    """``dataset`` with seeded random subsets of its training and validation splits (None:
    the whole split); the test split is dropped (benchmarks time training)."""
    from dataclasses import replace

    from bionic_core.data.dataset import Split

    rng = np.random.default_rng(seed)
    splits = {}
    for name, limit in (("train", train), ("val", val)):
        split = dataset.splits[name]
        if limit is not None and limit < len(split):
            keep = np.sort(rng.choice(len(split), limit, replace=False))
            split = Split(split.images[keep], split.labels[keep],
                          f"{split.origin} (benchmark subset of {limit})")
        splits[name] = split
    return replace(dataset, splits=splits, _fingerprint=None)


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(record: dict[str, Any]) -> None:
    """Print the benchmark's figures as one JSON object: the last line of its output."""
    sys.stdout.flush()
    print(json.dumps(record), flush=True)
