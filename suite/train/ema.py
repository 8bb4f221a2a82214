"""EMA teacher/evaluation weights: an exact copy at start, θ_ema ← d·θ_ema + (1 − d)·θ every step.

Under FSDP both models are sharded alike, so the update is a lerp over each rank's local shards.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    if hasattr(ema, "reshard"):  # FSDP: a teacher forward may leave gathered weights behind; update the shards
        from suite.train.fsdp import reshard

        reshard(ema)
    ema_params = [_local(p) for p in ema.parameters()]
    params = [_local(p.detach()) for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)  # ema + (1 − d)·(θ − ema)


def _local(p: torch.Tensor) -> torch.Tensor:
    """This rank's shard of an FSDP (DTensor) parameter; the tensor itself otherwise."""
    return p.to_local() if hasattr(p, "to_local") else p
