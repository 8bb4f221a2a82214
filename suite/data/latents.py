"""Precompute VAE latents once (REPA-style) with diffusers' AutoencoderKL from an explicit path.

`suite data encode --folder DIR --vae PATH --out DIR` writes shard-*.pt files that
`data.name=latents` reads. The raw pixels are stored beside each latent (uint8) so external
encoders see the images that belong to it. Nothing is downloaded: the VAE path must exist.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from suite.errors import MissingFileError


def load_vae(path: str, device: str = "cpu"):
    """AutoencoderKL from a local directory (config.json + weights), e.g. a copy of stabilityai/sd-vae-ft-ema."""
    p = Path(path) if path else None
    if p is None or not (p / "config.json").is_file():
        raise MissingFileError(
            f"VAE weights not found: {path}/config.json (a diffusers AutoencoderKL directory, e.g. stabilityai/sd-vae-ft-ema; download it once and pass its path)"
        )
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(p), local_files_only=True).to(device).eval()


@torch.no_grad()
def encode_dataset(dataset, vae, out_dir: str, shard_size: int = 4096, batch_size: int = 64, device: str = "cpu", scale: float | None = None) -> int:
    """Encode every item's pixels; latents = sample of the posterior × scaling factor."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale = scale if scale is not None else float(getattr(vae.config, "scaling_factor", 0.18215))
    buf_l, buf_y, buf_p, shard, total = [], [], [], 0, 0

    def flush():
        nonlocal buf_l, buf_y, buf_p, shard
        if not buf_l:
            return
        data = {"latents": torch.cat(buf_l), "labels": torch.cat(buf_y), "pixels": torch.cat(buf_p),
                "meta": {"num_classes": int(getattr(dataset, "num_classes", 0)), "scaling_factor": scale}}
        tmp = out / f".shard-{shard:05d}.pt.tmp"
        torch.save(data, tmp)
        tmp.rename(out / f"shard-{shard:05d}.pt")
        buf_l, buf_y, buf_p, shard = [], [], [], shard + 1

    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        pix = batch["pixels"].to(device)  # (B, 3, H, W) in [-1, 1]
        lat = vae.encode(pix).latent_dist.sample() * scale  # (B, C, H/8, W/8)
        buf_l.append(lat.cpu())
        buf_y.append(batch["y"])
        buf_p.append(((pix.cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
        total += pix.shape[0]
        if sum(x.shape[0] for x in buf_l) >= shard_size:
            flush()
    flush()
    return total
