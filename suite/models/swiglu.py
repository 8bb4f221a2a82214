"""SwiGLU MLP (Shazeer 2020; FLUX.2): W_out · (SiLU(W_gate x) ⊙ W_up x), hidden = mlp_ratio · D."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def swiglu(gate_and_up: torch.Tensor) -> torch.Tensor:
    """(…, 2H) packed [gate, up] → (…, H)."""
    gate, up = gate_and_up.chunk(2, dim=-1)
    return F.silu(gate) * up


class SwiGLU(nn.Module):
    """D → 2·H (gate and up in one matmul) → H → D. Parameters 3·H·D (+ biases): 12·D² at ratio 4."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w_in = nn.Linear(dim, 2 * hidden)
        self.w_out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_out(swiglu(self.w_in(x)))  # (B, N, D)
