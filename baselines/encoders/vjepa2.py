"""V-JEPA 2 video encoders (transformers `VJEPA2Model`, facebook/vjepa2-*), for REPA on video.

Input: clips (B, 3, T, H, W) in [-1, 1]; each frame resized (bicubic) to `input_size` (the
checkpoint's crop size: 256, or 384 for the -384 models) and normalised with ImageNet mean/std;
T is padded by repeating frames to a multiple of the tubelet size (2). Output: the encoder's
last hidden state (final LayerNorm applied; the predictor is skipped), one token per tubelet on a
(T/2, H/16, W/16) grid, which REPA resamples to the generator's (t, h, w) token grid. V-JEPA 2
uses 3-D RoPE, so any number of frames and any input size work without interpolating positions.
"""
from __future__ import annotations

import math

import torch

from suite.data.resample import resample_frames, resize_frames

from baselines.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Encoder
from baselines.encoders.hf import load_hf_model
from baselines.encoders.registry import register_encoder

VARIANTS = {
    "vjepa2-vitl-fpc64-256": "facebook/vjepa2-vitl-fpc64-256",
    "vjepa2-vith-fpc64-256": "facebook/vjepa2-vith-fpc64-256",
    "vjepa2-vitg-fpc64-256": "facebook/vjepa2-vitg-fpc64-256",
    "vjepa2-vitg-fpc64-384": "facebook/vjepa2-vitg-fpc64-384",
}


class VJEPA2Encoder(Encoder):
    modality = "video"
    mean, std, resize_mode = IMAGENET_MEAN, IMAGENET_STD, "bicubic"

    def __init__(self, name: str, model):
        super().__init__()
        self.name, self.model = name, model
        cfg = model.config
        p = cfg.patch_size
        self.patch_size = int(p[0] if isinstance(p, (list, tuple)) else p)
        self.embed_dim, self.input_size, self.tubelet = cfg.hidden_size, cfg.crop_size, cfg.tubelet_size

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] → (B, T', 3, S, S) normalised, T' a multiple of the tubelet size."""
        if pixels.dim() != 5 or pixels.shape[1] != 3:
            from suite.errors import SuiteError

            raise SuiteError(f"encoder {self.name}: expected video (B, 3, T, H, W), got {tuple(pixels.shape)}")
        x = resize_frames((pixels.float() + 1.0) / 2.0, self.input_size, self.resize_mode)  # (B, 3, T, S, S) in [0, 1]
        t = pixels.shape[2]
        x = resample_frames(x, self.tubelet * math.ceil(t / self.tubelet))  # (B, 3, T', S, S)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        return ((x - mean) / std).transpose(1, 2)  # (B, T', 3, S, S): the layout VJEPA2Model reads

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values_videos=x, skip_predictor=True)
        return out.last_hidden_state  # (B, T'/2 · S/16 · S/16, D)

    def token_grid(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[1] // self.tubelet, x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)


def _load(name: str, path: str | None, cache_dir: str | None) -> Encoder:
    import transformers

    return VJEPA2Encoder(name, load_hf_model(transformers.VJEPA2Model, name, VARIANTS[name], path, cache_dir))


for _name in VARIANTS:
    register_encoder(_name)(lambda path=None, cache_dir=None, _n=_name: _load(_n, path, cache_dir))
