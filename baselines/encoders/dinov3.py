"""DINOv3 ViTs (patch 16, RoPE, 4 register tokens) through transformers' `DINOv3ViTModel`.

Default input 256 → 16×16 tokens, the ImageNet-256 SiT grid (RoPE: any size works).
"""
from __future__ import annotations

import torch

from baselines.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Encoder
from baselines.encoders.hf import load_hf_model
from baselines.encoders.registry import register_encoder

VARIANTS = {
    "dinov3-vits16": "facebook/dinov3-vits16-pretrain-lvd1689m",
    "dinov3-vits16plus": "facebook/dinov3-vits16plus-pretrain-lvd1689m",
    "dinov3-vitb16": "facebook/dinov3-vitb16-pretrain-lvd1689m",
    "dinov3-vitl16": "facebook/dinov3-vitl16-pretrain-lvd1689m",
    "dinov3-vith16plus": "facebook/dinov3-vith16plus-pretrain-lvd1689m",
    "dinov3-vit7b16": "facebook/dinov3-vit7b16-pretrain-lvd1689m",
}


class Dinov3Encoder(Encoder):
    mean, std, input_size = IMAGENET_MEAN, IMAGENET_STD, 256

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        cfg = model.config
        self.embed_dim, self.patch_size = cfg.hidden_size, cfg.patch_size
        self.num_prefix = 1 + int(cfg.num_register_tokens)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self.model(pixel_values=x).last_hidden_state  # (B, 1 + R + T, D), final norm applied
        return h[:, self.num_prefix:]  # (B, T, D)


def _load(name: str, path: str | None, cache_dir: str | None) -> Encoder:
    from transformers import DINOv3ViTModel

    return Dinov3Encoder(name, load_hf_model(DINOv3ViTModel, name, VARIANTS[name], path, cache_dir))


for _name in VARIANTS:
    register_encoder(_name)(lambda path=None, cache_dir=None, _n=_name: _load(_n, path, cache_dir))
