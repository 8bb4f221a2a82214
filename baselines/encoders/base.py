"""The encoder interface REPA aligns to: raw data in [-1, 1] in, a grid of tokens out (2-D patches
for images, (t, h, w) tubelets for video, (frames,) for audio), resampled to the generator's grid
by `resample_tokens` (the one place that does it).

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


def square_grid(input_size: int, patch_size: int) -> tuple[int, int]:
    """The (h, w) patch grid of a square input: a plain function, so subclasses' `grid`
    properties reach it without `super().grid` (which torch.compile cannot trace)."""
    n = input_size // patch_size
    return (n, n)


class Encoder(nn.Module):
    """A frozen encoder emitting patch tokens (no CLS / register tokens): images here; video and
    audio encoders override `preprocess` and `token_grid` and set `modality`.

    Subclasses set `name`, `embed_dim`, `patch_size`, `input_size`, `mean`, `std` and implement
    `forward_tokens`. `input_size` is what `preprocess` resizes to (REPA: 224 for a 256² image,
    so DINOv2/14 emits 16×16 tokens); override it per instance to match another generator grid.
    """

    name: str = "encoder"
    modality: str = "image"  # what it reads: image (B, 3, H, W) | video (B, 3, T, H, W) | audio (B, C, L)
    embed_dim: int = 0
    patch_size: int = 16
    input_size: int = 224
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    resize_mode: str = "bicubic"

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) that `forward_tokens(preprocess(x))` returns."""
        return square_grid(self.input_size, self.patch_size)

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

    def token_grid(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[int, ...]:
        """The grid (row-major) the tokens of preprocessed input `x` lie on; images: `grid`.
        Video encoders return (t, h, w), audio encoders (frames,)."""
        return self.grid

    def encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Raw data in [-1, 1] → ((B, N, D) tokens, their grid): what REPA resamples to the generator's grid."""
        x = self.preprocess(pixels)
        tokens = self.forward_tokens(x)  # (B, N, D)
        return tokens, tuple(self.token_grid(x, tokens))

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


def resample_tokens(tokens: torch.Tensor, grid: Sequence[int], source_grid: Sequence[int] | None = None) -> torch.Tensor:
    """Resample (B, N, D) tokens laid out row-major on `source_grid` (any rank: (n,) audio frames,
    (h, w) image patches, (t, h, w) video tubelets) to `grid`, of the same rank. `source_grid`
    None: a square 2-D grid.

    One axis at a time: an area average along an axis that shrinks, linear interpolation along
    one that grows (so 2-D shrinking is the area mean of each block, 2-D growing is bilinear).
    REPA needs the encoder's token grid to equal the generator's (one target per generator token).
    """
    b, n, d = tokens.shape
    if source_grid is None:
        h = int(round(math.sqrt(n)))
        source_grid = (h, h)
    src, dst = tuple(int(s) for s in source_grid), tuple(int(s) for s in grid)
    if math.prod(src) != n:
        from suite.errors import SuiteError

        raise SuiteError(f"cannot resample {n} tokens: they do not fill a {'×'.join(map(str, src))} grid")
    if len(src) != len(dst):
        from suite.errors import SuiteError

        raise SuiteError(f"cannot resample a {len(src)}-D token grid {src} to a {len(dst)}-D one {dst} (encoder and generator modalities differ)")
    if src == dst:
        return tokens
    x = tokens.float().transpose(1, 2).reshape(b, d, *src)  # (B, D, *src)
    for axis, (s_len, d_len) in enumerate(zip(src, dst)):
        if s_len == d_len:
            continue
        dim = 2 + axis
        moved = x.movedim(dim, -1)  # (B, D, …, s_len)
        flat = moved.reshape(-1, 1, s_len)  # (B·D·…, 1, s_len)
        mode = dict(mode="area") if d_len < s_len else dict(mode="linear", align_corners=False)
        out = F.interpolate(flat, size=d_len, **mode).reshape(*moved.shape[:-1], d_len)
        x = out.movedim(-1, dim)
    return x.reshape(b, d, -1).transpose(1, 2).to(tokens.dtype)  # (B, prod(dst), D)
