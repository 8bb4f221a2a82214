"""The time convention of the whole suite (Self-Flow paper, selfflow.md §1). Everything imports it.

t = 1 is pure noise, t = 0 is data:  x_t = (1 − t)·x0 + t·x1,  x1 ~ N(0, I),  target v = x1 − x0.
Sampling integrates dx/dt = v(x, t) from t = 1 down to t = 0.
(willisma/SiT uses the opposite convention; convert at the boundary, never inside.)
"""
from __future__ import annotations

import math
from typing import Literal
from dataclasses import dataclass

import torch

NOISE_T = 1.0
DATA_T = 0.0


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 − t)·x0 + t·x1; `t` broadcastable to x0 (e.g. (B, 1, 1, 1) or a per-pixel map)."""
    return (1.0 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """dx_t/dt, independent of t."""
    return x1 - x0


def cleaner(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The less noisy of two times (smaller t in this convention)."""
    return torch.minimum(t, s)


def time_shift(t: torch.Tensor, alpha: float) -> torch.Tensor:
    """shift(α, t) = α·t / (1 + (α − 1)·t); α > 1 moves mass towards noise (t = 1)."""
    if alpha == 1.0:
        return t
    return alpha * t / (1.0 + (alpha - 1.0) * t)


def broadcast_time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) → (B, 1, ..., 1) matching x's rank."""
    return t.reshape(t.shape[0], *([1] * (x.dim() - 1)))


@dataclass
class TimeSamplerConfig:
    """Training distribution p(t) (selfflow.md §6)."""

    kind: Literal["uniform", "logit_normal"] = "uniform"
    mu: float = 0.0  # logit-normal location
    sigma: float = 1.0  # logit-normal scale
    shift: float = 1.0  # "trainshift" α applied after drawing
    low_snr_fraction: float = 0.0  # fraction of draws replaced by U[low_snr_min, 1] (video: 0.05)
    low_snr_min: float = 0.95
    eps: float = 0.0  # keep t in [eps, 1 − eps] if > 0


class TimeSampler:
    """Draws t ~ p(t) of any shape; deterministic given a torch.Generator."""

    def __init__(self, cfg: TimeSamplerConfig):
        self.cfg = cfg  # validated when the config was loaded (time.kind is a Literal)

    def sample(self, shape, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.cfg
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        if c.kind == "uniform":
            t = torch.rand(shape, generator=generator, device=device)
        else:
            t = torch.sigmoid(c.mu + c.sigma * torch.randn(shape, generator=generator, device=device))
        t = time_shift(t, c.shift)
        if c.low_snr_fraction > 0:
            pick = torch.rand(shape, generator=generator, device=device) < c.low_snr_fraction
            hi = c.low_snr_min + (1 - c.low_snr_min) * torch.rand(shape, generator=generator, device=device)
            t = torch.where(pick, hi, t)
        if c.eps > 0:
            t = t.clamp(c.eps, 1 - c.eps)
        return t

    def density(self, t: torch.Tensor) -> torch.Tensor:
        """p(t) without the low-SNR mix (for tests of marginals)."""
        c = self.cfg
        a = c.shift
        # invert the shift: u = t / (a − (a − 1)·t), du/dt = a / (a − (a − 1) t)²
        u = t / (a - (a - 1) * t)
        du = a / (a - (a - 1) * t) ** 2
        if c.kind == "uniform":
            pu = torch.ones_like(u)
        else:
            logit = torch.log(u) - torch.log1p(-u)
            pu = torch.exp(-0.5 * ((logit - c.mu) / c.sigma) ** 2) / (c.sigma * math.sqrt(2 * math.pi) * u * (1 - u))
        return pu * du
