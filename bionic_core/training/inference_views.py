"""Test-time augmentation: the views of an image a trained model is scored on, whose class
probabilities are averaged — the image itself, its left-right mirror (``mirror``) and, with
``shift`` = s > 0, the image moved s pixels right, left, down and up (the edge rows and columns
repeated into the gap), each of them mirrored too when ``mirror``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where images are scored: the CLI starts without it
    import torch

MAX_SHIFT = 8  # pixels; a 48-pixel face moved further is mostly repeated edge


@dataclass(frozen=True)
class InferenceViews:
    mirror: bool = False
    shift: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.shift <= MAX_SHIFT:
            raise ValueError(f"{self.shift}: must be 1 to {MAX_SHIFT} pixels (0, the default: no "
                             "shifted views)")

    @property
    def plain(self) -> bool:
        """Only the image itself: the model's own logits are the scores."""
        return not self.mirror and self.shift == 0

    @property
    def count(self) -> int:
        return (5 if self.shift else 1) * (2 if self.mirror else 1)

    @property
    def suffix(self) -> str:
        """What names an evaluation with these views apart from the plain one."""
        return ("-mirror" if self.mirror else "") + (f"-shift{self.shift}" if self.shift else "")

    def record(self) -> dict[str, Any]:
        """How an evaluation report names its views."""
        return {"mirror": self.mirror, "shift": self.shift}

    def describe(self) -> str:
        parts = ["each image"]
        if self.shift:
            parts.append(f"it moved {self.shift} px right, left, down and up")
        if self.mirror:
            parts.append("the left-right mirror of each" if self.shift else "its left-right mirror")
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]

    def views(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Every view of a batch ``x`` (…, height, width), the batch itself first."""
        import torch.nn.functional as F

        s = self.shift
        moved = [x]
        if s:
            height, width = x.shape[-2:]
            padded = F.pad(x, (s, s, s, s), mode="replicate")
            for dy, dx in ((0, -s), (0, s), (-s, 0), (s, 0)):  # right, left, down, up
                moved.append(padded[..., s + dy:s + dy + height, s + dx:s + dx + width])
        for view in moved:
            yield view
            if self.mirror:
                yield view.flip(-1)

    def scores(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model``'s logits for ``x`` (float32); with more than one view, the log of the mean
        of the views' softmax: a softmax of it gives that mean back."""
        import torch

        if self.plain:
            return model(x).float()
        mean = torch.stack([torch.softmax(model(v).float(), dim=1)
                            for v in self.views(x)]).mean(dim=0)
        return mean.clamp_min(1e-30).log()


PLAIN = InferenceViews()  # the image itself: the model's own logits
