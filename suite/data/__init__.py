"""Data: built-in `digits` and `shapes` (no download), an image folder, precomputed latent shards.

`build_dataset(cfg.data, split)` is the one way to get a dataset; `ResumableSampler` gives the
trainer a data order that a restarted run continues exactly.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from suite.data.builtin import load_digits_images, make_shapes, split_indices
from suite.data.datasets import ImageFolderDataset, LatentShardDataset, TensorImageDataset
from suite.errors import ConfigError

DATASETS = ("digits", "shapes", "shapes-text", "folder", "latents")


@lru_cache(maxsize=4)
def _captioned_shapes(image_size: int, num_images: int, seed: int, unseen: bool):
    """Seen combinations (num_images, split train/test) or the unseen ones (num_images // 4)."""
    from suite.data.captions import CaptionedImageDataset, make_captioned_shapes

    n = max(1, num_images // 4) if unseen else num_images
    return CaptionedImageDataset(*make_captioned_shapes(n, image_size, seed, unseen), "shapes-text" + ("-unseen" if unseen else ""))


@lru_cache(maxsize=8)
def _builtin_tensors(name: str, image_size: int, num_images: int, num_classes: int, seed: int):
    if name == "digits":
        return load_digits_images(image_size)
    return make_shapes(num_images, image_size, num_classes, seed)


class _SplitView(Dataset):
    """A split that keeps the parent's metadata (num_classes, image_shape, name)."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __getattr__(self, k):
        if k in ("dataset", "indices"):
            raise AttributeError(k)
        return getattr(self.dataset, k)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        item = self.dataset[self.indices[i]]
        item["index"] = int(i)
        return item


def build_dataset(data_cfg, split: str = "train") -> Dataset:
    if split not in ("train", "test", "all", "unseen"):
        raise ConfigError(f"split: {split!r} not allowed; allowed: train, test, all, unseen")
    name = data_cfg.name
    if split == "unseen" and name != "shapes-text":
        raise ConfigError(f"split: 'unseen' (held-out attribute combinations) exists for shapes-text only, not {name!r}")
    if name == "shapes-text":
        full = _captioned_shapes(data_cfg.image_size, data_cfg.num_images, data_cfg.seed, split == "unseen")
        if split == "unseen":
            return full
    elif name in ("digits", "shapes"):
        images, labels = _builtin_tensors(name, data_cfg.image_size, data_cfg.num_images, data_cfg.num_classes, data_cfg.seed)
        n_cls = 10 if name == "digits" else data_cfg.num_classes
        full = TensorImageDataset(images, labels, n_cls, name, hflip=data_cfg.hflip and split == "train")
    elif name == "folder":
        if not data_cfg.root:
            raise ConfigError("data.root: the 'folder' dataset needs data.root=<dir with one folder per class>")
        full = ImageFolderDataset(data_cfg.root, data_cfg.image_size, hflip=data_cfg.hflip and split == "train")
    elif name == "latents":
        if not data_cfg.root:
            raise ConfigError("data.root: the 'latents' dataset needs data.root=<dir of shard-*.pt>")
        full = LatentShardDataset(data_cfg.root, data_cfg.vae)
    else:
        raise ConfigError(f"data.name: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    if split == "all" or data_cfg.test_fraction <= 0:
        return full
    return _SplitView(full, split_indices(len(full), data_cfg.test_fraction, data_cfg.seed, split).tolist())


class ResumableSampler(Sampler):
    """Epoch-wise permutations from (seed, epoch); starts at any position in the stream.

    Position = number of examples already drawn by this rank, so resuming from a checkpoint's
    `data_position` continues the same order with nothing repeated or skipped.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world_size

    def __iter__(self):
        pos = self.start  # global position in the stream; rank r takes positions ≡ r (mod world)
        while True:
            epoch, offset = divmod(pos, self.n)
            perm = np.random.default_rng((self.seed, epoch)).permutation(self.n)
            for j in range(offset, self.n):
                if (epoch * self.n + j) % self.world == self.rank:
                    yield int(perm[j])
            pos = (epoch + 1) * self.n

    def __len__(self) -> int:  # an endless stream; the trainer counts images
        return 2**62


def collate(items: list[dict]) -> dict:
    ys = [i["y"] for i in items]  # int class labels, or (L,) caption token ids
    y = torch.stack(ys) if isinstance(ys[0], torch.Tensor) else torch.tensor(ys)
    out = {"x0": torch.stack([i["x0"] for i in items]), "y": y,
           "index": torch.tensor([i["index"] for i in items])}
    if "pixels" in items[0]:
        out["pixels"] = torch.stack([i["pixels"] for i in items])
    return out
