"""Per-token times in a static-shape structured form, reusable by any backbone.

Dual-timestep training (Self-Flow) gives every token one of K = 2 times per sample. Stored as
`levels (B, K)` plus `index (B, N)` (which level each token has), a backbone computes its
conditioning and every adaLN modulation for the (B, K) levels and selects per token: no
`torch.unique`, no shape that depends on the data, no host sync, so the step compiles whole.

Backbones accept three time forms (t = 1 noise, suite.flow):
    (B,)        one time per sample, shared by every token
    (B, N)      an arbitrary time per token (diffusion forcing): conditioning per token
    TokenTimes  K levels per sample and a per-token index: conditioning per level, selected per token
"""
from __future__ import annotations

from typing import NamedTuple, Union

import torch


class TokenTimes(NamedTuple):
    """K time levels per sample and which one each token has. A NamedTuple so DDP, torch.compile
    and pytrees carry it through `forward` like a tuple of tensors."""

    levels: torch.Tensor  # (B, K) float times
    index: torch.Tensor  # (B, N) long in [0, K)

    @classmethod
    def dual(cls, t: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> "TokenTimes":
        """t, s (B,); mask (B, N) bool, True = token at time s."""
        return cls(torch.stack([t, s], dim=1), mask.long())  # (B, 2), (B, N)

    @property
    def num_levels(self) -> int:
        return self.levels.shape[1]

    def per_token(self) -> torch.Tensor:
        """(B, N) time of every token."""
        return self.levels.gather(1, self.index)

    def select(self, per_level: torch.Tensor) -> torch.Tensor:
        """(B, K, F) values per level → (B, N, F) per token. Static shapes; K = 2 is a `where`
        (its backward needs no scatter), other K a gather."""
        if self.num_levels == 2:
            return torch.where(self.index[..., None].bool(), per_level[:, 1:2], per_level[:, 0:1])  # (B, N, F)
        idx = self.index[..., None].expand(-1, -1, per_level.shape[-1])  # (B, N, F)
        return per_level.gather(1, idx)


Times = Union[torch.Tensor, TokenTimes]


def per_token_times(t: Times, num_tokens: int) -> torch.Tensor:
    """Any time form → (B, N) (for spreading over the data or brute-force checks)."""
    if isinstance(t, TokenTimes):
        return t.per_token()
    return t if t.dim() == 2 else t[:, None].expand(-1, num_tokens)
