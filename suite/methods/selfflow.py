"""Self-Flow: Dual-Timestep Scheduling + EMA-teacher representation loss (selfflow.md §2–4).

Training step (t = 1 noise):
    t, s ~ p(t) iid (B,), unsorted;  m ~ Bernoulli(R_M) (B, N);  τ = where(m, s, t)
    x1 ~ N(0, I) shared;  x_τ = (1 − τ)·x0 + τ·x1 per token;  τmin = min(t, s)
    v̂, z_l = student(x_τ, τ, y_dropped);  q = h(z_l)          h: D → 2D → D
    z_k = stopgrad(teacher(x_τmin, τmin, y_dropped) up to block k)   (raw block output)
    L = mean‖v̂ − (x1 − x0)‖² + γ · mean(1 − cos(q, z_k))

Every choice is a field, so the paper's ablations are configs (suite/configs/ablations/):
  gamma=0 (no L_rep) · mask_ratio=0 (single t) · second_time=window (s ∈ [t − 0.2, t]) ·
  feature_loss=l1 · second_time=per_token (diffusion forcing) · second_time=noise (full masking) ·
  attention_separation=true (arXiv 2607.02508).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from suite.errors import ConfigError
from suite.flow import broadcast_time, cleaner, interpolate, velocity_target
from suite.methods.base import Batch, MethodOutput, TeacherAlignmentConfig, TeacherAlignmentMethod, check_range, mse
from suite.methods.registry import register_method
from suite.models.token_times import Times, TokenTimes, per_token_times

@dataclass
class SelfFlowConfig(TeacherAlignmentConfig):
    """Also: student_block, teacher_block, feature_loss (cosine | l1), projector_hidden_mult."""

    mask_ratio: float = 0.25  # R_M: images 0.25, video 0.10, audio 0.50
    gamma: float = 0.8  # weight of L_rep
    # iid | window (s ∈ [t − window, t]) | per_token (diffusion forcing) | noise (s = 1)
    second_time: Literal["iid", "window", "per_token", "noise"] = "iid"
    window: float = 0.2
    sort_times: bool = False  # ablation: make the masked tokens always the noisier ones (s ≥ t)
    teacher_time: Literal["min", "max", "student"] = "min"  # min: cleaner of t, s (the paper); student: same per-token τ
    attention_separation: bool = False  # masked and unmasked tokens attend only within their group

    def validate(self, model) -> None:
        super().validate(model)
        check_range("method.mask_ratio", self.mask_ratio, 0.0, 1.0)
        check_range("method.window", self.window, 0.0, 1.0)
        if self.gamma < 0:
            raise ConfigError(f"method.gamma: must be ≥ 0, got {self.gamma}")


@dataclass
class DualTimesteps:
    """What the student and teacher are fed; returned for tests and ablation checks."""

    t: torch.Tensor  # (B,)
    s: torch.Tensor  # (B,)
    mask: torch.Tensor  # (B, N) bool, True = token at time s
    tau: torch.Tensor  # (B, N) per-token student time (spread over the data)
    teacher_t: Times  # (B,), or the student's form when teacher_time=student
    student: Times  # what the student backbone gets: TokenTimes (t, s) by mask, or (B, N) per token


@register_method("selfflow", SelfFlowConfig)
class SelfFlow(TeacherAlignmentMethod):

    @property
    def uses_rep_loss(self) -> bool:
        return self.cfg.gamma > 0

    def draw_timesteps(self, batch_size: int, num_tokens: int, device) -> DualTimesteps:
        """Dual-Timestep Scheduling (§2) with the ablation switches."""
        c = self.cfg
        t = self.time_sampler.sample((batch_size,), device=device)  # (B,)
        if c.second_time == "iid":
            s = self.time_sampler.sample((batch_size,), device=device)
        elif c.second_time == "window":  # s ∈ [t − window, t], clamped at data
            s = (t - c.window * torch.rand(batch_size, device=device)).clamp(min=0.0)
        elif c.second_time == "noise":  # full masking: masked tokens are pure noise
            s = torch.ones(batch_size, device=device)
        else:  # per_token: independent t per token (diffusion forcing)
            s = t
        if c.sort_times:
            t, s = torch.minimum(t, s), torch.maximum(t, s)
        mask = torch.rand(batch_size, num_tokens, device=device) < c.mask_ratio  # (B, N)
        if c.second_time == "per_token":
            tau = self.time_sampler.sample((batch_size, num_tokens), device=device)  # (B, N)
            mask = torch.ones_like(mask)
            student: Times = tau  # arbitrary per-token times: conditioning per token
        else:
            student = TokenTimes.dual(t, s, mask)  # two levels per sample, static shapes
            tau = student.per_token()  # (B, N) = where(mask, s, t)
        if c.teacher_time == "student":
            teacher_t = student
        elif c.second_time == "per_token":  # the cleanest level present in the sample (guess)
            teacher_t = tau.amin(dim=1) if c.teacher_time == "min" else tau.amax(dim=1)
        else:
            teacher_t = cleaner(t, s) if c.teacher_time == "min" else torch.maximum(t, s)
        return DualTimesteps(t=t, s=s, mask=mask, tau=tau, teacher_t=teacher_t, student=student)

    def student_times(self, batch_size: int, num_tokens: int, device) -> Times:
        return self.draw_timesteps(batch_size, num_tokens, device).student

    def teacher_input_time(self, teacher_t: Times, model, x0: torch.Tensor) -> torch.Tensor:
        """(B,), (B, N) or TokenTimes → what to spread over the data for the teacher's x."""
        if isinstance(teacher_t, torch.Tensor) and teacher_t.dim() == 1:
            return broadcast_time(teacher_t, x0)
        return model.modality.expand_token_values(per_token_times(teacher_t, model.num_tokens))

    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:
        c = self.cfg
        x0 = batch.x0  # (B, C, H, W) images; (B, C, T, H, W) video; (B, C, L) audio
        core = getattr(model, "module", model)  # DDP-wrapped or not
        b, n = x0.shape[0], core.num_tokens
        ts = self.draw_timesteps(b, n, x0.device)
        x1 = torch.randn_like(x0)  # one shared noise draw for student and teacher
        x_tau = interpolate(x0, x1, core.modality.expand_token_values(ts.tau))  # (B, C, H, W)
        y = self.drop_labels(batch.y)  # shared with the teacher
        groups = ts.mask.long() if c.attention_separation else None
        taps = (self.student_block,) if self.uses_rep_loss else ()
        v, hidden = model(x_tau, ts.student, y, taps=taps, attn_groups=groups)
        loss_gen = mse(v, velocity_target(x0, x1))
        terms = {"gen": loss_gen}
        loss = loss_gen
        if self.uses_rep_loss:
            x_teacher = interpolate(x0, x1, self.teacher_input_time(ts.teacher_t, core, x0))  # same x0, x1
            z_k = self.teacher_features(ema_model, x_teacher, ts.teacher_t, y)  # (B, N, D)
            loss_rep = self.alignment_loss(hidden[self.student_block], z_k)
            loss = loss + c.gamma * loss_rep
            terms["rep"] = loss_rep
        logs = {"mask_frac": ts.mask.float().mean(), "t_mean": ts.tau.mean()}  # tensors: no host sync
        return MethodOutput(loss=loss, terms=terms, logs=logs)
