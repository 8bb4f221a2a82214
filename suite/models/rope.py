"""Rotary position embeddings over several axes (FLUX style), for joint text + data attention.

Each token has an integer position per axis, `ids` (N, A). The head dimension is split into A
even parts, one per axis; each part rotates its channel pairs by angle pos · ω_i,
ω_i = θ^(−2i / d_axis). Axis 0 is the text sequence axis; the data axes follow
(images: row, column; video: frame, row, column; audio: position). Text tokens sit at
(i, 0, …), data tokens at (0, data position…): `token_ids` builds this layout.
"""
from __future__ import annotations

import torch


def axis_dims(head_dim: int, num_axes: int) -> list[int]:
    """Split head_dim into num_axes even parts, as equal as possible: 72 over 3 axes → [24, 24, 24]."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
    pairs = head_dim // 2
    base, extra = divmod(pairs, num_axes)
    return [2 * (base + (1 if a < extra else 0)) for a in range(num_axes)]


def rope_angles(ids: torch.Tensor, head_dim: int, theta: float = 10_000.0) -> torch.Tensor:
    """ids (N, A) integer positions → angles (N, head_dim/2) (float32)."""
    parts = []
    for a, d in enumerate(axis_dims(head_dim, ids.shape[1])):
        if d == 0:
            continue
        omega = theta ** (-torch.arange(0, d, 2, dtype=torch.float32, device=ids.device) / d)  # (d/2,)
        parts.append(ids[:, a].float()[:, None] * omega)  # (N, d/2)
    return torch.cat(parts, dim=-1)  # (N, head_dim/2)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """x (B, H, N, Dh), angles (N, Dh/2) → x with channel pairs (2i, 2i+1) rotated."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (N, Dh/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, N, Dh/2)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, H, N, Dh/2, 2)
    return out.flatten(-2)


def data_positions(modality) -> torch.Tensor:
    """The data tokens' positions in token order: (N, A_data) long (image row/col, video frame/row/col, audio index)."""
    if modality.kind == "image":
        g = modality.grid
        rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)
    if modality.kind == "video":
        tg, g = modality.tgrid, modality.grid
        f, rows, cols = torch.meshgrid(torch.arange(tg), torch.arange(g), torch.arange(g), indexing="ij")
        return torch.stack([f.reshape(-1), rows.reshape(-1), cols.reshape(-1)], dim=1)
    return torch.arange(modality.num_tokens)[:, None]  # audio: (N, 1)


def token_ids(text_len: int, data_pos: torch.Tensor) -> torch.Tensor:
    """Text tokens then data tokens: (L + N, 1 + A_data) long; text at (i, 0, …), data at (0, pos…)."""
    n, a = data_pos.shape
    text = torch.zeros(text_len, 1 + a, dtype=torch.long, device=data_pos.device)
    text[:, 0] = torch.arange(text_len, device=data_pos.device)
    data = torch.cat([torch.zeros(n, 1, dtype=torch.long, device=data_pos.device), data_pos], dim=1)
    return torch.cat([text, data], dim=0)
