"""Patchify / positional embedding per modality, behind one small interface.

The transformer blocks only see tokens (B, N, D). A modality turns its data into tokens and back,
and knows how to spread a per-token scalar (a timestep) over its data layout. Images use a 2-D
grid; video (3-D) and audio (1-D) plug in here without touching the blocks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """(M,) positions → (M, dim) sin/cos features (MAE/DiT)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    """(grid_h·grid_w, dim): half the channels encode the row, half the column (DiT)."""
    gh, gw = np.meshgrid(np.arange(grid_h, dtype=np.float64), np.arange(grid_w, dtype=np.float64), indexing="ij")
    return np.concatenate([sincos_1d(dim // 2, gw), sincos_1d(dim // 2, gh)], axis=1)


class ImageModality(nn.Module):
    """(B, C, H, W) ↔ (B, N, D) with N = (H/p)·(W/p); fixed 2-D sin-cos positions."""

    def __init__(self, input_size: int, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        if input_size % patch_size:
            raise ValueError(f"input size {input_size} is not a multiple of patch size {patch_size}")
        self.input_size, self.patch_size, self.in_channels = input_size, patch_size, in_channels
        self.grid = input_size // patch_size
        self.num_tokens = self.grid * self.grid
        self.out_dim = patch_size * patch_size * in_channels
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)
        pos = torch.from_numpy(sincos_2d(hidden_size, self.grid, self.grid)).float()
        self.register_buffer("pos_embed", pos.unsqueeze(0), persistent=False)  # (1, N, D)
        # DiT: initialise the patch projection like a linear layer.
        w = self.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.proj.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D)
        return tokens + self.pos_embed

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, p·p·C) → (B, C, H, W)."""
        b, p, c, g = tokens.shape[0], self.patch_size, self.in_channels, self.grid
        x = tokens.reshape(b, g, g, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(b, c, g * p, g * p)

    def expand_token_values(self, values: torch.Tensor) -> torch.Tensor:
        """(B, N) per-token scalars → (B, 1, H, W): each patch's pixels get its token's value."""
        b, g, p = values.shape[0], self.grid, self.patch_size
        v = values.reshape(b, 1, g, g)
        return v.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)

    def token_grid(self) -> tuple[int, int]:
        return (self.grid, self.grid)


def timestep_frequencies(dim: int = 256, max_period: float = 10_000.0) -> torch.Tensor:
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
