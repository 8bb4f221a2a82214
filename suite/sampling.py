"""Samplers for dx/dt = v(x, t), integrated from t = 1 (noise) to t = 0 (data); see suite.flow.

Each sampler takes any velocity callable `v(x, t, **cond)` with t of shape (B,), so it can be
tested on fields with closed forms. `sample_images` wires them to a model, CFG and a seed.
"""
from __future__ import annotations

from typing import Callable

import torch

from suite.flow import time_shift

Velocity = Callable[..., torch.Tensor]


def time_grid(steps: int, shift: float = 1.0, t_end: float = 0.0, device=None) -> torch.Tensor:
    """steps + 1 times from 1 down to t_end, with the sample shift applied to a uniform grid."""
    u = torch.linspace(1.0, 0.0, steps + 1, device=device, dtype=torch.float64)
    t = time_shift(u, shift)
    return (t_end + (1.0 - t_end) * t).float()


def _full(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.expand(x.shape[0]).to(x.dtype)  # scalar time → (B,)


@torch.no_grad()
def euler(v: Velocity, x: torch.Tensor, steps: int = 50, shift: float = 1.0, **cond) -> torch.Tensor:
    ts = time_grid(steps, shift, device=x.device)
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t_cur) * v(x, _full(t_cur, x), **cond)
    return x


@torch.no_grad()
def heun(v: Velocity, x: torch.Tensor, steps: int = 50, shift: float = 1.0, **cond) -> torch.Tensor:
    """Second-order (trapezoidal) predictor–corrector on the same grid."""
    ts = time_grid(steps, shift, device=x.device)
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        d_cur = v(x, _full(t_cur, x), **cond)
        x_pred = x + (t_next - t_cur) * d_cur
        d_next = v(x_pred, _full(t_next, x), **cond)
        x = x + (t_next - t_cur) * 0.5 * (d_cur + d_next)
    return x


def score_from_velocity(v: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """∇ log p_t(x) for x_t = (1 − t)·x0 + t·x1: E[x1 | x_t] = x + (1 − t)·v, score = −E[x1 | x_t] / t."""
    t = t.view(-1, *([1] * (x.dim() - 1)))
    return -(x + (1.0 - t) * v) / t


@torch.no_grad()
def euler_maruyama(
    v: Velocity,
    x: torch.Tensor,
    steps: int = 250,
    shift: float = 1.0,
    last_step: float = 0.04,
    diffusion_scale: float = 1.0,
    generator: torch.Generator | None = None,
    **cond,
) -> torch.Tensor:
    """SiT's SDE sampler in the "sigma" diffusion form, in sampling time τ = 1 − t:

        dx = [−v + D(t)·∇log p_t] dτ + √(2·D(t)) dW,   D(t) = diffusion_scale · t,

    which has the same marginals as the ODE. Integrated from t = 1 to t = last_step, then one
    final mean (noise-free) step to t = 0, as in SiT.
    """
    ts = time_grid(steps, shift, t_end=last_step, device=x.device)

    def drift(x, t):
        vel = v(x, _full(t, x), **cond)
        d = diffusion_scale * t
        # D·score = −D·(x + (1 − t)·v)/t is finite at small t because D ∝ t.
        return -vel - diffusion_scale * (x + (1.0 - t) * vel), d

    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        dtau = t_cur - t_next  # > 0
        f, d = drift(x, t_cur)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + f * dtau + torch.sqrt(2.0 * d * dtau) * noise
    f, _ = drift(x, ts[-1])
    return x + f * ts[-1]  # final mean step to t = 0


def guided(model, cfg_scale: float, interval: tuple[float, float]) -> Velocity:
    """Velocity with classifier-free guidance v_u + w·(v_c − v_u), only for t in [lo, hi]."""
    lo, hi = interval

    def v(x, t, y):
        inside = (t >= lo) & (t <= hi)  # (B,)
        if cfg_scale == 1.0 or not bool(inside.any()):
            return model(x, t, y)
        vg = model.forward_with_cfg(x, t, y, cfg_scale)
        if bool(inside.all()):
            return vg
        return torch.where(inside.view(-1, *([1] * (x.dim() - 1))), vg, model(x, t, y))

    return v


def draw_labels(n: int, num_classes: int, how: str, generator: torch.Generator) -> torch.Tensor:
    if how == "balanced":
        return torch.arange(n) % num_classes
    return torch.randint(0, num_classes, (n,), generator=generator)


@torch.no_grad()
def sample_images(model, n: int, sampling_cfg, device, seed: int | None = None, labels: torch.Tensor | None = None,
                  batch_size: int = 256, progress: bool = False, clamp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples (n, C, H, W) and their labels; deterministic given the seed.

    `clamp`: clip to [-1, 1] (pixels). Latents (VAE-scaled, about ±4) must not be clipped: pass False.
    """
    from tqdm.auto import tqdm

    c = sampling_cfg
    g = torch.Generator().manual_seed(c.seed if seed is None else seed)
    if labels is None:
        labels = draw_labels(n, model.num_classes, c.label_sampling, g)
    shape = model.modality.data_shape
    v = guided(model, c.cfg_scale, tuple(c.guidance_interval))
    out = []
    for start in tqdm(range(0, n, batch_size), desc="sampling", disable=not progress, leave=False):
        y = labels[start:start + batch_size].to(device)
        x = torch.randn((y.shape[0], *shape), generator=g).to(device)
        if c.sampler == "euler":
            x = euler(v, x, c.steps, c.shift, y=y)
        elif c.sampler == "heun":
            x = heun(v, x, c.steps, c.shift, y=y)
        else:
            sde_g = torch.Generator(device=device).manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
            x = euler_maruyama(v, x, c.steps, c.shift, c.sde_last_step, c.diffusion_scale, generator=sde_g, y=y)
        out.append((x.float().clamp(-1, 1) if clamp else x.float()).cpu())
    return torch.cat(out), labels


def describe(sampling_cfg) -> dict:
    """What to record beside every metric computed on samples."""
    c = sampling_cfg
    return {"sampler": c.sampler, "steps": c.steps, "shift": c.shift, "cfg_scale": c.cfg_scale,
            "guidance_interval": list(c.guidance_interval), "label_sampling": c.label_sampling, "seed": c.seed}


__all__ = ["euler", "heun", "euler_maruyama", "guided", "sample_images", "time_grid", "score_from_velocity", "describe"]
