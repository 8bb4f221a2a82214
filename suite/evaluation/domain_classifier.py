"""The domain feature extractor: a small CNN classifier the suite trains on a built-in dataset.

Inception features say little about 16×16 digits; FID computed with a classifier trained on the
data itself is the usual practice for MNIST-like sets (measuring.md §2). The classifier is
trained once per (dataset config, recipe, seed), cached with provenance, and then used for
(a) penultimate-layer features (FID/KID/precision-recall) and (b) logits (class consistency:
top-1 agreement with the label a sample was generated for; Inception-score-style IS).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.data import media_identity
from suite.evaluation.cache import cache_root, entry_lock, load_frozen_net, save_frozen_net, stable_hash, write_provenance
from suite.evaluation.images import load_split, to_float

FORMAT_VERSION = 1  # bump when the architecture or the training loop changes meaning


@dataclass
class ClassifierRecipe:
    width: int = 32  # channels of the first conv; doubled twice
    feature_dim: int = 64  # penultimate width = FID feature dimension
    steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_shift: int = 1  # random translation augmentation, pixels


class DomainCNN(nn.Module):
    """A small CNN classifier for one kind of data → (penultimate (B, F), logits (B, K)).

    - image: (B, 3, H, W) in [-1, 1], any H, W ≥ 4; 2-D convolutions.
    - video: (B, 3, T, H, W) in [-1, 1]; 3-D convolutions over time and space (motion matters).
    - audio: (B, 1, L) waveform in [-1, 1]; a fixed log-magnitude STFT front-end, then the
      2-D CNN on the (1, F, T') spectrogram (timbre and pitch are easy to read there).
    """

    KINDS = ("image", "video", "audio")

    def __init__(self, num_classes: int, width: int = 32, feature_dim: int = 64, kind: str = "image"):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"domain classifier kind {kind!r}; allowed: {', '.join(self.KINDS)}")
        w, self.kind = width, kind
        if kind == "video":
            conv, norm_pool = nn.Conv3d, nn.AdaptiveAvgPool3d
            first = dict(kernel_size=3, stride=(1, 2, 2), padding=1)  # keep every frame, halve space
        else:
            conv, norm_pool = nn.Conv2d, nn.AdaptiveAvgPool2d
            first = dict(kernel_size=3, padding=1) if kind == "image" else dict(kernel_size=3, stride=2, padding=1)
        c_in = 1 if kind == "audio" else 3
        self.body = nn.Sequential(
            conv(c_in, w, **first), nn.GroupNorm(8, w), nn.SiLU(),
            conv(w, 2 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 2 * w), nn.SiLU(),
            conv(2 * w, 4 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 4 * w), nn.SiLU(),
            norm_pool(1), nn.Flatten(),
        )
        self.penultimate = nn.Sequential(nn.Linear(4 * w, feature_dim), nn.SiLU())
        self.head = nn.Linear(feature_dim, num_classes)
        self.arch = dict(num_classes=num_classes, width=width, feature_dim=feature_dim, kind=kind)

    @property
    def expected_input(self) -> str:
        return {"image": "(B, 3, H, W) uint8", "video": "(B, 3, T, H, W) uint8", "audio": "(B, 1, L) float"}[self.kind]

    def accepts(self, x: torch.Tensor) -> bool:
        """Whether x is this kind's evaluation form (suite.evaluation.images.quantise)."""
        if self.kind == "audio":
            return x.dim() == 3 and x.shape[1] == 1 and x.is_floating_point()
        return x.dtype == torch.uint8 and x.dim() == (5 if self.kind == "video" else 4) and x.shape[1] == 3

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """Audio: (B, 1, L) → (B, 1, F, T') log spectrogram scaled to about [-1, 1]; else x."""
        if self.kind != "audio":
            return x
        from suite.media import log_spectrogram

        return ((log_spectrogram(x, n_fft=256, hop=128) + 40.0) / 40.0).unsqueeze(1)  # (B, 1, 129, T')

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.penultimate(self.body(self.frontend(x)))  # (B, F)
        return f, self.head(f)  # (B, F), (B, K)


def save_classifier(net: DomainCNN, path: Path, meta: dict) -> None:
    save_frozen_net(net, path, net.arch, meta, FORMAT_VERSION)


def load_classifier(path: str | Path) -> DomainCNN:
    return load_frozen_net(path, lambda arch: DomainCNN(**arch), "domain classifier",
                           "made by `suite eval` / training with eval enabled", missing="domain classifier weights")


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Random spatial translation by up to max_shift pixels (replicate padding), one offset per
    batch; video frames move together; audio (B, 1, L) is left as it is."""
    if max_shift <= 0 or x.dim() < 4:
        return x
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=g))
    p = max_shift
    shape = x.shape
    h, w = shape[-2:]
    x4 = x.reshape(shape[0], -1, h, w)  # (B, C·T, H, W)
    xp = F.pad(x4, (p, p, p, p), mode="replicate")  # (B, C·T, H + 2p, W + 2p)
    return xp[..., p + dy : p + dy + h, p + dx : p + dx + w].reshape(shape)


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, recipe: ClassifierRecipe, seed: int = 0
) -> DomainCNN:
    """AdamW on random minibatches of uint8 images (N, 3, H, W) (video (N, 3, T, H, W) uint8,
    audio (N, 1, L) float); deterministic given the seed.

    The global RNG is forked, not reseeded: training a classifier in the middle of a training run
    (first in-training evaluation) must not change that run's random stream.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DomainCNN(num_classes, recipe.width, recipe.feature_dim, data_kind(images))
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.steps)
    x_all = to_float(images)  # (N, 3, H, W) | (N, 3, T, H, W) | (N, 1, L)
    net.train()
    for _ in range(recipe.steps):
        idx = torch.randint(0, x_all.shape[0], (min(recipe.batch_size, x_all.shape[0]),), generator=g)
        _, logits = net(_shift(x_all[idx], recipe.max_shift, g))
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def accuracy(net: DomainCNN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        _, logits = net(to_float(images[i : i + batch_size]))
        correct += (logits.argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / max(1, images.shape[0])


def data_kind(quantised: torch.Tensor) -> str:
    """Kind of a batch in evaluation form: (N, 3, H, W) image, (N, 3, T, H, W) video, (N, 1, L) audio."""
    from suite.media import media_kind

    return media_kind(quantised.shape[1:])


def classifier_key(data_cfg, recipe: ClassifierRecipe, seed: int) -> dict:
    """Everything that determines the classifier's weights."""
    return {"data": media_identity(data_cfg), "recipe": dataclasses.asdict(recipe), "seed": seed, "format": FORMAT_VERSION}


def classifier_path(data_cfg, recipe: ClassifierRecipe, seed: int, cache_dir=None) -> Path:
    key = classifier_key(data_cfg, recipe, seed)
    return cache_root(cache_dir) / "extractors" / f"{data_cfg.name}-classifier-{stable_hash(key)}" / "classifier.pt"


def get_domain_classifier(data_cfg, cache_dir=None, recipe: ClassifierRecipe | None = None, seed: int = 0) -> Path:
    """Path of the cached classifier for this dataset config, training (and caching) it if missing."""
    recipe = recipe or ClassifierRecipe()
    path = classifier_path(data_cfg, recipe, seed, cache_dir)
    if path.is_file():
        return path
    with entry_lock(path):
        if not path.is_file():  # another process may have made it while we waited
            _train_and_cache(data_cfg, recipe, seed, path)
    return path


def _train_and_cache(data_cfg, recipe: ClassifierRecipe, seed: int, path: Path) -> None:
    start = time.time()
    x_tr, y_tr = load_split(data_cfg, "train")
    x_te, y_te = load_split(data_cfg, "test")
    num_classes = int(max(y_tr.max(), y_te.max()).item()) + 1
    from suite.data import build_dataset

    num_classes = max(num_classes, int(getattr(build_dataset(data_cfg, split="train"), "num_classes", num_classes)))
    net = train_classifier(x_tr, y_tr, num_classes, recipe, seed)
    meta = {
        "dataset": data_cfg.name,
        "key": classifier_key(data_cfg, recipe, seed),
        "train_images": int(x_tr.shape[0]),
        "test_images": int(x_te.shape[0]),
        "train_accuracy": accuracy(net, x_tr, y_tr),
        "test_accuracy": accuracy(net, x_te, y_te),
        "train_seconds": round(time.time() - start, 2),
    }
    write_provenance(path.with_name("provenance.json"), {"what": "domain classifier (suite.evaluation.domain_classifier)", **meta})
    save_classifier(net, path, meta)  # last: its presence means the entry is complete


def read_meta(path: str | Path) -> dict:
    prov = Path(path).with_name("provenance.json")
    return json.loads(prov.read_text()) if prov.is_file() else {}
