"""Torch datasets. Every item: {"x0": (C,H,W), "y": int, "pixels": (3,H',W') in [-1,1], "index": int}."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

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
    """root/<class>/<image>: resized (centre crop) to image_size, RGB, in [-1, 1]."""

    def __init__(self, root: str, image_size: int, hflip: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingFileError(f"data.root: image folder not found: {root}")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.files = [(f, c) for c, name in enumerate(classes) for f in sorted((self.root / name).iterdir()) if f.suffix.lower() in IMAGE_EXTS]
        if not self.files:
            raise MissingFileError(f"data.root: no images under {root} (expected {root}/<class>/<image>{IMAGE_EXTS})")
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


class LatentDecoder:
    """Latents → pixels through a local AutoencoderKL (data.vae); what a latent run needs to make images,
    with or without its training shards (an imported checkpoint has none)."""

    def __init__(self, vae_path: str | None):
        self.vae_path, self._vae = vae_path, None

    @torch.no_grad()
    def to_pixels(self, x0: torch.Tensor) -> torch.Tensor:
        """Generated latents (B, C, h, w) → pixels (B, 3, H, W) in [-1, 1]."""
        if self.vae_path is None:
            from suite.errors import ConfigError

            raise ConfigError("data.vae: image metrics on latents need the VAE decoder; set data.vae=<AutoencoderKL directory>")
        if self._vae is None:
            from suite.data.latents import load_vae

            self._vae = load_vae(self.vae_path, "cpu")
        scale = float(getattr(self._vae.config, "scaling_factor", 0.18215))
        out = [self._vae.decode(x0[i:i + 32].float().cpu() / scale).sample for i in range(0, x0.shape[0], 32)]
        return torch.cat(out).clamp(-1, 1)


class LatentShardDataset(Dataset):
    """Precomputed latents (REPA-style): root/shard-*.pt each {latents (n,C,h,w), labels (n,), pixels uint8 (n,3,H,W)}.

    Written by `suite.data.latents.encode_folder`. Raw pixels ride along so external encoders see the
    images that belong to each latent.
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
        meta = parts[0].get("meta", {})
        self.num_classes = int(meta.get("num_classes", int(self.labels.max()) + 1))
        self.name = f"latents:{self.root.name}"
        self.image_shape = tuple(self.latents.shape[1:])
        self.pixel_shape = tuple(self.pixels.shape[1:]) if self.pixels is not None else None

    def __len__(self) -> int:
        return self.latents.shape[0]

    def to_pixels(self, x0: torch.Tensor) -> torch.Tensor:
        """Generated latents (B, C, h, w) → pixels (B, 3, H, W) in [-1, 1] through the VAE decoder (data.vae)."""
        if self._vae is None:
            self._vae = LatentDecoder(self.vae_path)
        return self._vae.to_pixels(x0)

    def __getitem__(self, i: int) -> dict:
        item = {"x0": self.latents[i], "y": int(self.labels[i]), "index": i}
        if self.pixels is not None:
            item["pixels"] = self.pixels[i].float() / 127.5 - 1
        return item
