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
    logs: dict[str, torch.Tensor] = field(default_factory=dict)  # anything else worth logging: 0-dim tensors, never .item() (no host sync in the step)


class Method(nn.Module):
    needs_ema_teacher = False  # whether loss() reads the EMA model

    def __init__(self, cfg: MethodConfig, model: nn.Module, time_sampler):
        super().__init__()
        self.cfg = cfg
        self.time_sampler = time_sampler
        self.null_class = model.null_class

    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:  # pragma: no cover
        raise NotImplementedError

    def student_times(self, batch_size: int, num_tokens: int, device):
        """The time form this method feeds the backbone ((B,), (B, N) or TokenTimes), drawn as in
        `loss`; FLOP counting (suite.train.flops) uses it so each method is counted as it runs."""
        return self.time_sampler.sample((batch_size,), device=device)

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


def check_choice(key: str, value, allowed) -> None:
    """One-line ConfigError when a method switch has a value it does not know."""
    if value not in allowed:
        from suite.errors import ConfigError

        raise ConfigError(f"{key}: {value!r} not allowed; allowed: {', '.join(map(str, allowed))}")


class TeacherAlignmentMethod(Method):
    """Shared by Self-Flow and SRA: the student's block l, through a D → mult·D → D projector, is
    aligned to the raw output of block k of the EMA teacher (l = round(0.3·depth), k = round(0.7·depth)).

    The config must have `student_block`, `teacher_block`, `feature_loss`, `projector_hidden_mult`.
    """

    needs_ema_teacher = True

    def __init__(self, cfg, model, time_sampler):
        super().__init__(cfg, model, time_sampler)
        from suite.errors import ConfigError
        from suite.models.presets import default_layers

        check_choice("method.feature_loss", cfg.feature_loss, FEATURE_LOSSES)
        l, k = default_layers(model.depth)
        self.student_block = cfg.student_block or l
        self.teacher_block = cfg.teacher_block or k
        for key, b in (("student_block", self.student_block), ("teacher_block", self.teacher_block)):
            if not 1 <= b <= model.depth:
                raise ConfigError(f"method.{key}: block {b} outside 1..{model.depth}")
        d = model.hidden_size
        self.projector = Projector(d, cfg.projector_hidden_mult * d, d, hidden_layers=1)
        self.feature_loss = FEATURE_LOSSES[cfg.feature_loss]

    @torch.no_grad()
    def teacher_features(self, ema_model, x_teacher: torch.Tensor, t_teacher: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Raw output of the teacher's block k (no projector, no norm), blocks after k skipped: (B, N, D)."""
        _, hidden = ema_model(x_teacher, t_teacher, y, taps=(self.teacher_block,), stop_after=self.teacher_block)
        return hidden[self.teacher_block].detach()

    def alignment_loss(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        """feature_loss(h(z_l), z_k): (B, N, D) × (B, N, D) → scalar."""
        return self.feature_loss(self.projector(student_hidden), teacher_hidden)
