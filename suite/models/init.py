"""The DiT / adaLN-Zero initialisation, shared by every backbone: xavier-uniform linears with zero
biases, N(0, 0.02) embedders, and zeroed modulation outputs and output layer, so every block
starts as the identity and the model's first prediction is zero."""
from __future__ import annotations

import torch.nn as nn


def init_adaln_zero(model: nn.Module, embedders: list[nn.Module], zeroed: list[nn.Linear]) -> None:
    """Xavier for every Linear of `model`, N(0, 0.02) for `embedders`' weights, zeros for `zeroed`."""

    def _basic(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    model.apply(_basic)
    for emb in embedders:
        nn.init.normal_(emb.weight, std=0.02)
    for layer in zeroed:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
