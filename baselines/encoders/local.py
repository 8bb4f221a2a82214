"""`local`: a small ViT trained by `suite encoder train` on a built-in dataset, read back by path.

Images (3, S, S) → p×p patches; video (3, T, S, S) → pt×p×p tubelets on a (T/pt, S/p, S/p) grid;
audio (1, L) → runs of p samples on an (L/p,) grid: the same transformer for all three.

This is what makes REPA runnable on a fresh machine with no download: the demo aligns to an
encoder trained here. A directory holds `encoder.json` (architecture, normalisation, provenance)
and `encoder.pt` (state dict).
"""
from __future__ import annotations

import json
import math
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.errors import CheckpointError, MissingFileError

from baselines.encoders.base import Encoder, square_grid
from baselines.encoders.registry import register_encoder

CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.pt"


@dataclass
class TinyViTConfig:
    input_size: int = 16  # image / frame side; audio: clip length in samples
    patch_size: int = 2  # audio: samples per token
    embed_dim: int = 64
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 2.0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])  # on [0, 1] pixels
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    modality: str = "image"  # image | video | audio
    frames: int = 0  # video: frames per clip
    temporal_patch: int = 1  # video: frames per tubelet

    @property
    def grid(self) -> tuple[int, ...]:
        """Token grid: (h, w) images, (t, h, w) video, (n,) audio."""
        n = self.input_size // self.patch_size
        if self.modality == "audio":
            return (n,)
        if self.modality == "video":
            return (self.frames // self.temporal_patch, n, n)
        return (n, n)


class Block(nn.Module):
    """Pre-norm transformer block (written out so FlopCounterMode sees every matmul)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, Dh)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))  # (B, N, D)


class TinyViT(nn.Module):
    """Pre-norm ViT without CLS token: pixels → patch tokens (final LayerNorm applied)."""

    def __init__(self, cfg: TinyViTConfig):
        super().__init__()
        self.cfg = cfg
        n = math.prod(cfg.grid)
        p = cfg.patch_size
        if cfg.modality == "audio":
            self.patch = nn.Conv1d(1, cfg.embed_dim, p, stride=p)  # (B, 1, L) → (B, D, L/p)
        elif cfg.modality == "video":
            k = (cfg.temporal_patch, p, p)
            self.patch = nn.Conv3d(3, cfg.embed_dim, k, stride=k)  # (B, 3, T, S, S) → (B, D, t, h, w)
        else:
            self.patch = nn.Conv2d(3, cfg.embed_dim, p, stride=p)  # (B, 3, S, S) → (B, D, h, w)
        self.pos = nn.Parameter(torch.randn(1, n, cfg.embed_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (B, T, D)
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)  # (B, T, D)


class LocalEncoder(Encoder):
    resize_mode = "bicubic"

    def __init__(self, cfg: TinyViTConfig, name: str = "local", meta: dict | None = None):
        super().__init__()
        self.name, self.vit, self.meta = name, TinyViT(cfg), dict(meta or {})
        self.embed_dim, self.patch_size, self.input_size = cfg.embed_dim, cfg.patch_size, cfg.input_size
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)
        self.modality, self.cfg = cfg.modality, cfg

    @property
    def grid(self) -> tuple[int, ...]:
        return square_grid(self.input_size, self.patch_size) if self.cfg.modality == "image" else self.cfg.grid

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """Images: the base class's resize + normalise. Video (B, 3, T, H, W): frames resized and
        resampled to the trained size, normalised. Audio (B, C, L): mono, resampled (linear) to
        the trained length; waveforms are used as they are (already in [-1, 1])."""
        from suite.errors import SuiteError

        c = self.cfg
        if c.modality == "image":
            return super().preprocess(pixels)
        if c.modality == "audio":
            if pixels.dim() != 3:
                raise SuiteError(f"encoder {self.name}: expected audio (B, C, L), got {tuple(pixels.shape)}")
            x = pixels.float().mean(1, keepdim=True)  # (B, 1, L)
            if x.shape[-1] != c.input_size:
                x = F.interpolate(x, size=c.input_size, mode="linear", align_corners=False)
            return x
        if pixels.dim() != 5 or pixels.shape[1] != 3:
            raise SuiteError(f"encoder {self.name}: expected video (B, 3, T, H, W), got {tuple(pixels.shape)}")
        from suite.data.resample import resample_frames, resize_frames

        x = resample_frames(resize_frames((pixels.float() + 1.0) / 2.0, c.input_size, self.resize_mode), c.frames)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        return (x - mean) / std  # (B, 3, T, S, S)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)  # (B, T, D)


def save_local_encoder(vit: TinyViT, out: str | Path, meta: dict) -> Path:
    """Write `encoder.json` + `encoder.pt` so `load_encoder("local", path=out)` rebuilds it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(vit.state_dict(), out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps({"arch": "tiny-vit", "model": asdict(vit.cfg), **meta}, indent=2))
    return out


@register_encoder("local")
def load_local(path: str | None = None, cache_dir: str | None = None) -> Encoder:
    if path is None:
        raise MissingFileError("encoder local: needs a path to a directory written by `suite encoder train --out DIR`")
    p = Path(path).expanduser()
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        if not (p / f).is_file():
            raise MissingFileError(f"encoder local: needs {p / f} (written by `suite encoder train --out {p}`)")
    try:
        info = json.loads((p / CONFIG_FILE).read_text())
        cfg = TinyViTConfig(**info["model"])
        enc = LocalEncoder(cfg, name=f"local:{p.name}", meta={k: v for k, v in info.items() if k != "model"})
        enc.vit.load_state_dict(torch.load(p / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    except (KeyError, TypeError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"encoder local: cannot read {p} ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return enc
