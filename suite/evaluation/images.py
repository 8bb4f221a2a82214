"""Image tensors in and out of evaluation: dataset splits as pixels, quantisation, sample grids.

Every extractor sees the same thing: (B, 3, H, W) uint8, as the ADM evaluator and
torch-fidelity do. Generated samples are quantised to uint8 before any feature is computed, so
real and generated images go through one identical path. Video goes the same way as
(B, 3, T, H, W) uint8; audio stays float32 (B, 1, L) in [-1, 1] (8-bit audio would be audible
noise), see `quantise`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from suite.errors import SuiteError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float in [-1, 1] → (B, 3, H, W) uint8 (grey images repeated to RGB);
    video (B, C, T, H, W) likewise."""
    if images.dtype == torch.uint8:
        x = images
    else:
        x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (B, C, H, W)
    if x.dim() not in (4, 5):
        raise SuiteError(f"expected images of shape (B, C, H, W) or video (B, C, T, H, W), got {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, *x.shape[2:])
    if x.shape[1] != 3:
        raise SuiteError(f"expected 1 or 3 image channels, got {x.shape[1]} (latents must be decoded to pixels first)")
    return x.contiguous().cpu()


def quantise(x: torch.Tensor) -> torch.Tensor:
    """What every extractor and reference sees: images/video as uint8 (`to_uint8`), audio
    (B, 1, L) as float32 in [-1, 1] on the CPU."""
    if x.dim() == 3:
        return x.detach().float().clamp(-1, 1).contiguous().cpu()  # (B, 1, L)
    return to_uint8(x)


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 → float in [-1, 1]; float data (audio) is returned as it is."""
    if images_uint8.dtype != torch.uint8:
        return images_uint8.float()
    return images_uint8.float() / 127.5 - 1.0


def generated_to_pixels(x0: torch.Tensor, dataset=None) -> torch.Tensor:
    """What the generator produced → pixels in [-1, 1].

    Pixel datasets: x0 already are pixels (1 or 3 channels). A dataset that knows better (a latent
    dataset with a decoder) exposes `to_pixels(x0)` and is asked first.
    """
    fn = getattr(dataset, "to_pixels", None)
    if callable(fn):
        return fn(x0)
    if x0.shape[1] not in (1, 3):
        raise SuiteError(
            f"generated samples have {x0.shape[1]} channels; image metrics need pixels (the dataset gives no decoder)"
        )
    return x0


def load_split(data_cfg, split: str, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to n examples of a split as ((N, 3, H, W) uint8 pixels, (N,) long labels); video and
    audio as `quantise` gives them.

    A fixed random subset (by `seed`) when n is smaller than the split, so reference statistics
    do not depend on the split's ordering.
    """
    from suite.data import build_dataset

    ds = build_dataset(data_cfg, split=split)
    total = len(ds)
    if total == 0:
        raise SuiteError(f"dataset {data_cfg.name!r} split {split!r} is empty")
    if n is None or n >= total:
        idx = list(range(total))
    else:
        g = torch.Generator().manual_seed(seed)
        idx = sorted(torch.randperm(total, generator=g)[:n].tolist())
    pixels, labels = [], []
    for i in idx:
        item = ds[i]
        pixels.append(item["pixels"])
        labels.append(int(item["y"]))
    return quantise(torch.stack(pixels)), torch.tensor(labels, dtype=torch.long)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save up to 64 images (float [-1, 1] or uint8) as one PNG grid."""
    import math

    from torchvision.utils import save_image

    x = to_uint8(images[:64]).float() / 255.0  # (B, 3, H, W) in [0, 1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(x, str(path), nrow=nrow or max(1, int(math.ceil(math.sqrt(x.shape[0])))), padding=1)
    return path
