"""Counting FLOPs of a model call with torch.utils.flop_counter (measuring.md §5: count, don't guess).
Lives with the models so methods (auxiliary forwards) and the trainer (whole steps) share it."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn) -> float:
    """FLOPs of fn(). Attention runs on the plain-maths kernel here: the counter has no formula for
    the fused CPU kernel, which would silently drop attention from the count."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def forward_flops(model, x, t, y, **kw) -> float:
    with torch.no_grad():
        return count_flops(lambda: model(x, t, y, **kw))  # count_flops already forces the maths attention
