"""sFID's spatial features, as the ADM evaluator (guided-diffusion `evaluations/evaluator.py`) defines them.

ADM reads the TensorFlow Inception graph's `mixed_6/conv` tensor — the 1×1-conv branch (conv, batch
norm, ReLU) of the fifth 17×17 Inception block, (B, 17, 17, 192) — keeps its first 7 channels and
flattens them: 17·17·7 = 2023 features per image. In torch-fidelity's port of the same graph that
block is `Mixed_6d` and the branch is `Mixed_6d.branch1x1`. sFID is the Fréchet distance of these
features; unlike pool3 they keep where things are, so they see spatial structure FID averages away.
Flattened in ADM's (H, W, C) order (the Fréchet distance does not depend on the order anyway).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

SPATIAL_CHANNELS = 7
SPATIAL_DIM = 17 * 17 * SPATIAL_CHANNELS  # 2023


@contextmanager
def capture_spatial(inception_module):
    """Within the block, every forward of torch-fidelity's InceptionV3 appends (B, 2023) to the yielded list."""
    captured: list[torch.Tensor] = []

    def hook(_mod, _inp, out):  # out (B, 192, 17, 17)
        captured.append(out[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(out.shape[0], -1).float().cpu())

    handle = inception_module.Mixed_6d.branch1x1.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
