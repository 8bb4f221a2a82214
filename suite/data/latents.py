"""Precompute VAE latents once (REPA-style): images, video or audio folders → latent shards that
`data.name=latents` reads. The VAE (its class detected from its config.json: suite.data.vae) is
read from an explicit path; nothing is downloaded.

    suite data encode --folder DIR --vae PATH --out DIR

Shard format (one convention for every modality), `shard-%05d.pt`:
    latents  (n, C, h, w) | (n, C, t, h, w) | (n, C, l)   normalised: (z − shift) · scale
    labels   (n,) long
    pixels   the media each latent came from, for external encoders and reference statistics:
             images (n, 3, H, W) / video (n, 3, T, H, W) uint8, audio (n, 1, L) int16 (mono)
    meta     {"num_classes", "modality": image|video|audio, "vae_class": the diffusers class,
              "latent_shift", "latent_scale": per-channel lists, "rate": fps / samples per s | None}

Captioned shards (`--text-encoder NAME --text-weights DIR`; captions from `x.txt` beside `x.png`
or `--captions manifest`: suite.data.captioned) add
    text_embeddings  (n, L, E) bfloat16  the text encoder's per-token embeddings, padding zeroed
    text_masks       (n, L) bool         which tokens are the caption's
    captions         n strings           the captions themselves (CLIP score, previews)
    meta             + {"text_encoder", "text_weights", "text_max_length", "text_layers", "text_dim"}
and the latent dataset then yields the embeddings as `y` (condition "text", model.text_dim = E).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from suite.data.datasets import store_media
from suite.data.vae import check_media_shape, encode_media, latent_normalisation, load_vae, media_rate, vae_modality

__all__ = ["ShardWriter", "encode_dataset", "folder_dataset", "load_vae", "store_media"]


class ShardWriter:
    """Buffers named columns (latents, labels, pixels, anything else a caller adds) and writes
    `shard-%05d.pt` files of `shard_size` rows, atomically, each with the same `meta`."""

    def __init__(self, out_dir: str, meta: dict, shard_size: int = 4096):
        self.out, self.meta, self.shard_size = Path(out_dir), dict(meta), shard_size
        self.out.mkdir(parents=True, exist_ok=True)
        self.buffers: dict[str, list] = {}
        self.rows, self.shard, self.total = 0, 0, 0

    def add(self, **columns) -> None:
        """Append a batch: each column a tensor with the batch on dim 0 (or a list of the same length)."""
        n = len(next(iter(columns.values())))
        for k, v in columns.items():
            self.buffers.setdefault(k, []).append(v)
        self.rows, self.total = self.rows + n, self.total + n
        if self.rows >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        data = {k: (torch.cat(v) if isinstance(v[0], torch.Tensor) else [x for part in v for x in part]) for k, v in self.buffers.items()}
        data["meta"] = self.meta
        tmp = self.out / f".shard-{self.shard:05d}.pt.tmp"
        torch.save(data, tmp)
        tmp.rename(self.out / f"shard-{self.shard:05d}.pt")
        self.buffers, self.rows, self.shard = {}, 0, self.shard + 1

    def close(self) -> int:
        self.flush()
        return self.total


def folder_dataset(vae, folder: str, image_size: int = 256, frames: int = 17, audio_length: int = 131072, flat: bool = False):
    """The media folder (root/<class>/<file>; `flat`: also root/<file>, one class) that `vae` encodes,
    read as its modality needs: images or video clips at `image_size`² (video: `frames` frames),
    audio at the VAE's sample rate and channel count (`audio_length` samples). Items have `pixels`
    in [-1, 1] and `y`."""
    from suite.data.datasets import ImageFolderDataset
    from suite.data.media_files import AudioFolderDataset, VideoFolderDataset

    modality = vae_modality(vae)
    if modality == "video":
        return VideoFolderDataset(folder, frames, image_size, flat=flat, key="--folder")
    if modality == "audio":
        return AudioFolderDataset(folder, audio_length, media_rate(vae), int(getattr(vae.config, "audio_channels", 1)), flat=flat,
                                  key="--folder")
    return ImageFolderDataset(folder, image_size, flat=flat, key="--folder")


@torch.no_grad()
def encode_dataset(dataset, vae, out_dir: str, shard_size: int = 4096, batch_size: int = 64, device: str = "cpu",
                   text_encoder=None) -> int:
    """Encode every item's `pixels` (a sample of the posterior, normalised by the VAE's latent
    shift/scale) into shards; returns how many items were written. With `text_encoder`
    (suite.text) the items' `caption`s are embedded into the captioned columns too."""
    norm = latent_normalisation(vae)
    modality = vae_modality(vae)
    rate = media_rate(vae) if modality == "audio" else getattr(dataset, "rate", None)
    check_media_shape(vae, tuple(dataset.pixel_shape))
    meta = {"num_classes": int(getattr(dataset, "num_classes", 0)), "modality": modality, "vae_class": type(vae).__name__,
            "latent_shift": norm["shift"], "latent_scale": norm["scale"], "rate": float(rate) if rate else None}
    if text_encoder is not None:
        meta.update(text_encoder.describe())
    writer = ShardWriter(out_dir, meta, shard_size)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        pix = batch["pixels"].to(device)  # (B, 3, H, W) | (B, 3, T, H, W) | (B, C, L) in [-1, 1]
        lat = encode_media(vae, pix, norm)  # (B, C', …)
        text = {}
        if text_encoder is not None:
            emb, mask = text_encoder.encode(batch["caption"])  # (B, L, E), (B, L)
            text = {"text_embeddings": emb.to(torch.bfloat16).cpu(), "text_masks": mask.cpu(), "captions": list(batch["caption"])}
        writer.add(latents=lat.cpu(), labels=batch["y"], pixels=store_media(pix.cpu()), **text)
    return writer.close()
