"""The condition convention (docs/ARCHITECTURE.md, "Conditions") and its one null condition.

`y` is class labels (B,) long, caption token ids (B, L) long, or caption embeddings (B, L, E)
float from a pretrained text encoder (suite.text). The null condition — CFG's unconditional
branch, a dropped label or caption, and caption padding — is the id `null_class` for labels and
ids, and the all-zero token for embeddings (the MM-DiT reads an all-zero token as its learned
null embedding). Methods, CFG and teachers all drop conditions through `null_condition`, so none
of them needs to know which form the data has.
"""
from __future__ import annotations

import torch


def null_condition(y: torch.Tensor, null_class: int) -> torch.Tensor:
    """The null condition in the form of `y`: all `null_class` ids, or all-zero embeddings."""
    return torch.zeros_like(y) if y.is_floating_point() else torch.full_like(y, null_class)


def drop_conditions(y: torch.Tensor, drop: torch.Tensor, null_class: int) -> torch.Tensor:
    """`drop` (B,) bool: those samples' whole condition replaced by the null one."""
    drop = drop.view(-1, *([1] * (y.dim() - 1)))  # (B, 1, …)
    return torch.where(drop, null_condition(y, null_class), y)
