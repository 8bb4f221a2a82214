"""QK normalisation: RMSNorm over each head's channels of q and k before attention (FLUX)."""
from __future__ import annotations

import torch
import torch.nn as nn


class RMSNorm(nn.Module):
    """x / rms(x) · g over the last dim, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.square().mean(dim=-1, keepdim=True) + self.eps)
        return (out * self.scale.float()).to(x.dtype)


class QKNorm(nn.Module):
    """Separate RMSNorms for q and k, each over the head dimension: (B, H, N, Dh) → same."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.q_norm, self.k_norm = RMSNorm(head_dim), RMSNorm(head_dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q_norm(q), self.k_norm(k)
