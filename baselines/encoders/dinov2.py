"""DINOv2 ViT-S/B/L/G, patch 14 (REPA's default encoder family).

Two real code paths: a `transformers` directory (`Dinov2Model` / `Dinov2WithRegistersModel`,
as published on the hub as facebook/dinov2-*) or the original torch.hub checkpoint file
(`dinov2_vitb14_pretrain.pth`) read through timm's DINOv2 ViT, which converts its keys.
REPA resizes 256² images bicubically to 224 → 16×16 patch tokens (its `x_norm_patchtokens`:
the final LayerNorm applied, CLS and registers dropped).
"""
from __future__ import annotations

from pathlib import Path

import torch

from suite.errors import MissingFileError

from baselines.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Encoder
from baselines.encoders.hf import load_hf_model
from baselines.encoders.registry import register_encoder

# name → (hub repo, timm architecture, torch.hub checkpoint file)
VARIANTS = {
    "dinov2-vits14": ("facebook/dinov2-small", "vit_small_patch14_dinov2", "dinov2_vits14_pretrain.pth"),
    "dinov2-vitb14": ("facebook/dinov2-base", "vit_base_patch14_dinov2", "dinov2_vitb14_pretrain.pth"),
    "dinov2-vitl14": ("facebook/dinov2-large", "vit_large_patch14_dinov2", "dinov2_vitl14_pretrain.pth"),
    "dinov2-vitg14": ("facebook/dinov2-giant", "vit_giant_patch14_dinov2", "dinov2_vitg14_pretrain.pth"),
    "dinov2-vits14-reg": ("facebook/dinov2-with-registers-small", "vit_small_patch14_reg4_dinov2", "dinov2_vits14_reg4_pretrain.pth"),
    "dinov2-vitb14-reg": ("facebook/dinov2-with-registers-base", "vit_base_patch14_reg4_dinov2", "dinov2_vitb14_reg4_pretrain.pth"),
    "dinov2-vitl14-reg": ("facebook/dinov2-with-registers-large", "vit_large_patch14_reg4_dinov2", "dinov2_vitl14_reg4_pretrain.pth"),
    "dinov2-vitg14-reg": ("facebook/dinov2-with-registers-giant", "vit_giant_patch14_reg4_dinov2", "dinov2_vitg14_reg4_pretrain.pth"),
}


class HFDinov2Encoder(Encoder):
    """transformers DINOv2 (with or without registers): drop CLS (+ registers), keep patch tokens."""

    mean, std, input_size = IMAGENET_MEAN, IMAGENET_STD, 224

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        cfg = model.config
        self.embed_dim, self.patch_size = cfg.hidden_size, cfg.patch_size
        self.num_prefix = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self.model(pixel_values=x).last_hidden_state  # (B, prefix + T, D), final LayerNorm applied
        return h[:, self.num_prefix:]  # (B, T, D)


class TimmDinov2Encoder(Encoder):
    """timm DINOv2 ViT (any input size): `forward_features` minus prefix tokens."""

    mean, std, input_size = IMAGENET_MEAN, IMAGENET_STD, 224

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        self.embed_dim = model.embed_dim
        self.patch_size = model.patch_embed.patch_size[0]
        self.num_prefix = model.num_prefix_tokens

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)[:, self.num_prefix:]  # (B, T, D), normed


def _load(name: str, path: str | None, cache_dir: str | None, **timm_kwargs) -> Encoder:
    repo_id, timm_arch, hub_file = VARIANTS[name]
    if path is not None and Path(path).suffix in (".pth", ".pt", ".safetensors"):
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingFileError(f"encoder {name}: needs the checkpoint file {p} "
                                   f"(normally obtained from https://dl.fbaipublicfiles.com/dinov2/ as {hub_file})")
        import timm

        model = timm.create_model(timm_arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(p)),
                                  num_classes=0, dynamic_img_size=True, **timm_kwargs)
        return TimmDinov2Encoder(name, model)
    import transformers

    cls = transformers.Dinov2WithRegistersModel if name.endswith("-reg") else transformers.Dinov2Model
    return HFDinov2Encoder(name, load_hf_model(cls, name, repo_id, path, cache_dir))


for _name in VARIANTS:
    register_encoder(_name)(lambda path=None, cache_dir=None, _n=_name, **kw: _load(_n, path, cache_dir, **kw))
