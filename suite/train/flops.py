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
    'aux': total − backbone (teachers, encoders, projectors)}. The one home of auxiliary accounting:
    `total` runs the method's own loss, so whatever it adds is counted, not declared.

    The backbone is fed the time form the method itself feeds (`method.student_times`, e.g. Self-Flow's
    TokenTimes with its configured mask ratio). With static-shape conditioning (suite.models.token_times)
    adaLN runs on the (B, K) levels whatever the mask: the count depends on K, not on the mask ratio.
    """
    b = batch.x0.shape[0]
    dev = batch.x0.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        t = method.student_times(b, model.num_tokens, dev)

        def backbone():
            model(batch.x0, t, batch.y).float().square().mean().backward()

        def total():
            method.loss(batch, model, ema, 0).loss.backward()

        fb = count_flops(backbone)
        ft = count_flops(total)
    model.zero_grad(set_to_none=True)
    method.zero_grad(set_to_none=True)
    return {"backbone": fb / b, "total": ft / b, "aux": (ft - fb) / b}
