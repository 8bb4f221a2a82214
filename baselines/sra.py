"""SRA (Jiang et al., repository vvvvvjdy/SRA; selfflow.md §7): self-representation alignment.

    t ~ p(t) (B,);  t_T = max(t − U(0, Δ), 0), Δ = 0.2   (t = 1 noise: the teacher is cleaner)
    x_t, x_tT from the same x0 and the same noise x1;  labels dropped once, shared
    v̂, z_l = model(x_t, t, y);  z_k = stopgrad(ema(x_tT, t_T, y) up to block k)   (raw output)
    L = mean‖v̂ − (x1 − x0)‖² + 0.5 · mean(1 − cos(h(z_l), z_k)),  h: D → 2D → D

Unlike Self-Flow every token shares one time (no dual timesteps), and the teacher is cleaner by
a small random margin rather than by the other of two independent draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.errors import ConfigError
from suite.flow import broadcast_time, interpolate, velocity_target
from suite.methods.base import Batch, MethodOutput, TeacherAlignmentConfig, TeacherAlignmentMethod, check_range, mse
from suite.methods.registry import register_method


@dataclass
class SraConfig(TeacherAlignmentConfig):
    """Also: student_block (8 of 28), teacher_block (20 of 28), feature_loss, projector_hidden_mult."""

    weight: float = 0.5
    max_time_gap: float = 0.2  # teacher time t − U(0, max_time_gap), clamped at data (t = 0)

    def validate(self, model) -> None:
        super().validate(model)
        check_range("method.max_time_gap", self.max_time_gap, 0.0, 1.0)
        if self.weight < 0:
            raise ConfigError(f"method.weight: must be ≥ 0, got {self.weight}")


@register_method("sra", SraConfig)
class Sra(TeacherAlignmentMethod):

    def teacher_times(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) student times → (B,) teacher times, never noisier: t − U(0, Δ) clamped at 0."""
        gap = self.cfg.max_time_gap * torch.rand(t.shape, device=t.device)
        return (t - gap).clamp(min=0.0)

    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:
        x0 = batch.x0  # (B, C, H, W)
        t = self.time_sampler.sample((x0.shape[0],), device=x0.device)  # (B,)
        x1 = torch.randn_like(x0)  # shared by student and teacher
        y = self.drop_labels(batch.y)  # shared by student and teacher
        v, hidden = model(interpolate(x0, x1, broadcast_time(t, x0)), t, y, taps=(self.student_block,))
        loss_gen = mse(v, velocity_target(x0, x1))
        t_teacher = self.teacher_times(t)  # (B,)
        z_k = self.teacher_features(ema_model, interpolate(x0, x1, broadcast_time(t_teacher, x0)), t_teacher, y)  # (B, N, D)
        loss_rep = self.alignment_loss(hidden[self.student_block], z_k)
        return MethodOutput(
            loss=loss_gen + self.cfg.weight * loss_rep,
            terms={"gen": loss_gen.detach(), "rep": loss_rep.detach()},
            logs={"t_mean": t.mean().detach(), "teacher_gap": (t - t_teacher).mean().detach()},
        )
