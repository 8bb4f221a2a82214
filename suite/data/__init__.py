"""Data: built-in `digits`, `shapes` (images), `moving-shapes` (video) and `tones` (audio), their
captioned variants `shapes-text`, `moving-shapes-text` and `tones-text`, all generated without download; an image folder; precomputed latent shards.

`build_dataset(cfg.data, split)` is the one way to get a dataset; datasets register by name
(`register_dataset`, the `DATASETS` registry; plugins may add their own); `ResumableSampler` gives the
trainer a data order that a restarted run continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from suite.data.builtin import load_digits_images, make_shapes, split_indices
from suite.data.datasets import ImageFolderDataset, LatentShardDataset, TensorImageDataset, TensorMediaDataset
from suite.errors import ConfigError
from suite.registry import Registry

DATASETS = Registry("dataset", "data.name")


@dataclass(frozen=True)
class DatasetEntry:
    """How to make one kind of dataset. `build(data_cfg)` → the full dataset (build_dataset splits
    it); `describe(data_cfg)` → (data shape, number of classes) without building it, or None when
    only the data can tell (folders, shards): config validation uses it to check model sizes."""

    build: Callable
    describe: Callable = lambda data_cfg: None
    rate: Callable = lambda data_cfg: None  # frames (video) or samples (audio) per second; None: images
    condition: str | Callable = "class"  # what `y` holds: "class" labels (B,) or "text" captions; or fn(data_cfg) -> that
    text_dim: Callable = lambda data_cfg: 0  # "text": 0 caption token ids (B, L), E > 0 caption embeddings (B, L, E)


def register_dataset(name: str, describe: Callable | None = None, rate: Callable | None = None, condition: str | Callable = "class",
                     text_dim: Callable | None = None):
    """Decorator on `build(data_cfg) -> Dataset`: `@register_dataset("shapes", describe=...)`."""

    def wrap(build):
        DATASETS.register(name, DatasetEntry(build, describe or (lambda data_cfg: None), rate or (lambda data_cfg: None), condition,
                                             text_dim or (lambda data_cfg: 0)))
        return build

    return wrap


def condition_kind(data_cfg) -> str:
    c = DATASETS.get(data_cfg.name).condition
    return c(data_cfg) if callable(c) else c


def caption_dim(data_cfg) -> int:
    """Text data: 0 when captions are token ids, E when they are E-dim embeddings (captioned latent shards)."""
    return int(DATASETS.get(data_cfg.name).text_dim(data_cfg))


def clip_rate(data_cfg) -> float | None:
    """Frames or samples per second of the data's clips, without building it (None for images)."""
    return DATASETS.get(data_cfg.name).rate(data_cfg)


def describe_dataset(data_cfg) -> tuple[tuple[int, ...], int] | None:
    return DATASETS.get(data_cfg.name).describe(data_cfg)
MEDIA_DATASETS = ("moving-shapes", "tones")  # built-in video / audio


@lru_cache(maxsize=4)
def _builtin_media(name: str, size: int, frames: int, length: int, rate: int, num: int, num_classes: int, seed: int):
    if name == "moving-shapes":
        from suite.data.video import FPS, MOVING_SHAPE_CLASS_NAMES, make_moving_shapes

        return (*make_moving_shapes(num, frames, size, num_classes, seed), "video", FPS, MOVING_SHAPE_CLASS_NAMES)
    from suite.data.audio import TONE_CLASS_NAMES, make_tones

    return (*make_tones(num, length, rate, num_classes, seed), "audio", rate, TONE_CLASS_NAMES)


@lru_cache(maxsize=8)
def _captioned_builtin(name: str, image_size: int, frames: int, length: int, rate: int, num_images: int, seed: int, unseen: bool):
    """A captioned built-in: seen combinations (num_images, split train/test) or the unseen ones (num_images // 4)."""
    from suite.data.captions import CaptionedDataset
    from suite.data.caption_schemes import caption_scheme

    n, label = (max(1, num_images // 4), name + "-unseen") if unseen else (num_images, name)
    if name == "shapes-text":
        from suite.data.captions import make_captioned_shapes

        return CaptionedDataset(*make_captioned_shapes(n, image_size, seed, unseen), label, caption_scheme(name))
    if name == "moving-shapes-text":
        from suite.data.video import FPS
        from suite.data.video_text import make_captioned_moving_shapes

        return CaptionedDataset(*make_captioned_moving_shapes(n, frames, image_size, seed, unseen), label, caption_scheme(name), "video", FPS)
    from suite.data.audio_text import make_captioned_tones

    return CaptionedDataset(*make_captioned_tones(n, length, rate, seed, unseen), label, caption_scheme(name), "audio", rate)


def _captioned(c, unseen: bool = False) -> Dataset:
    """shapes-text, moving-shapes-text, tones-text (seen or unseen combinations), in the config's audio view."""
    data = _captioned_builtin(c.name, c.image_size, c.frames, c.audio_length, c.sample_rate, c.num_images, c.seed, unseen)
    if c.audio_view == "spectrogram":
        from suite.data.spectrogram import SpectrogramClips, view_of

        return SpectrogramClips(data, view_of(c))
    return data


@lru_cache(maxsize=8)
def _builtin_tensors(name: str, image_size: int, num_images: int, num_classes: int, seed: int):
    if name == "digits":
        return load_digits_images(image_size)
    return make_shapes(num_images, image_size, num_classes, seed)


@register_dataset("digits", describe=lambda c: ((1, c.image_size, c.image_size), 10))
def _digits(c) -> Dataset:
    images, labels = _builtin_tensors("digits", c.image_size, c.num_images, c.num_classes, c.seed)
    return TensorImageDataset(images, labels, 10, "digits", hflip=False)


@register_dataset("shapes", describe=lambda c: ((3, c.image_size, c.image_size), c.num_classes))
def _shapes(c) -> Dataset:
    images, labels = _builtin_tensors("shapes", c.image_size, c.num_images, c.num_classes, c.seed)
    return TensorImageDataset(images, labels, c.num_classes, "shapes", hflip=c.hflip)


def _media(c) -> Dataset:
    clips, labels, captions, kind, rate, class_names = _builtin_media(
        c.name, c.image_size, c.frames, c.audio_length, c.sample_rate, c.num_images, c.num_classes, c.seed)
    clips = TensorMediaDataset(clips, labels, captions, c.num_classes, c.name, kind, rate, class_names, _class_captions(c.name))
    if c.audio_view == "spectrogram":
        from suite.data.spectrogram import SpectrogramClips, view_of

        return SpectrogramClips(clips, view_of(c))
    return clips


def _tones_shape(c) -> tuple[int, ...]:
    """One example as the generator sees it: (1, L) waveform or (bins, frames) spectrogram."""
    if c.audio_view == "spectrogram":
        from suite.data.spectrogram import view_of

        return view_of(c).shape
    return (1, c.audio_length)


def _class_captions(name: str) -> list[str]:
    if name == "moving-shapes":
        from suite.data.video import MOVING_SHAPE_CLASS_CAPTIONS

        return MOVING_SHAPE_CLASS_CAPTIONS
    from suite.data.audio import TONE_CLASS_CAPTIONS

    return TONE_CLASS_CAPTIONS


def _video_fps(c) -> float:
    from suite.data.video import FPS

    return FPS


register_dataset("moving-shapes", describe=lambda c: ((3, c.frames, c.image_size, c.image_size), c.num_classes), rate=_video_fps)(_media)
register_dataset("tones", describe=lambda c: (_tones_shape(c), c.num_classes), rate=lambda c: c.sample_rate)(_media)


def media_identity(data_cfg) -> dict:
    """The data config fields that determine the media (pixels, frames, waveforms) the data yields:
    the cache key of references and domain classifiers, which only ever see media. What the
    generator models of them (`audio_view`) is left out, so both views share one classifier."""
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(data_cfg).items() if k != "audio_view"}


def media_decoder(data_cfg):
    """What turns generated examples into media, built from the config alone (no data read):
    latent shards → their VAE (`LatentDecoder`), the spectrogram view → Griffin-Lim; None when
    the generator's output already is the media (pixels, frames, waveforms)."""
    if data_cfg.name == "latents":
        from suite.data.datasets import LatentDecoder, read_shard_meta

        return LatentDecoder(data_cfg.vae, read_shard_meta(data_cfg.root))
    if getattr(data_cfg, "audio_view", "waveform") == "spectrogram":
        from suite.data.spectrogram import SpectrogramDecoder, view_of

        return SpectrogramDecoder(view_of(data_cfg))
    return None


def _captioned_describe(c):
    """(example shape, vocabulary size): the "classes" of a text dataset are its words; that count is the null token."""
    from suite.data.caption_schemes import caption_scheme

    shape = {"shapes-text": (3, c.image_size, c.image_size), "moving-shapes-text": (3, c.frames, c.image_size, c.image_size)}
    return shape.get(c.name) or _tones_shape(c), caption_scheme(c.name).null_token


register_dataset("shapes-text", describe=_captioned_describe, condition="text")(_captioned)
register_dataset("moving-shapes-text", describe=_captioned_describe, rate=_video_fps, condition="text")(_captioned)
register_dataset("tones-text", describe=_captioned_describe, rate=lambda c: c.sample_rate, condition="text")(_captioned)


@register_dataset("folder", describe=lambda c: ((3, c.image_size, c.image_size), None))
def _folder(c) -> Dataset:
    if not c.root:
        raise ConfigError("data.root: the 'folder' dataset needs data.root=<dir with one folder per class>")
    return ImageFolderDataset(c.root, c.image_size, hflip=c.hflip)


def _latents_describe(c):
    """(latent shape, classes) from the first shard's meta-data when the shards are there (memory-
    mapped: nothing is read but the header), else None (the data decides at build time)."""
    shards = sorted(Path(c.root).expanduser().glob("shard-*.pt")) if c.root and Path(c.root).expanduser().is_dir() else []
    if not shards:
        return None
    try:
        part = torch.load(shards[0], map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an unreadable shard: the dataset's own build reports it
        return None
    meta = part.get("meta", {})
    if "num_classes" not in meta:
        return None
    return tuple(part["latents"].shape[1:]), int(meta["num_classes"])


def _latents_rate(c) -> float | None:
    """Frames / samples per second of the media the latents decode to: as the shards record it,
    else (no shards: an imported checkpoint) the audio VAE's own rate, else None."""
    from suite.data.datasets import read_shard_meta

    meta = read_shard_meta(c.root)
    if meta is not None:
        return meta.get("rate")
    if c.vae and (Path(c.vae).expanduser() / "config.json").is_file():
        import json

        rate = json.loads((Path(c.vae).expanduser() / "config.json").read_text()).get("sampling_rate")
        return float(rate) if rate else None
    return None


def _latents_text_dim(c) -> int:
    """Captioned shards (`suite data encode --text-encoder`) record their embeddings' width; 0 otherwise."""
    from suite.data.datasets import read_shard_meta

    return int((read_shard_meta(c.root) or {}).get("text_dim") or 0)


@register_dataset("latents", describe=_latents_describe, rate=_latents_rate,
                  condition=lambda c: "text" if _latents_text_dim(c) else "class", text_dim=_latents_text_dim)
def _latents(c) -> Dataset:
    if not c.root:
        raise ConfigError("data.root: the 'latents' dataset needs data.root=<dir of shard-*.pt>")
    return LatentShardDataset(c.root, c.vae)


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
    """The one way to get a dataset: the registered builder for `data.name`, then the split.
    Random flips (data.hflip) apply to the training split only. `unseen`: the held-out attribute
    combinations of a captioned built-in (shapes-text, moving-shapes-text, tones-text)."""
    if split not in ("train", "test", "all", "unseen"):
        raise ConfigError(f"split: {split!r} not allowed; allowed: train, test, all, unseen")
    if split == "unseen":
        from suite.data.caption_schemes import CAPTIONED_BUILTINS

        if data_cfg.name not in CAPTIONED_BUILTINS:
            raise ConfigError(f"split: 'unseen' (held-out attribute combinations) exists for the captioned built-ins "
                              f"({', '.join(CAPTIONED_BUILTINS)}) only, not {data_cfg.name!r}")
        return _captioned(data_cfg, unseen=True)
    full = DATASETS.get(data_cfg.name).build(data_cfg)
    if split != "train" and getattr(full, "hflip", False):
        full.hflip = False
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
