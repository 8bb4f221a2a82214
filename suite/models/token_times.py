"""Per-token times in a static-shape structured form, reusable by any backbone.

Dual-timestep training (Self-Flow) gives every token one of K = 2 times per sample. Stored as
`levels (B, K)` plus `index (B, N)` (which level each token has), a backbone computes its
conditioning and every adaLN modulation for the (B, K) levels and brings them to the tokens
through the levels' one-hot (suite.models.sit.Conditioning): no
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

    def one_hot(self, dtype: torch.dtype) -> torch.Tensor:
        """(B, N, K) 0/1: which level each token has (by comparison: F.one_hot checks its range, a host sync)."""
        return (self.index[:, :, None] == torch.arange(self.num_levels, device=self.index.device)).to(dtype)


Times = Union[torch.Tensor, TokenTimes]


def per_token_times(t: Times, num_tokens: int) -> torch.Tensor:
    """Any time form → (B, N) (for spreading over the data or brute-force checks)."""
    if isinstance(t, TokenTimes):
        return t.per_token()
    return t if t.dim() == 2 else t[:, None].expand(-1, num_tokens)
