"""The caption columns of captioned latent shards, read without the rest.

A CLIP-score evaluation of a text-to-image run needs, per sample, a caption's embeddings (what the
model is conditioned on) and the caption string (what CLIP scores against), never the latents or
the stored pixels. `ShardCaptions` memory-maps each shard (`torch.load(mmap=True)`), keeps only
`text_embeddings`, `text_masks` and `captions`, and reads the rows asked for, so drawing 50k
captions from an ImageNet-sized set decodes no image and reads only those rows' embeddings.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch

from suite.errors import ConfigError, MissingFileError


class ShardCaptions:
    """`captions[i]` (str), `conditions(indices)` (b, L, E) float and `masks(indices)` (b, L) bool of
    the shards under `root`, indexed as `LatentShardDataset` indexes them (shard order, then row);
    `select(rows)` gives the view a split sees (as `build_dataset`'s split of the same shards)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        shards = sorted(self.root.glob("shard-*.pt")) if self.root.is_dir() else []
        if not shards:
            raise MissingFileError(f"data.root: no latent shards (shard-*.pt) in {root}; write them with `suite data encode`")
        self._embeddings: list[torch.Tensor] = []  # per shard (n_s, L, E) bfloat16, memory-mapped
        self._masks: list[torch.Tensor | None] = []  # per shard (n_s, L) bool, memory-mapped
        self.captions: list[str] = []
        self.meta: dict = {}
        for s in shards:
            part = torch.load(s, map_location="cpu", weights_only=True, mmap=True)  # no tensor is read yet
            if "text_embeddings" not in part or "captions" not in part:
                raise ConfigError(f"data.root: {s} has no captions; write captioned shards with "
                                  "`suite data encode --text-encoder NAME`")
            self.meta = self.meta or dict(part.get("meta", {}))
            self._embeddings.append(part["text_embeddings"])
            self._masks.append(part.get("text_masks"))
            self.captions.extend(part["captions"])
            del part  # latents and pixels stay unread on disk
        sizes = torch.tensor([e.shape[0] for e in self._embeddings])
        self._starts = torch.cumsum(sizes, 0) - sizes  # (S,) first row of each shard
        self.text_dim = int(self._embeddings[0].shape[-1])
        self._rows: torch.Tensor | None = None  # (n,) global rows of this view; None: every row

    def select(self, rows: Sequence[int] | torch.Tensor) -> "ShardCaptions":
        """The view of `rows` (indices of this view), indexed 0..len(rows) − 1."""
        view = copy.copy(self)
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        view._rows = rows if self._rows is None else self._rows[rows]
        view.captions = [self.captions[int(i)] for i in rows]
        return view

    def __len__(self) -> int:
        return len(self.captions)

    def _locate(self, indices: Sequence[int] | torch.Tensor) -> list[tuple[int, int]]:
        """Indices of this view → (shard, row) pairs."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"caption index out of range 0..{len(self) - 1}")
        if self._rows is not None:
            idx = self._rows[idx]
        shard = torch.searchsorted(self._starts, idx, right=True) - 1  # (b,)
        return [(int(s), int(i - self._starts[s])) for s, i in zip(shard, idx)]

    def conditions(self, indices) -> torch.Tensor:
        """(b, L, E) float32 caption embeddings: what the model is conditioned on (padding exactly zero)."""
        return torch.stack([self._embeddings[s][r] for s, r in self._locate(indices)]).float()

    def masks(self, indices) -> torch.Tensor:
        """(b, L) bool: which tokens are the caption's (derived from non-zero tokens for shards without the column)."""
        rows = []
        for s, r in self._locate(indices):
            m = self._masks[s]
            rows.append(m[r].bool() if m is not None else (self._embeddings[s][r] != 0).any(-1))
        return torch.stack(rows)

    def texts(self, indices) -> list[str]:
        """The caption strings of `indices`."""
        return [self.captions[int(i)] for i in torch.as_tensor(indices).reshape(-1)]


TEXT_ENCODER_KEYS = ("text_encoder", "text_weights", "text_max_length", "text_layers", "text_dim")


def text_encoder_record(meta: dict | None) -> dict | None:
    """What a captioned shard's meta says about the encoder that embedded its captions (name,
    weights directory, max_length, layers, width; `suite.text.TextEncoder.describe`), or None for
    shards without captions. Runs keep it with their model (`model_spec`), so `suite sample
    --caption` embeds new captions the same way after the shards have moved."""
    if not meta or not meta.get("text_encoder"):
        return None
    return {k: meta[k] for k in TEXT_ENCODER_KEYS if k in meta}
