"""Torch datasets. Every item: {"x0": (C,H,W), "y": int, "pixels": (3,H',W') in [-1,1], "index": int}."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from suite.data.folders import class_files
from suite.errors import MissingFileError


class TensorImageDataset(Dataset):
    """Images already in memory (built-in data): x0 is the image itself."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, name: str, hflip: bool = False):
        self.images, self.labels, self.num_classes, self.name, self.hflip = images, labels, num_classes, name, hflip
        self.image_shape = tuple(images.shape[1:])  # (C, H, W)
        self.pixel_shape = (3, *self.image_shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        x = self.images[i]
        if self.hflip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        pixels = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        return {"x0": x, "y": int(self.labels[i]), "pixels": pixels, "index": i}


class TensorMediaDataset(Dataset):
    """Video (3, T, H, W) or audio (1, L) clips in memory (built-in data). x0 and `pixels` are the
    clip itself (what external encoders and media writers see); every item has its caption.
    No flips: mirroring a clip would change its class (the direction of motion)."""

    def __init__(self, clips: torch.Tensor, labels: torch.Tensor, captions: list[str], num_classes: int, name: str,
                 kind: str, rate: float, class_names: list[str], class_captions: list[str] | None = None):
        self.images, self.labels, self.captions, self.num_classes, self.name = clips, labels, captions, num_classes, name
        self.kind = kind  # "video" | "audio" (suite.media reads it)
        self.rate = rate  # frames per second (video) or samples per second (audio)
        self.class_names = class_names[:num_classes]
        self.class_captions = None if class_captions is None else class_captions[:num_classes]  # a caption per class (CLAP score)
        self.image_shape = self.pixel_shape = tuple(clips.shape[1:])  # (3, T, H, W) | (1, L)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        x = self.images[i]
        return {"x0": x, "y": int(self.labels[i]), "pixels": x, "index": i, "caption": self.captions[i]}


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFolderDataset(Dataset):
    """root/<class>/<image> (or, `flat`, root/<image>: one class, as captioned folders may be):
    resized (centre crop) to image_size, RGB, in [-1, 1]."""

    def __init__(self, root: str, image_size: int, hflip: bool = False, flat: bool = False, key: str = "data.root"):
        self.root = Path(root)
        classes, self.files = class_files(root, IMAGE_EXTS, "image", flat, key)
        self.classes, self.num_classes, self.image_size, self.hflip = classes, len(classes), image_size, hflip
        self.name = f"folder:{self.root.name}"
        self.image_shape = self.pixel_shape = (3, image_size, image_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        path, label = self.files[i]
        img = Image.open(path).convert("RGB")
        w, h = img.size
        side = min(w, h)
        img = img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
        img = img.resize((self.image_size, self.image_size), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        if self.hflip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return {"x0": x, "y": label, "pixels": x, "index": i}


def store_media(x: torch.Tensor) -> torch.Tensor:
    """Media in [-1, 1] → its compact stored form: images/video uint8, audio (B, 1, L) int16 mono."""
    if x.dim() == 3:  # (B, C, L) audio
        return (x.float().mean(1, keepdim=True).clamp(-1, 1) * 32767).round().to(torch.int16)
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def load_media(stored: torch.Tensor) -> torch.Tensor:
    """The stored form back to float media in [-1, 1] (inverse of `store_media` up to rounding)."""
    if stored.dtype == torch.int16:
        return stored.float() / 32767
    return stored.float() / 127.5 - 1


class LatentDecoder:
    """Latents → media in [-1, 1] through the local VAE of `data.vae` (its diffusers class read
    from the VAE directory, or `vae_class` as the shards record it; the latent normalisation as
    the shards record it, else from the VAE's config): what a latent run needs to make images,
    video or audio, with or without its training shards (an imported checkpoint has none)."""

    def __init__(self, vae_path: str | None, meta: dict | None = None):
        self.vae_path, self.meta, self._vae, self._norm = vae_path, dict(meta or {}), None, None

    @torch.no_grad()
    def to_pixels(self, x0: torch.Tensor) -> torch.Tensor:
        """Generated latents → images (B, 3, H, W), video (B, 3, T, H, W) or audio (B, 1, L) in [-1, 1]."""
        if self.vae_path is None:
            from suite.errors import ConfigError

            raise ConfigError("data.vae: metrics and samples on latents need the VAE decoder; set data.vae=<VAE directory>")
        from suite.data.vae import decode_latents, latent_normalisation, load_vae

        if self._vae is None:
            self._vae = load_vae(self.vae_path, "cpu", self._vae_kind())
            norm = latent_normalisation(self._vae)
            if "latent_scale" in self.meta:
                norm = {"shift": list(self.meta["latent_shift"]), "scale": list(self.meta["latent_scale"])}
            self._norm = norm
        return decode_latents(self._vae, x0, self._norm)

    def _vae_kind(self) -> str:
        """The VAE kind to load: the directory's class, checked against the one the shards name."""
        from suite.errors import ConfigError
        from suite.data.vae import VAE_CLASSES, vae_class_name

        recorded = self.meta.get("vae_class")
        try:
            found = vae_class_name(self.vae_path)
        except ConfigError:  # a config.json without a known _class_name: trust the shards
            if recorded not in VAE_CLASSES:
                raise
            return VAE_CLASSES[recorded][0]
        if recorded and recorded != found:
            raise ConfigError(f"data.vae: {self.vae_path} is an {found}, but the latents were encoded with an {recorded}")
        return VAE_CLASSES[found][0]


def read_shard_meta(root: str | None) -> dict | None:
    """The `meta` of the first latent shard under `root` (memory-mapped: no tensor is read), or None."""
    shards = sorted(Path(root).expanduser().glob("shard-*.pt")) if root and Path(root).expanduser().is_dir() else []
    if not shards:
        return None
    try:
        return dict(torch.load(shards[0], map_location="cpu", weights_only=True, mmap=True).get("meta", {}))
    except Exception:  # an unreadable shard: the dataset's own build reports it
        return None


class LatentShardDataset(Dataset):
    """Precomputed latents (REPA-style), written by `suite data encode` (suite.data.latents has the
    shard format): image (C, h, w), video (C, t, h, w) or audio (C, l) latents with their labels
    and the media they came from (`pixels`, so external encoders see what belongs to each latent).
    Captioned shards (suite.data.latents) make it a text dataset: `y` is the caption's embeddings
    (L, E) float (padding zero: the MM-DiT's null token), and items carry the `caption` string.
    """

    def __init__(self, root: str, vae_path: str | None = None):
        self.root, self.vae_path, self._vae = Path(root), vae_path, None
        shards = sorted(self.root.glob("shard-*.pt")) if self.root.is_dir() else []
        if not shards:
            raise MissingFileError(f"data.root: no latent shards (shard-*.pt) in {root}; write them with `suite data encode`")
        parts = [torch.load(s, map_location="cpu", weights_only=True) for s in shards]
        self.latents = torch.cat([p["latents"] for p in parts]).float()
        self.labels = torch.cat([p["labels"] for p in parts]).long()
        self.pixels = torch.cat([p["pixels"] for p in parts]) if all("pixels" in p for p in parts) else None
        self.meta = dict(parts[0].get("meta", {}))
        self.num_classes = int(self.meta.get("num_classes", int(self.labels.max()) + 1))
        self.name = f"latents:{self.root.name}"
        self.kind = self.meta.get("modality", "image")  # image | video | audio: the media the latents decode to
        self.rate = self.meta.get("rate")  # frames / samples per second of that media (None: images)
        self.image_shape = tuple(self.latents.shape[1:])
        self.pixel_shape = tuple(self.pixels.shape[1:]) if self.pixels is not None else None
        self.text, self.captions, self.text_dim, self.condition = None, None, 0, "class"
        if all("text_embeddings" in p for p in parts):
            self.text = torch.cat([p["text_embeddings"] for p in parts])  # (n, L, E) bfloat16
            self.captions = [c for p in parts for c in p["captions"]]
            self.text_dim, self.condition = int(self.text.shape[-1]), "text"

    def __len__(self) -> int:
        return self.latents.shape[0]

    def to_pixels(self, x0: torch.Tensor) -> torch.Tensor:
        """Generated latents → media in [-1, 1] through the VAE decoder (data.vae), as the shards record it."""
        if self._vae is None:
            self._vae = LatentDecoder(self.vae_path, self.meta)
        return self._vae.to_pixels(x0)

    def preview_conditions(self, n: int) -> torch.Tensor | None:
        """Sample grids of captioned shards: the first n examples' caption embeddings (n, L, E); None
        for class labels (the trainer then shows the classes in turn)."""
        return None if self.text is None else self.text[torch.arange(n) % len(self)].float()

    def __getitem__(self, i: int) -> dict:
        item = {"x0": self.latents[i], "y": int(self.labels[i]), "index": i}
        if self.text is not None:
            item["y"], item["caption"] = self.text[i].float(), self.captions[i]  # (L, E): zeros stay zeros
        if self.pixels is not None:
            item["pixels"] = load_media(self.pixels[i])
        return item
