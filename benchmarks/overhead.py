"""The plugin core's overhead: the full `paper` model (every feature on) trained through
bionic's core and plugins, against the same network and training written by hand in plain
torch, in the same process, on the same data: `overhead_ratio` = bionic time per epoch /
plain-torch time per epoch.

    python benchmarks/overhead.py [--data DIR] [--limit N] [--rounds R] [--device cpu|cuda]

The hand-written version is what a careful author would write without bionic: one nn.Module
with the connectome masks, intra-layer term, graded-inhibition gains (taken from a bionic build
of the same config, so both train the same network), LayerNorm, activity noise, the conv front
end with lateral inhibition and CBAM, per-image augmentation on the device, label smoothing,
AdamW with a plateau scheduler, and the Oja + adaptive-threshold Hebbian step after every
optimizer step, with activity returned by the forward pass instead of captured by hooks. It uses
the same kernels and memory layout as bionic (a depthwise convolution for the surround sum,
channels-last maps on the CPU, fused AdamW), so the ratio measures what the core itself adds:
hook dispatch, generic modules, per-epoch bookkeeping (full metrics, best-state copies).
Epochs run on a seeded subset of `--limit` training images (validation: a quarter as many),
alternating bionic and plain, and the medians are compared.
"""

from __future__ import annotations

import math
import statistics
import time

import harness
import torch
import torch.nn.functional as F
from torch import nn


class PlainNet(nn.Module):
    """The `paper` network in plain torch."""

    def __init__(self, bionic: nn.Module, p: dict) -> None:
        super().__init__()
        c1, c2 = p["conv_frontend"]["channels1"], p["conv_frontend"]["channels2"]
        k = p["lateral_inhibition"]["size"]
        self.beta, self.sigma = p["lateral_inhibition"]["strength"], p["synaptic_noise"]["sigma"]
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        hidden = c2 // p["conv_frontend"]["reduction"]
        self.mlp = nn.Sequential(nn.Linear(c2, hidden), nn.ReLU(), nn.Linear(hidden, c2))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)
        self.register_buffer("box", torch.ones(c1, 1, k, k))
        ones = torch.ones(1, 1, 48, 48)
        self.register_buffer("neighbours", F.conv2d(ones, torch.ones(1, 1, k, k),
                                                    padding=k // 2) - 1)
        self.weights, self.biases, self.intra = nn.ParameterList(), nn.ParameterList(), \
            nn.ParameterList()
        self.norms = nn.ModuleList()
        self.masks, self.intra_masks, self.gains = [], [], []
        for i, layer in enumerate(bionic.hidden):
            n, m = layer.mask.shape if layer.mask is not None else tuple(layer.weight.shape)
            w = torch.empty(n, m)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            if layer.mask is not None:
                w *= layer.mask / math.sqrt(float(layer.mask.mean()))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n)))
            self.intra.append(nn.Parameter(torch.randn(n, n) * 0.01 * layer.intra_mask))
            self.register_buffer(f"mask{i}", None if layer.mask is None else layer.mask.clone())
            self.register_buffer(f"intra_mask{i}", layer.intra_mask.clone())
            gain = next(m.gain for m in layer.post if hasattr(m, "gain"))
            self.register_buffer(f"gain{i}", gain.clone())
            self.norms.append(nn.LayerNorm(n))
        self.readout = nn.Linear(bionic.readout.in_features, 7)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        x = F.relu(self.conv1((x - 0.5) / 0.25))
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        surround = (F.conv2d(x, self.box, padding=self.box.shape[-1] // 2,
                             groups=x.shape[1]) - x) / self.neighbours
        x = F.max_pool2d(x / (1 + self.beta * surround.clamp_min(0)), 2)
        x = F.relu(self.conv2(x))
        gate = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        if maps.device.type == "cpu":
            maps = maps.contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(x * torch.sigmoid(self.spatial(maps)), 2).flatten(1)
        activity = []
        for i, (w, b, wi, norm) in enumerate(zip(self.weights, self.biases, self.intra,
                                                 self.norms, strict=True)):
            mask = getattr(self, f"mask{i}")
            z = F.linear(x, w if mask is None else w * mask, b)
            h = F.relu(z + F.linear(F.relu(z), wi * getattr(self, f"intra_mask{i}")))
            activity.append((x.detach(), h.detach()))
            h = norm(h * getattr(self, f"gain{i}"))
            x = h + self.sigma * torch.randn_like(h) if self.training else h
        return self.readout(x), activity


class PlainHebbian:
    """Normalised Oja step plus adaptive-threshold homeostasis on each hidden layer."""

    def __init__(self, net: PlainNet, p: dict) -> None:
        self.net, self.p = net, p
        self.firing: list[torch.Tensor | None] = [None] * len(net.weights)

    @torch.no_grad()
    def step(self, activity: list) -> None:
        p = self.p
        for i, (x, y) in enumerate(activity):
            w, b, mask = self.net.weights[i], self.net.biases[i], getattr(self.net, f"mask{i}")
            norm = w.norm(dim=1, keepdim=True)
            corr = y.T @ x / x.shape[0]
            if mask is not None:
                corr *= mask
            x_norm = (x * x).sum(1).mean().sqrt()
            scale = ((y * y).mean(0).sqrt() * x_norm).clamp_min(1e-6)
            moved = w + p["rate"] * norm * (corr / scale[:, None])
            new = moved * (norm / moved.norm(dim=1, keepdim=True).clamp_min(1e-6))
            fired = (y > 0).float().mean(0)
            self.firing[i] = (fired if self.firing[i] is None
                              else self.firing[i] + (fired - self.firing[i]) / p["tau"])
            b.add_(p["homeostasis_rate"] * (p["target"] - self.firing[i]) * norm[:, 0]
                   * x_norm / math.sqrt(x.shape[1]))
            w.copy_(new)


def plain_augment(x: torch.Tensor, g: torch.Generator, a: dict) -> torch.Tensor:
    """Per-image flip, rotation, shift, zoom, brightness/contrast and erasing."""
    n, _, h, w = x.shape
    u = torch.rand(n, 5, generator=g, device=x.device)
    sign = torch.where(u[:, 0] < a["flip"], -1.0, 1.0)
    angle = (2 * u[:, 1] - 1) * math.radians(a["degrees"])
    zoom = 1 + (2 * u[:, 2] - 1) * a["scale"]
    shift = (2 * u[:, 3:5] - 1) * 2 * a["translate"]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * sign, -sin, shift[:, 0]], 1),
                         torch.stack([sin * sign, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    j = torch.rand(n, 2, generator=g, device=x.device)
    x = x * (1 + (2 * j[:, :1] - 1) * a["brightness"]).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * (1 + (2 * j[:, 1:] - 1) * a["contrast"]).view(n, 1, 1, 1) + mean)
    x = x.clamp(0, 1)
    e = torch.rand(n, 5, generator=g, device=x.device)
    frac = 0.02 + (a["erase_max_area"] - 0.02) * e[:, 0]
    ratio = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * e[:, 1])
    eh = torch.sqrt(frac * h * w * ratio).round().clamp(1, h)
    ew = torch.sqrt(frac * h * w / ratio).round().clamp(1, w)
    top, left = ((h - eh + 1) * e[:, 2]).floor(), ((w - ew + 1) * e[:, 3]).floor()
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1))
              & (e[:, 4] < a["erase"]).view(n, 1, 1))
    return torch.where(inside.unsqueeze(1), torch.full_like(x, 0.5), x)


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    pred = logits.argmax(1)
    cm = torch.bincount(labels * 7 + pred, minlength=49).view(7, 7).double()
    tp = cm.diagonal()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                     torch.zeros_like(tp))
    return float(f1[cm.sum(1) > 0].mean())


class PlainRun:
    """The hand-written training: model, optimizer, scheduler, Hebbian step, data order."""

    def __init__(self, bionic: nn.Module, p: dict, config, device, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = PlainNet(bionic.cpu(), p).to(device)
        self.hebbian = PlainHebbian(self.net, p["hebbian"])
        params = [q for q in self.net.parameters()]
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        self.optimizer = torch.optim.AdamW(
            [{"params": [q for q in params if q.ndim >= 2],
              "weight_decay": p["weight_decay"]["decay"]},
             {"params": [q for q in params if q.ndim < 2], "weight_decay": 0.0}],
            lr=config.lr, **fused)
        s = p["lr_scheduler"]
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=s["factor"], patience=s["patience"],
            min_lr=s["min_lr"])
        self.p, self.config, self.device = p, config, device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.best, self.best_state = -1.0, None

    def epoch(self, images: torch.Tensor, labels: torch.Tensor, val_images: torch.Tensor,
              val_labels: torch.Tensor) -> float:
        started = time.perf_counter()
        net, smoothing = self.net, self.p["label_smoothing"]["epsilon"]
        net.train()
        order = torch.randperm(len(labels), generator=self.generator, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        for start in range(0, len(labels), self.config.batch_size):
            idx = order[start:start + self.config.batch_size]
            x = plain_augment(images[idx].unsqueeze(1).float() / 255, self.generator,
                              self.p["augmentation"])
            logits, activity = net(x)
            loss = F.cross_entropy(logits, labels[idx], label_smoothing=smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.hebbian.step(activity)
            loss_sum += loss.detach() * len(idx)
        float(loss_sum)
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(val_images[i:i + 1024].unsqueeze(1).float() / 255)[0]
                                for i in range(0, len(val_labels), 1024)])
        score = macro_f1(logits, val_labels)
        self.scheduler.step(score)
        if score > self.best:
            self.best = score
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return time.perf_counter() - started


def main() -> None:
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=4096,
                   help="training images per epoch (a seeded subset; 0 = all)")
    p.add_argument("--rounds", type=int, default=3, help="timed epochs of each, alternating")
    args = p.parse_args()
    device = harness.setup(args)
    load = harness.quiet_enough(args)

    from bionic_core.training.loop import load_run_data, prepare, train_run

    config, catalogue = harness.experiment("paper", args.data, device, epochs=1, patience=0,
                                           cpu_threads=torch.get_num_threads())
    full = load_run_data(config)
    limit = args.limit or None
    val_limit = None if limit is None else max(256, limit // 4)
    data = harness.subset(full, limit, val_limit)
    ctx, bionic_model, _ = prepare(config, catalogue)
    params = {name: ctx.params(name) for name in config.features}
    plain = PlainRun(bionic_model, params, config, device, seed=config.seed)
    split = {name: (torch.as_tensor(s.images).to(device), torch.as_tensor(s.labels).to(device))
             for name, s in data.splits.items()}

    def bionic_epoch(seed: int) -> float:
        return train_run(config.replace(seed=seed), catalogue, data=data).history[0][
            "epoch_time"]

    def plain_epoch() -> float:
        return plain.epoch(*split["train"], *split["val"])

    bionic_epoch(0), plain_epoch()  # warm-up: allocator, oneDNN primitives
    bionic_times, plain_times = [], []
    for r in range(args.rounds):
        bionic_times.append(bionic_epoch(r + 1))
        plain_times.append(plain_epoch())
        print(f"round {r + 1}: bionic {bionic_times[-1]:.2f} s, plain torch "
              f"{plain_times[-1]:.2f} s per epoch")
    b, q = statistics.median(bionic_times), statistics.median(plain_times)
    harness.emit(harness.gated({
        "benchmark": "overhead", "experiment": "paper", "features": list(config.features),
        "train_images": len(data.splits["train"].labels),
        "val_images": len(data.splits["val"].labels),
        "limit": limit, "subset": limit is not None,
        "note": "epochs on a seeded subset of the FER-2013 training set (--limit), validation "
                "a quarter as many; plain torch uses the same kernels and layout",
        "rounds": args.rounds, "bionic_epoch_seconds": [round(t, 3) for t in bionic_times],
        "plain_epoch_seconds": [round(t, 3) for t in plain_times],
        "bionic_median_s": round(b, 3), "plain_median_s": round(q, 3),
        "overhead_ratio": round(b / q, 3), "target": 1.10, "meets_target": b / q <= 1.10,
        "machine": harness.machine(device)}, ("overhead_ratio", "meets_target"), load))


if __name__ == "__main__":
    main()
