"""The method interface: given a batch, the model(s) and the step, return loss terms and logs.

The trainer never branches on a method's name. A method is an nn.Module so that its own trainable
parts (projectors) are optimised and checkpointed with the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.errors import ConfigError
from suite.models.conditions import drop_conditions
from suite.models.presets import default_layers


@dataclass
class MethodConfig:
    """Fields every method has. Subclass it for a method's own switches."""

    name: str = ""
    label_dropout: float = 0.1  # CFG condition dropout (guess: 0.1); shared with any teacher

    def resolve(self, data_cfg) -> None:
        """Fill fields whose default is a fact about the data (e.g. REPA's audio encoders: the
        data's sample rate). Runs once when the config is loaded, before `validate`, so the
        resolved config records the value. Default: nothing to fill."""

    def validate(self, model) -> None:
        """Cross-field facts about this method's switches and the backbone it trains, one
        ConfigError line each. Runs when the config is loaded (against a meta-device twin of the
        backbone, so `suite config` rejects what `suite train` would) and again when the method
        is built. Subclasses extend it (call super)."""
        check_range("method.label_dropout", self.label_dropout, 0.0, 1.0)


def check_range(key: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{key}: must be in [{lo:g}, {hi:g}], got {value}")


def resolve_block(key: str, block: Optional[int], default: int, depth: int) -> int:
    """A configured block (1-indexed; None: the default) checked against the backbone's depth."""
    b = block or default
    if not 1 <= b <= depth:
        raise ConfigError(f"{key}: block {b} outside 1..{depth} (the backbone has {depth} blocks)")
    return b


@dataclass
class Batch:
    x0: torch.Tensor  # (B, C, H, W) what the generator learns (pixels or latents)
    y: torch.Tensor  # (B,) class labels, (B, L) caption ids or (B, L, E) caption embeddings (suite.models.conditions)
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
        cfg.validate(model)
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
        """Replace the condition by the null one with probability `label_dropout` (one draw per sample).

        y: (B,) class labels, (B, L) caption token ids (a dropped caption is all null tokens) or
        (B, L, E) caption embeddings (a dropped caption is all zero tokens): suite.models.conditions.
        """
        if self.cfg.label_dropout <= 0:
            return y
        drop = torch.rand(y.shape[0], device=y.device) < self.cfg.label_dropout  # (B,)
        return drop_conditions(y, drop, self.null_class)


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


@dataclass
class TeacherAlignmentConfig(MethodConfig):
    """Switches shared by Self-Flow and SRA (an EMA teacher's block k aligned to the student's block l)."""

    student_block: Optional[int] = None  # l (1-indexed); None: round(0.3·depth)
    teacher_block: Optional[int] = None  # k (1-indexed); None: round(0.7·depth)
    feature_loss: Literal["cosine", "l1"] = "cosine"
    projector_hidden_mult: int = 2  # h: D → mult·D → D

    def validate(self, model) -> None:
        super().validate(model)
        l, k = default_layers(model.depth)
        resolve_block("method.student_block", self.student_block, l, model.depth)
        resolve_block("method.teacher_block", self.teacher_block, k, model.depth)
        if self.projector_hidden_mult < 1:
            raise ConfigError(f"method.projector_hidden_mult: must be ≥ 1, got {self.projector_hidden_mult}")


class TeacherAlignmentMethod(Method):
    """Shared by Self-Flow and SRA: the student's block l, through a D → mult·D → D projector, is
    aligned to the raw output of block k of the EMA teacher (l = round(0.3·depth), k = round(0.7·depth)).

    Its config is a `TeacherAlignmentConfig`.
    """

    needs_ema_teacher = True

    def __init__(self, cfg: TeacherAlignmentConfig, model, time_sampler):
        super().__init__(cfg, model, time_sampler)
        l, k = default_layers(model.depth)
        self.student_block = resolve_block("method.student_block", cfg.student_block, l, model.depth)
        self.teacher_block = resolve_block("method.teacher_block", cfg.teacher_block, k, model.depth)
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
