"""Built-in datasets that need no download: `digits` (scikit-learn's bundled 8×8 digits) and
`shapes` (procedural class-conditional RGB images, deterministic by seed)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SHAPE_KINDS = ("disk", "square", "triangle", "cross", "ring")
SHAPE_COLOURS = ((0.95, 0.25, 0.2), (0.2, 0.5, 0.95))  # red-ish, blue-ish
SHAPE_CLASS_NAMES = [f"{c}-{k}" for c in ("red", "blue") for k in SHAPE_KINDS]


def split_indices(n: int, test_fraction: float, seed: int, split: str) -> np.ndarray:
    """A fixed random split of range(n) into train/test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[:n_test] if split == "test" else perm[n_test:])


def load_digits_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1797, 1, S, S) in [-1, 1] and labels (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float()[:, None] / 16.0  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 2 - 1), torch.from_numpy(d.target).long()


def _shape_mask(kind: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if kind == "disk":
        return dy**2 + dx**2 <= r**2
    if kind == "square":
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if kind == "triangle":
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if kind == "cross":
        return ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)) | ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r))
    if kind == "ring":
        d2 = dy**2 + dx**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    raise ValueError(kind)


def make_shapes(n: int, image_size: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, S, S) in [-1, 1]: class = (colour, shape kind); position, size, background vary."""
    if not 1 <= num_classes <= len(SHAPE_CLASS_NAMES):
        from suite.errors import ConfigError

        raise ConfigError(f"data.num_classes: shapes has 1..{len(SHAPE_CLASS_NAMES)} classes, got {num_classes}")
    rng = np.random.default_rng(seed)
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    images = np.empty((n, 3, s, s), dtype=np.float32)
    labels = rng.integers(0, num_classes, size=n)
    for i, lab in enumerate(labels):
        colour = np.array(SHAPE_COLOURS[lab // len(SHAPE_KINDS)], dtype=np.float32)
        kind = SHAPE_KINDS[lab % len(SHAPE_KINDS)]
        r = rng.uniform(0.22, 0.35) * s
        cy, cx = rng.uniform(r, s - r, size=2)
        bg = rng.uniform(0.0, 0.25, size=3).astype(np.float32)
        img = np.broadcast_to(bg[:, None, None], (3, s, s)).copy()
        m = _shape_mask(kind, yy, xx, cy, cx, r)
        img[:, m] = (colour * rng.uniform(0.8, 1.0))[:, None]
        img += rng.normal(0, 0.02, size=img.shape).astype(np.float32)
        images[i] = img
    return torch.from_numpy(images).clamp(0, 1) * 2 - 1, torch.from_numpy(labels).long()
