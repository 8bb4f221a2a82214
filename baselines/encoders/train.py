"""Train a small ViT encoder on a built-in dataset (`suite encoder train`).

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


@dataclass
class EncoderTrainConfig:
    dataset: str = "digits"  # a built-in dataset: digits | shapes
    kind: str = "classifier"  # classifier | ssl
    image_size: int = 16  # the generator's data size (DataConfig.image_size)
    patch_size: int = 2  # 16 / 2 → 8×8 tokens, SiT-*/2's grid on 16² data
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


def load_pixels(dataset: str, image_size: int, split: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All `pixels` (N, 3, H, W) in [-1, 1] and labels (N,) of a built-in dataset split."""
    from suite.config import DataConfig
    from suite.data import build_dataset

    ds = build_dataset(DataConfig(name=dataset, image_size=image_size, seed=seed), split=split)
    items = [ds[i] for i in range(len(ds))]
    pixels = torch.stack([it["pixels"] for it in items]).float()  # (N, 3, H, W)
    labels = torch.tensor([int(it["y"]) for it in items])  # (N,)
    return pixels, labels, ds.num_classes


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR-style view of (B, 3, H, W) in [-1, 1]: random scale/shift crop, jitter, noise.

    No flips or large rotations: digits are not flip-invariant.
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
    if cfg.image_size % cfg.patch_size:
        raise ConfigError(f"encoder image size {cfg.image_size} is not a multiple of patch size {cfg.patch_size}")
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise ConfigError(f"encoder training needs steps ≥ 1 and batch size ≥ 2, got {cfg.steps} and {cfg.batch_size}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    x_train, y_train, num_classes = load_pixels(cfg.dataset, cfg.image_size, "train")
    x_test, y_test, _ = load_pixels(cfg.dataset, cfg.image_size, "test")
    x_train, y_train = x_train.to(device), y_train.to(device)

    vit_cfg = TinyViTConfig(cfg.image_size, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads)
    encoder = LocalEncoder(vit_cfg).to(device)
    d = cfg.embed_dim
    head = (nn.Linear(d, num_classes) if cfg.kind == "classifier"
            else nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))).to(device)
    params = list(encoder.vit.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)

    start, running = time.time(), []
    encoder.vit.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, len(x_train), (cfg.batch_size,), generator=gen, device=device)
        x = x_train[idx]  # (B, 3, H, W)
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
        "num_classes": num_classes,
        "train_config": {k: v for k, v in vars(cfg).items()},
        "linear_probe_acc": acc,
        "chance_acc": 1.0 / num_classes,
        "train_seconds": round(time.time() - start, 2),
    }
    save_local_encoder(encoder.vit, out, meta)
    log(f"linear probe accuracy {acc:.3f} (chance {1.0 / num_classes:.3f}); saved to {out}")
    return meta
