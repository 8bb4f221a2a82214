"""Train a small ViT encoder on a built-in dataset (`suite encoder train`): images (digits,
shapes), video (moving-shapes: tubelet tokens) or audio (tones: runs of samples).

Gives REPA an external encoder on a fresh machine without any download. Two objectives:
- `classifier`: supervised, linear head on mean-pooled patch tokens, cross-entropy (no augmentation:
  at this size it only slows convergence);
- `ssl`: SimCLR (NT-Xent between two augmented views of each image, on a projection of the
  mean-pooled tokens); no labels are read during training.
The result is judged by the suite's linear probe (`suite.evaluation.probe`) on frozen mean-pooled
tokens (train split → test split),
written to encoder.json next to the weights.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.errors import ConfigError
from suite.evaluation.probe import probe_accuracy

from baselines.encoders.local import LocalEncoder, TinyViTConfig, save_local_encoder

KINDS = ("classifier", "ssl")
DATASETS = ("digits", "shapes", "moving-shapes", "tones")
# dataset → its modality and default patch: the token grids of the demo generators on that data
# (SiT-*/2 on 16² images: 8×8; demo-moving-shapes' patch 4: 8×4×4; demo-tones' patch 64: 64 tokens)
MODALITY = {"digits": "image", "shapes": "image", "moving-shapes": "video", "tones": "audio"}
DEFAULT_PATCH = {"image": 2, "video": 4, "audio": 64}


@dataclass
class EncoderTrainConfig:
    dataset: str = "digits"  # a built-in dataset: digits | shapes (images), moving-shapes (video), tones (audio)
    kind: str = "classifier"  # classifier | ssl
    image_size: int = 16  # the generator's data size (DataConfig.image_size; video: frame size)
    patch_size: int = 0  # 0: the data's default (images 2 → 8×8 tokens, video 4, audio 64 samples)
    frames: int = 8  # moving-shapes: frames per clip (DataConfig.frames)
    temporal_patch: int = 1  # moving-shapes: frames per tubelet
    audio_length: int = 4096  # tones: samples per clip (DataConfig.audio_length)
    sample_rate: int = 8000  # tones: samples per second (DataConfig.sample_rate)
    num_images: int = 2000  # shapes, moving-shapes, tones: how many examples to generate (DataConfig.num_images)
    embed_dim: int = 64
    depth: int = 3
    num_heads: int = 4
    steps: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    temperature: float = 0.2  # ssl: NT-Xent temperature
    seed: int = 0
    device: str = "cpu"
    threads: int = 0


def load_pixels(dataset: str, image_size: int, split: str, seed: int = 0, **media) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All `pixels` in [-1, 1] — images (N, 3, H, W), video (N, 3, T, H, W), audio (N, 1, L) —
    and labels (N,) of a built-in dataset split. `media`: frames, audio_length, sample_rate, num_images."""
    from suite.config import DataConfig
    from suite.data import build_dataset

    ds = build_dataset(DataConfig(name=dataset, image_size=image_size, seed=seed, **media), split=split)
    items = [ds[i] for i in range(len(ds))]
    pixels = torch.stack([it["pixels"] for it in items]).float()  # (N, 3, H, W) | (N, 3, T, H, W) | (N, 1, L)
    labels = torch.tensor([int(it["y"]) for it in items])  # (N,)
    return pixels, labels, ds.num_classes


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR-style view of images (B, 3, H, W), video (B, 3, T, H, W) — one crop for all frames
    of a clip — or audio (B, 1, L), in [-1, 1]."""
    if x.dim() == 3:
        return augment_audio(x, generator)
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return augment_images(x.reshape(b, c * t, h, w), generator).reshape(b, c, t, h, w)
    return augment_images(x, generator)


def augment_audio(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A view of (B, 1, L) waveforms: random gain, a small time shift (≤ 5 %, zero-filled), noise.
    No pitch or time-order changes: those are what the tones classes are."""
    b, _, length = x.shape
    g = dict(generator=generator, device=x.device)
    gain = 0.5 + torch.rand(b, 1, 1, **g)
    shift = ((torch.rand(b, **g) - 0.5) * 0.1 * length).long()  # (B,) samples
    pos = torch.arange(length, device=x.device)[None, :] - shift[:, None]  # (B, L) source index
    valid = (pos >= 0) & (pos < length)
    v = torch.gather(x[:, 0], 1, pos.clamp(0, length - 1)) * valid  # (B, L)
    return (v[:, None] * gain + 0.01 * torch.randn(x.shape, **g)).clamp(-1, 1)


def augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR-style view of (B, C, H, W) in [-1, 1]: random scale/shift crop, jitter, noise.

    No flips or large rotations: digits are not flip-invariant (and moving-shapes' direction is its class).
    """
    b = x.shape[0]
    g = dict(generator=generator, device=x.device)
    scale = 0.75 + 0.25 * torch.rand(b, **g)  # zoom-in factor of the crop
    angle = (torch.rand(b, **g) - 0.5) * (math.pi / 9)  # ±10°
    shift = (torch.rand(b, 2, **g) - 0.5) * 0.3
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x + 1.0, grid, padding_mode="zeros", align_corners=False) - 1.0  # background stays at -1
    contrast = 0.6 + 0.8 * torch.rand(b, 1, 1, 1, **g)
    bright = (torch.rand(b, 1, 1, 1, **g) - 0.5) * 0.4
    v = (v * contrast + bright + 0.1 * torch.randn(v.shape, **g)).clamp(-1, 1)
    return v


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR loss: each view must pick its partner among the other 2B − 1 embeddings."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)  # (2B, P)
    sim = z @ z.t() / temperature  # (2B, 2B)
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


@torch.no_grad()
def pooled_features(encoder: LocalEncoder, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled patch tokens (N, D) of a frozen encoder."""
    encoder.eval()
    return torch.cat([encoder(pixels[i:i + batch_size]).mean(1) for i in range(0, len(pixels), batch_size)])


def train_encoder(cfg: EncoderTrainConfig, out, log=print) -> dict:
    """Train, probe, save to `out`; returns the metadata written to encoder.json."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"encoder kind {cfg.kind!r} not allowed; allowed: {', '.join(KINDS)}")
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"encoder dataset {cfg.dataset!r} not allowed; allowed: {', '.join(DATASETS)}")
    modality = MODALITY[cfg.dataset]
    patch = cfg.patch_size or DEFAULT_PATCH[modality]
    size = cfg.audio_length if modality == "audio" else cfg.image_size
    if patch < 1 or size % patch:
        raise ConfigError(f"encoder {'audio length' if modality == 'audio' else 'image size'} {size} is not a multiple of patch size {patch}")
    if modality == "video" and (cfg.temporal_patch < 1 or cfg.frames % cfg.temporal_patch):
        raise ConfigError(f"encoder frames {cfg.frames} is not a multiple of temporal patch {cfg.temporal_patch}")
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise ConfigError(f"encoder training needs steps ≥ 1 and batch size ≥ 2, got {cfg.steps} and {cfg.batch_size}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    media = dict(frames=cfg.frames, audio_length=cfg.audio_length, sample_rate=cfg.sample_rate, num_images=cfg.num_images)
    x_train, y_train, num_classes = load_pixels(cfg.dataset, cfg.image_size, "train", **media)
    x_test, y_test, _ = load_pixels(cfg.dataset, cfg.image_size, "test", **media)
    x_train, y_train = x_train.to(device), y_train.to(device)

    vit_cfg = TinyViTConfig(size, patch, cfg.embed_dim, cfg.depth, cfg.num_heads, modality=modality,
                            frames=cfg.frames if modality == "video" else 0, temporal_patch=cfg.temporal_patch if modality == "video" else 1)
    encoder = LocalEncoder(vit_cfg).to(device)
    d = cfg.embed_dim
    head = (nn.Linear(d, num_classes) if cfg.kind == "classifier"
            else nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))).to(device)
    params = list(encoder.vit.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # one-cycle needs a warm-up of ≥ 2 steps; very short runs (tests, smoke checks) keep a constant lr
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1) if cfg.steps >= 30
             else torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0))

    start, running = time.time(), []
    encoder.vit.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, len(x_train), (cfg.batch_size,), generator=gen, device=device)
        x = x_train[idx]  # (B, 3, H, W) | (B, 3, T, H, W) | (B, 1, L)
        if cfg.kind == "classifier":
            logits = head(encoder(x).mean(1))  # (B, classes)
            loss = F.cross_entropy(logits, y_train[idx])
        else:
            z1 = head(encoder(augment(x, gen)).mean(1))  # (B, D)
            z2 = head(encoder(augment(x, gen)).mean(1))
            loss = nt_xent(z1, z2, cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % max(1, cfg.steps // 5) == 0 or step == cfg.steps:
            log(f"step {step}/{cfg.steps} loss {sum(running) / len(running):.4f} ({time.time() - start:.1f}s)")
            running = []

    encoder = encoder.cpu().freeze()
    acc = probe_accuracy(pooled_features(encoder, x_train.cpu()), y_train.cpu(),
                         pooled_features(encoder, x_test), y_test, num_classes)
    meta = {
        "dataset": cfg.dataset,
        "kind": cfg.kind,
        "modality": modality,
        "num_classes": num_classes,
        "train_config": {k: v for k, v in vars(cfg).items()},
        "linear_probe_acc": acc,
        "chance_acc": 1.0 / num_classes,
        "train_seconds": round(time.time() - start, 2),
    }
    save_local_encoder(encoder.vit, out, meta)
    log(f"linear probe accuracy {acc:.3f} (chance {1.0 / num_classes:.3f}); saved to {out}")
    return meta
