"""The encoder interface REPA aligns to: pixels in [-1, 1] in, a 2-D grid of patch tokens out.

Small on purpose (iREPA's `VisionEncoder`): adding an encoder family is one file that subclasses
`Encoder`, says how it resizes/normalises (`preprocess`) and how it gets patch tokens
(`forward_tokens`), and registers a loader with `@register_encoder`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)  # SigLIP's normalisation: maps [0, 1] back to [-1, 1]


class Encoder(nn.Module):
    """A frozen image encoder emitting patch tokens (no CLS / register tokens).

    Subclasses set `name`, `embed_dim`, `patch_size`, `input_size`, `mean`, `std` and implement
    `forward_tokens`. `input_size` is what `preprocess` resizes to (REPA: 224 for a 256² image,
    so DINOv2/14 emits 16×16 tokens); override it per instance to match another generator grid.
    """

    name: str = "encoder"
    embed_dim: int = 0
    patch_size: int = 16
    input_size: int = 224
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    resize_mode: str = "bicubic"

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) that `forward_tokens(preprocess(x))` returns."""
        n = self.input_size // self.patch_size
        return (n, n)

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → the encoder's input: resized its way and normalised."""
        if pixels.dim() != 4 or pixels.shape[1] != 3:
            from suite.errors import SuiteError

            raise SuiteError(f"encoder {self.name}: expected pixels (B, 3, H, W), got {tuple(pixels.shape)}")
        x = (pixels.float() + 1.0) / 2.0  # (B, 3, H, W) in [0, 1]
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode=self.resize_mode,
                              align_corners=False if self.resize_mode in ("bilinear", "bicubic") else None)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed input → (B, T, D) patch tokens, row-major over `grid`."""
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, h·w, D) patch tokens."""
        return self.forward_tokens(self.preprocess(pixels))

    def freeze(self) -> "Encoder":
        """Eval mode, no gradients: the state REPA uses it in."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Encoder":
        # Frozen encoders stay in eval mode even when the owning method is put in train mode
        # (dropout / stochastic depth must not perturb the alignment target).
        return super().train(False)


def resample_tokens(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resample (B, h·w, D) square-grid tokens to `grid`: area average when shrinking, bilinear else.

    REPA needs the encoder's token grid to equal the generator's (one target per generator token).
    """
    b, t, d = tokens.shape
    h = w = int(round(math.sqrt(t)))
    if h * w != t:
        from suite.errors import SuiteError

        raise SuiteError(f"cannot resample {t} tokens: not a square grid")
    if (h, w) == tuple(grid):
        return tokens
    x = tokens.transpose(1, 2).reshape(b, d, h, w)  # (B, D, h, w)
    if grid[0] <= h and grid[1] <= w:
        x = F.interpolate(x.float(), size=grid, mode="area")
    else:
        x = F.interpolate(x.float(), size=grid, mode="bilinear", align_corners=False)
    return x.to(tokens.dtype).flatten(2).transpose(1, 2)  # (B, gh·gw, D)
