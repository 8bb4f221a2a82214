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

    kind = "image"

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

    def token_grid(self) -> tuple[int, ...]:
        """Token layout, row-major: (h, w)."""
        return (self.grid, self.grid)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.input_size, self.input_size)


class SequenceModality(nn.Module):
    """(B, C, L) ↔ (B, N, D) with N = L/p: audio latents (e.g. 25 latents/s × 64 channels); 1-D sin-cos."""

    kind = "audio"

    def __init__(self, length: int, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        if length % patch_size:
            raise ValueError(f"sequence length {length} is not a multiple of patch size {patch_size}")
        self.length, self.patch_size, self.in_channels = length, patch_size, in_channels
        self.num_tokens = length // patch_size
        self.out_dim = patch_size * in_channels
        self.proj = nn.Linear(patch_size * in_channels, hidden_size)
        pos = torch.from_numpy(sincos_1d(hidden_size, np.arange(self.num_tokens))).float()
        self.register_buffer("pos_embed", pos.unsqueeze(0), persistent=False)  # (1, N, D)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _ = x.shape
        patches = x.reshape(b, c, self.num_tokens, self.patch_size).permute(0, 2, 3, 1).reshape(b, self.num_tokens, -1)
        return self.proj(patches) + self.pos_embed  # (B, N, D)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, p·C) → (B, C, L)."""
        b = tokens.shape[0]
        x = tokens.reshape(b, self.num_tokens, self.patch_size, self.in_channels)
        return x.permute(0, 3, 1, 2).reshape(b, self.in_channels, self.length)

    def expand_token_values(self, values: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, 1, L)."""
        return values[:, None, :].repeat_interleave(self.patch_size, dim=2)

    def token_grid(self) -> tuple[int, ...]:
        """Token layout: (n,) along time."""
        return (self.num_tokens,)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.length)


class VideoModality(nn.Module):
    """(B, C, T, H, W) ↔ (B, N, D), tubelets of pt × p × p, N = (T/pt)·(H/p)·(W/p); factorised 3-D sin-cos."""

    kind = "video"

    def __init__(self, frames: int, input_size: int, patch_size: int, in_channels: int, hidden_size: int, temporal_patch: int = 1):
        super().__init__()
        if input_size % patch_size or frames % temporal_patch:
            raise ValueError(f"video {frames}×{input_size}² does not tile into {temporal_patch}×{patch_size}² tubelets")
        self.frames, self.input_size, self.patch_size, self.temporal_patch = frames, input_size, patch_size, temporal_patch
        self.in_channels = in_channels
        self.grid, self.tgrid = input_size // patch_size, frames // temporal_patch
        self.num_tokens = self.tgrid * self.grid * self.grid
        self.out_dim = temporal_patch * patch_size * patch_size * in_channels
        k = (temporal_patch, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=k, stride=k)
        d_t = hidden_size // 4 * 2 if hidden_size >= 8 else hidden_size // 2  # a quarter-ish of channels for time
        spatial = sincos_2d(hidden_size - d_t, self.grid, self.grid)  # (G², D − d_t)
        temporal = sincos_1d(d_t, np.arange(self.tgrid))  # (T', d_t)
        pos = np.concatenate([np.repeat(temporal, self.grid**2, axis=0), np.tile(spatial, (self.tgrid, 1))], axis=1)
        self.register_buffer("pos_embed", torch.from_numpy(pos).float().unsqueeze(0), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, D)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, pt·p·p·C) → (B, C, T, H, W)."""
        b, pt, p, c, g, tg = tokens.shape[0], self.temporal_patch, self.patch_size, self.in_channels, self.grid, self.tgrid
        x = tokens.reshape(b, tg, g, g, pt, p, p, c)
        x = torch.einsum("nthwapqc->nctahpwq", x)
        return x.reshape(b, c, tg * pt, g * p, g * p)

    def expand_token_values(self, values: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, 1, T, H, W)."""
        b = values.shape[0]
        v = values.reshape(b, 1, self.tgrid, self.grid, self.grid)
        v = v.repeat_interleave(self.temporal_patch, 2).repeat_interleave(self.patch_size, 3)
        return v.repeat_interleave(self.patch_size, 4)

    def token_grid(self) -> tuple[int, ...]:
        """Token layout, row-major: (t, h, w) (time slowest, as `embed` flattens)."""
        return (self.tgrid, self.grid, self.grid)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.frames, self.input_size, self.input_size)


def make_modality(data_shape: tuple[int, ...], patch_size: int, hidden_size: int, temporal_patch: int = 1) -> nn.Module:
    """Pick the modality from the data layout: (C, L) audio, (C, H, W) image, (C, T, H, W) video."""
    if len(data_shape) == 2:
        return SequenceModality(data_shape[1], patch_size, data_shape[0], hidden_size)
    if len(data_shape) == 3:
        c, h, w = data_shape
        if h != w:
            raise ValueError(f"images must be square, got {h}×{w}")
        return ImageModality(h, patch_size, c, hidden_size)
    if len(data_shape) == 4:
        c, t, h, w = data_shape
        return VideoModality(t, h, patch_size, c, hidden_size, temporal_patch)
    raise ValueError(f"no modality for data of shape {data_shape}")


def timestep_frequencies(dim: int = 256, max_period: float = 10_000.0) -> torch.Tensor:
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
