"""Caption consistency on captioned built-in data: do generated samples show what their caption says?

A small CNN with one head per attribute (colour, shape, size, position) is trained on real
captioned shapes drawn over ALL attribute combinations (its own draw, `judge_training_set`): a
judge trained on the seen combinations only would read colour as a hint for shape and misjudge
the unseen ones. The generator still never sees the unseen combinations. Caption consistency of a set of samples = the fraction whose
predicted attribute equals the caption's, per attribute and all four at once ("all"). Measured
separately on captions of seen combinations (the test split) and of unseen ones (`unseen` split).
Metric names: `eval/caption_consistency<n>_<attr|all>` and `eval/caption_consistency<n>_unseen_<attr|all>`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.data.captions import ATTRIBUTES


class AttributeCNN(nn.Module):
    """(B, 3, H, W) in [-1, 1] → one logit vector per attribute: {name: (B, K_name)}."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )  # (B, 2·width·16): keeps a coarse layout, so position stays readable
        self.heads = nn.ModuleDict({k: nn.Linear(2 * width * 16, len(v)) for k, v in ATTRIBUTES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {k: head(h) for k, head in self.heads.items()}


def judge_training_set(n: int, image_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n, 3, S, S), attributes (n, 4)) over all combinations, a draw separate from the data splits."""
    from suite.data.captions import make_captioned_shapes

    images, _, attributes = make_captioned_shapes(n, image_size, seed, unseen=None)
    return images, attributes


def train_attribute_classifier(images: torch.Tensor, attributes: torch.Tensor, steps: int = 400,
                               batch_size: int = 128, seed: int = 0) -> AttributeCNN:
    """images (n, 3, H, W) in [-1, 1], attributes (n, 4) long (ATTRIBUTES order) → a frozen AttributeCNN."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = AttributeCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=g)
        logits = model(images[idx])
        loss = sum(F.cross_entropy(logits[k], attributes[idx, j]) for j, k in enumerate(ATTRIBUTES))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def caption_consistency(classifier: AttributeCNN, images: torch.Tensor, attributes: torch.Tensor,
                        batch_size: int = 256) -> dict[str, float]:
    """Fraction of images whose predicted attributes match `attributes` (n, 4): per attribute and 'all'."""
    preds = []
    for i in range(0, images.shape[0], batch_size):
        logits = classifier(images[i:i + batch_size].float())
        preds.append(torch.stack([logits[k].argmax(-1) for k in ATTRIBUTES], dim=1))  # (b, 4)
    correct = torch.cat(preds) == attributes.to(preds[0].device)  # (n, 4)
    out = {k: correct[:, j].float().mean().item() for j, k in enumerate(ATTRIBUTES)}
    out["all"] = correct.all(dim=1).float().mean().item()
    return out


def chance_levels() -> dict[str, float]:
    """Consistency of a sample that ignores its caption (uniform attributes)."""
    out = {k: 1.0 / len(v) for k, v in ATTRIBUTES.items()}
    out["all"] = 1.0
    for k in ATTRIBUTES:
        out["all"] *= out[k]
    return out
