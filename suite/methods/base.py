"""The method interface: given a batch, the model(s) and the step, return loss terms and logs.

The trainer never branches on a method's name. A method is an nn.Module so that its own trainable
parts (projectors) are optimised and checkpointed with the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class MethodConfig:
    """Fields every method has. Subclass it for a method's own switches."""

    name: str = ""
    label_dropout: float = 0.1  # CFG condition dropout (guess: 0.1); shared with any teacher


@dataclass
class Batch:
    x0: torch.Tensor  # (B, C, H, W) what the generator learns (pixels or latents)
    y: torch.Tensor  # (B,) class labels
    pixels: Optional[torch.Tensor] = None  # (B, 3, H', W') raw images in [-1, 1] (external encoders)
    index: Optional[torch.Tensor] = None  # (B,) dataset indices


@dataclass
class MethodOutput:
    loss: torch.Tensor  # scalar to backpropagate
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # named, unweighted loss terms (graphs kept; tests take their gradients)
    logs: dict[str, float] = field(default_factory=dict)  # anything else worth logging


class Method(nn.Module):
    needs_ema_teacher = False  # whether loss() reads the EMA model
    per_token_timesteps = False  # whether the student gets (B, N) times (adaLN then runs per token)

    def __init__(self, cfg: MethodConfig, model: nn.Module, time_sampler):
        super().__init__()
        self.cfg = cfg
        self.time_sampler = time_sampler
        self.null_class = model.null_class

    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:  # pragma: no cover
        raise NotImplementedError

    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Replace labels by the null class with probability `label_dropout` (one draw per sample)."""
        if self.cfg.label_dropout <= 0:
            return y
        drop = torch.rand(y.shape, device=y.device) < self.cfg.label_dropout
        return torch.where(drop, torch.full_like(y, self.null_class), y)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain unweighted MSE over every element (L_gen)."""
    return (pred.float() - target.float()).square().mean()


def negative_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean over tokens and samples of (1 − cos) along the last dim."""
    return (1.0 - F.cosine_similarity(a.float(), b.float(), dim=-1)).mean()


def feature_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean()


FEATURE_LOSSES = {"cosine": negative_cosine, "l1": feature_l1}


class Projector(nn.Sequential):
    """Student-feature projector: Linear(D→hidden) → SiLU → … → Linear(→out).

    Self-Flow/SRA: D→2D→D (one hidden layer); REPA: D→2048→2048→enc_dim (two hidden layers).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int = 1):
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.SiLU()]
        for _ in range(hidden_layers - 1):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.SiLU()]
        layers.append(nn.Linear(hidden_dim, out_dim))
        super().__init__(*layers)
