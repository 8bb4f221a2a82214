"""Count, don't guess (measuring.md §5): FLOPs per image with torch.utils.flop_counter.

- backbone: forward + backward of the generator on one batch.
- total: the method's whole training step (student forward/backward, projectors, EMA-teacher
  forward up to block k, frozen encoders), so auxiliaries are never hidden in iso-FLOP plots.
"""
from __future__ import annotations

import torch

from suite.models.flops import count_flops, forward_flops  # noqa: F401  (re-exported)


def training_flops_per_image(model, ema, method, batch) -> dict[str, float]:
    """{'backbone': fwd+bwd of the generator as the method runs it, 'total': the method's whole step,
    'aux': total − backbone (teachers, encoders, projectors)}.

    Methods with per-token timesteps are counted with two time levels per sample: the backbone
    computes adaLN once per distinct (sample, time) level (suite.models.sit.Conditioning).
    """
    b = batch.x0.shape[0]
    dev = batch.x0.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        t = torch.rand(b, device=dev)
        if method.per_token_timesteps:  # two time levels per sample, as dual-timestep training has
            second = torch.rand(b, device=dev)
            t = torch.where(torch.arange(model.num_tokens, device=dev) % 4 == 0, second[:, None], t[:, None])  # (B, N)

        def backbone():
            model(batch.x0, t, batch.y).float().square().mean().backward()

        def total():
            method.loss(batch, model, ema, 0).loss.backward()

        fb = count_flops(backbone)
        ft = count_flops(total)
    model.zero_grad(set_to_none=True)
    method.zero_grad(set_to_none=True)
    return {"backbone": fb / b, "total": ft / b, "aux": (ft - fb) / b}
