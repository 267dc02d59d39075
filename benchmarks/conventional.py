"""What users would otherwise write: the `baseline` architecture trained the usual way — a
Dataset with per-sample torchvision v2 transforms, a DataLoader with two worker processes, one
model, default AdamW — against `bionic run EXPERIMENT` (default `baseline`) for one FER-2013
epoch: `speedup_ratio` = conventional epoch time / bionic epoch time. With `--experiment paper`
bionic trains the full biological model against the conventional plain CNN: what the biology
costs, measured against the way a plain CNN is usually trained (target ≥ 1.5 too).

    python benchmarks/conventional.py [--data DIR] [--device cpu|cuda] [--workers 2]
                                      [--experiment paper] [--set cpu_threads=2]

Both epochs are a training pass over the 28,709 training images plus a validation pass over
PublicTest. The bionic epoch is the one `bionic run baseline --epochs 1 --json` records, run
as its own process (into a temporary MLflow store); its whole process time is reported too.
Target on the 2-core CPU: ≥ 1.5 (PAPER.md measured the conventional script at ~16 s an epoch).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchvision.transforms import v2

from bionic_core.data.dataset import BUILTIN_DATASETS


class FaceImages(TorchDataset):
    """FER-2013 images as a map-style dataset, transformed one image at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: v2.Transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.labels[i])


class Baseline(nn.Module):
    """Conv(8) → pool → Conv(16) → CBAM → pool → dense 266/349/185/360 with LayerNorm → 7."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.mlp = nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 16))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)
        layers, width = [], 16 * 12 * 12
        for size in sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.LayerNorm(size)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.readout = nn.Linear(width, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = x * torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))[..., None, None]
        maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        x = F.max_pool2d(x * torch.sigmoid(self.spatial(maps)), 2)
        return self.readout(self.hidden(x.flatten(1)))


def conventional_epoch(data, config, catalogue, device: torch.device, workers: int) -> dict:
    params = {name: config.feature_params(name, catalogue[name]) for name in config.features}
    a = params["augmentation"]
    normalize = v2.Normalize([0.5], [0.25])
    train_tf = v2.Compose([
        v2.ToImage(), v2.RandomHorizontalFlip(a["flip"]),
        v2.RandomAffine(degrees=a["degrees"], translate=(a["translate"], a["translate"]),
                        scale=(1 - a["scale"], 1 + a["scale"])),
        v2.ColorJitter(brightness=a["brightness"], contrast=a["contrast"]),
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomErasing(p=a["erase"], scale=(0.02, a["erase_max_area"]), value=0.5),
        normalize])
    val_tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), normalize])
    train, val = data.splits["train"], data.splits["val"]
    train_loader = DataLoader(FaceImages(train.images, train.labels, train_tf), batch_size=32,
                              shuffle=True, num_workers=workers)
    val_loader = DataLoader(FaceImages(val.images, val.labels, val_tf), batch_size=256,
                            num_workers=workers)
    torch.manual_seed(0)
    model = Baseline(config.hidden_sizes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=params["weight_decay"]["decay"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=params["lr_scheduler"]["factor"],
        patience=params["lr_scheduler"]["patience"])
    smoothing = params["label_smoothing"]["epsilon"]
    started = time.perf_counter()
    model.train()
    for x, y in train_loader:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = time.perf_counter() - started
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in val_loader:
            correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
    scheduler.step(correct / len(val.labels))
    return {"epoch_seconds": time.perf_counter() - started, "train_seconds": trained,
            "val_accuracy": correct / len(val.labels)}


def bionic_epoch(args, device: torch.device) -> dict:
    data = args.data if args.data in BUILTIN_DATASETS else str(Path(args.data).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "bionic_cli", "run", args.experiment, "--epochs", "1",
             "--data", data, "--device", device.type, "--json",
             *(a for s in args.set for a in ("--set", s)),
             "--experiments", str(harness.REPO / "experiments.toml"),
             "--tracking-uri", f"sqlite:///{tmp}/mlflow.db"],
            cwd=tmp, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"bionic run {args.experiment} failed:\n{out.stderr[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    return {"epoch_seconds": summary["train_seconds"], "process_seconds": wall,
            "val_accuracy": summary["val_accuracy"]}


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--experiment", default="baseline",
                   help="what bionic trains (the conventional side is always the plain CNN)")
    p.add_argument("--set", action="append", default=[],
                   help="a config override for the bionic run, e.g. cpu_threads=2")
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    from bionic_core.training.loop import load_run_data

    config, catalogue = harness.experiment("baseline", args.data, device)
    data = load_run_data(config)
    n = len(data.splits["train"].labels)
    bionic = bionic_epoch(args, device)
    print(f"bionic run {args.experiment}: {bionic['epoch_seconds']:.1f} s an epoch "
          f"({n / bionic['epoch_seconds']:.0f} images/s)")
    conventional = conventional_epoch(data, config, catalogue, device, args.workers)
    print(f"conventional DataLoader script: {conventional['epoch_seconds']:.1f} s an epoch "
          f"({n / conventional['epoch_seconds']:.0f} images/s)")
    ratio = conventional["epoch_seconds"] / bionic["epoch_seconds"]
    harness.emit(harness.gated({
        "benchmark": "conventional", "experiment": args.experiment, "sets": args.set,
        "conventional_model": "baseline (plain CNN)", "train_images": n,
        "val_images": len(data.splits["val"].labels), "workers": args.workers,
        "conventional_epoch_seconds": round(conventional["epoch_seconds"], 3),
        "conventional_train_seconds": round(conventional["train_seconds"], 3),
        "conventional_images_per_s": round(n / conventional["epoch_seconds"], 1),
        "bionic_epoch_seconds": round(bionic["epoch_seconds"], 3),
        "bionic_images_per_s": round(n / bionic["epoch_seconds"], 1),
        "bionic_process_seconds": round(bionic["process_seconds"], 3),
        "speedup_ratio": round(ratio, 3), "target": 1.5, "meets_target": ratio >= 1.5,
        "machine": harness.machine(device)}, ("speedup_ratio", "meets_target"), load))


if __name__ == "__main__":
    main()
