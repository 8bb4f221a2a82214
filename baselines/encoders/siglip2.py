"""SigLIP 2 image tower (the paper's T2I encoder).

Fixed-resolution checkpoints (google/siglip2-*-patch16-224 …, model_type "siglip") load into
`SiglipVisionModel`; NaFlex checkpoints (google/siglip2-*-naflex) into `Siglip2VisionModel`,
which takes pre-patchified pixels plus a mask and per-image grid shape. SigLIP normalises with
mean = std = 0.5, i.e. it reads pixels in [-1, 1]. No CLS token: every output token is a patch.
"""
from __future__ import annotations

import torch

from baselines.encoders.base import HALF, Encoder
from baselines.encoders.hf import load_hf_model
from baselines.encoders.registry import register_encoder

FIXED = {
    "siglip2-base-patch16-224": "google/siglip2-base-patch16-224",
    "siglip2-base-patch16-256": "google/siglip2-base-patch16-256",
    "siglip2-large-patch16-256": "google/siglip2-large-patch16-256",
    "siglip2-so400m-patch14-224": "google/siglip2-so400m-patch14-224",
    "siglip2-so400m-patch16-256": "google/siglip2-so400m-patch16-256",
}
NAFLEX = {
    "siglip2-base-patch16-naflex": "google/siglip2-base-patch16-naflex",
    "siglip2-so400m-patch16-naflex": "google/siglip2-so400m-patch16-naflex",
}


class SiglipFixedEncoder(Encoder):
    mean, std, resize_mode = HALF, HALF, "bicubic"

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        cfg = model.config
        self.embed_dim, self.patch_size, self.input_size = cfg.hidden_size, cfg.patch_size, cfg.image_size

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        native = x.shape[-1] == self.model.config.image_size
        out = self.model(pixel_values=x, interpolate_pos_encoding=not native)
        return out.last_hidden_state  # (B, T, D), post-LayerNorm


class Siglip2NaflexEncoder(Encoder):
    mean, std, resize_mode, input_size = HALF, HALF, "bilinear", 256

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        cfg = model.config
        self.embed_dim, self.patch_size = cfg.hidden_size, cfg.patch_size

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        p = self.patch_size
        h, w = hh // p, ww // p
        # the processor's layout: (B, h·w, p·p·C), channel fastest
        patches = x.reshape(b, c, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, p * p * c)
        mask = torch.ones(b, h * w, dtype=torch.long, device=x.device)
        shapes = torch.tensor([[h, w]] * b, dtype=torch.long, device=x.device)
        out = self.model(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes)
        return out.last_hidden_state  # (B, T, D)


def _load(name: str, path: str | None, cache_dir: str | None) -> Encoder:
    import transformers

    if name in NAFLEX:
        return Siglip2NaflexEncoder(name, load_hf_model(transformers.Siglip2VisionModel, name, NAFLEX[name], path, cache_dir))
    return SiglipFixedEncoder(name, load_hf_model(transformers.SiglipVisionModel, name, FIXED[name], path, cache_dir))


for _name in (*FIXED, *NAFLEX):
    register_encoder(_name)(lambda path=None, cache_dir=None, _n=_name: _load(_n, path, cache_dir))
