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
from typing import Optional

import torch

from suite.errors import ConfigError
from suite.flow import broadcast_time, interpolate, velocity_target
from suite.methods.base import FEATURE_LOSSES, Batch, Method, MethodConfig, MethodOutput, Projector, mse
from suite.methods.registry import register_method
from suite.models.presets import default_layers


@dataclass
class SraConfig(MethodConfig):
    weight: float = 0.5
    student_block: Optional[int] = None  # l; None: round(0.3·depth) (8 of 28)
    teacher_block: Optional[int] = None  # k; None: round(0.7·depth) (20 of 28)
    max_time_gap: float = 0.2  # teacher time t − U(0, max_time_gap), clamped at data (t = 0)
    feature_loss: str = "cosine"  # cosine | l1
    projector_hidden_mult: int = 2  # h: D → mult·D → D


@register_method("sra", SraConfig)
class Sra(Method):
    needs_ema_teacher = True

    def __init__(self, cfg: SraConfig, model, time_sampler):
        super().__init__(cfg, model, time_sampler)
        if cfg.feature_loss not in FEATURE_LOSSES:
            raise ConfigError(f"method.feature_loss: {cfg.feature_loss!r} not allowed; allowed: {', '.join(FEATURE_LOSSES)}")
        if not 0.0 <= cfg.max_time_gap <= 1.0:
            raise ConfigError(f"method.max_time_gap: must be in [0, 1], got {cfg.max_time_gap}")
        l, k = default_layers(model.depth)
        self.student_block = cfg.student_block or l
        self.teacher_block = cfg.teacher_block or k
        for key, b in (("student_block", self.student_block), ("teacher_block", self.teacher_block)):
            if not 1 <= b <= model.depth:
                raise ConfigError(f"method.{key}: block {b} outside 1..{model.depth}")
        d = model.hidden_size
        self.projector = Projector(d, cfg.projector_hidden_mult * d, d, hidden_layers=1)

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
        q = self.projector(hidden[self.student_block])  # (B, N, D)
        t_teacher = self.teacher_times(t)  # (B,)
        with torch.no_grad():
            x_teacher = interpolate(x0, x1, broadcast_time(t_teacher, x0))
            _, th = ema_model(x_teacher, t_teacher, y, taps=(self.teacher_block,), stop_after=self.teacher_block)
            z_k = th[self.teacher_block].detach()  # (B, N, D) raw block output
        loss_rep = FEATURE_LOSSES[self.cfg.feature_loss](q, z_k)
        return MethodOutput(
            loss=loss_gen + self.cfg.weight * loss_rep,
            terms={"gen": loss_gen.detach(), "rep": loss_rep.detach()},
            logs={"t_mean": t.mean().item(), "teacher_gap": (t - t_teacher).mean().item()},
        )

    def aux_forward_flops(self, model, batch_shape) -> float:
        """Per image: the EMA teacher's forward through blocks 1..k (no backward)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        from suite.train.flops import forward_flops

        p = next(model.parameters())
        x = torch.zeros(1, *batch_shape[1:], device=p.device, dtype=p.dtype)
        t, y = torch.full((1,), 0.5, device=p.device), torch.zeros(1, dtype=torch.long, device=p.device)
        with sdpa_kernel(SDPBackend.MATH):  # FlopCounterMode has no formula for CPU flash attention
            return forward_flops(model, x, t, y, taps=(self.teacher_block,), stop_after=self.teacher_block)
