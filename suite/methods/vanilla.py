"""Vanilla flow matching: one t per sample, L = MSE(v̂, x1 − x0)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.flow import broadcast_time, interpolate, velocity_target
from suite.methods.base import Batch, Method, MethodConfig, MethodOutput, mse
from suite.methods.registry import register_method


@dataclass
class VanillaConfig(MethodConfig):
    pass


@register_method("vanilla", VanillaConfig)
class VanillaFlowMatching(Method):
    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:
        x0 = batch.x0  # (B, C, H, W)
        t = self.time_sampler.sample((x0.shape[0],), device=x0.device)  # (B,)
        x1 = torch.randn_like(x0)
        xt = interpolate(x0, x1, broadcast_time(t, x0))
        v = model(xt, t, self.drop_labels(batch.y))  # (B, C, H, W)
        loss_gen = mse(v, velocity_target(x0, x1))
        return MethodOutput(loss=loss_gen, terms={"gen": loss_gen}, logs={"t_mean": t.mean().detach()})
