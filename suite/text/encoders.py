"""Pretrained text encoders by name (`text.encoder`): captions → per-token embeddings for the MM-DiT.

    t5     T5EncoderModel + its tokenizer (as FLUX.1 / SD3 use a T5 v1.1 XXL)
    clip   CLIPTextModel + CLIPTokenizer (CLIP ViT-L/14's text tower; 77 tokens)
    qwen3  Qwen3Model (a Qwen3 causal LM's decoder, as FLUX.2 [klein] embeds prompts) — the
           last hidden state, or chosen layers' hidden states concatenated along D

Weights are read from an explicit directory (`text.weights`: `save_pretrained` layout, tokenizer
files beside the model) or a pre-filled Hugging Face cache; nothing is downloaded. A missing
directory or file is one line naming it.

Output convention (docs/TEXT_TO_X.md): `encode(captions)` → embeddings (B, L, D) float32 and a
mask (B, L) bool, always padded/truncated to `max_length` so batches and shards stack. Padded
positions are exactly zero: the MM-DiT reads an all-zero token as its learned null token, so a
padded caption and a dropped one (CFG: every token zero) use the one null embedding, as the
token-id path pads and drops with the one null id.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from suite.errors import ConfigError
from suite.registry import Registry
from suite.text.hf import load_pretrained, load_tokenizer, model_dir

TEXT_ENCODERS = Registry("text encoder", "text.encoder")


@dataclass(frozen=True)
class TextEncoderKind:
    """How to load one kind: the transformers class (by name, imported lazily), the model it is
    normally obtained as (for the one-line hint), its usual token budget, the config model_types it
    may have (a full CLIP directory is `clip`, its text tower alone `clip_text_model`)."""

    model_class: str
    repo_id: str
    max_length: int
    model_types: tuple[str, ...]


def register_text_encoder(name: str, kind: TextEncoderKind) -> None:
    TEXT_ENCODERS.register(name, kind)


register_text_encoder("t5", TextEncoderKind("T5EncoderModel", "google/t5-v1_1-xxl", 256, ("t5",)))
register_text_encoder("clip", TextEncoderKind("CLIPTextModel", "openai/clip-vit-large-patch14", 77, ("clip", "clip_text_model")))
register_text_encoder("qwen3", TextEncoderKind("Qwen3Model", "Qwen/Qwen3-4B", 512, ("qwen3",)))


class TextEncoder:
    """A frozen text model + tokenizer. `layers`: indices into the model's `hidden_states`
    (0 = the token embeddings); empty: `last_hidden_state` (final norm applied)."""

    def __init__(self, name: str, model, tokenizer, max_length: int, layers: Sequence[int] = (), source: str = ""):
        self.name, self.model, self.tokenizer = name, model.eval().requires_grad_(False), tokenizer
        self.max_length, self.layers, self.source = int(max_length), tuple(int(l) for l in layers), source
        n_hidden = int(getattr(model.config, "num_hidden_layers", 0)) + 1  # hidden_states: embeddings + every layer
        for l in self.layers:
            if not -n_hidden <= l < n_hidden:
                raise ConfigError(f"text.layers: layer {l} outside {-n_hidden}..{n_hidden - 1} ({name} has {n_hidden - 1} layers)")
        self.dim = int(model.config.hidden_size) * max(1, len(self.layers))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict:
        """What shards record about the encoder that made their caption embeddings."""
        return {"text_encoder": self.name, "text_weights": self.source, "text_max_length": self.max_length,
                "text_layers": list(self.layers), "text_dim": self.dim}

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """captions (B strings) → embeddings (B, L, D) float32 with padding zeroed, mask (B, L) bool; L = max_length."""
        self.tokenizer.padding_side = "right"  # causal models (qwen3): valid tokens never see the padding
        tok = self.tokenizer(list(captions), padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        ids, mask = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)  # (B, L)
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=bool(self.layers))
        if self.layers:
            h = torch.cat([out.hidden_states[l] for l in self.layers], dim=-1)  # (B, L, D·len(layers))
        else:
            h = out.last_hidden_state  # (B, L, D)
        mask = mask.bool()
        return h.float() * mask[..., None], mask


def load_text_encoder(name: str, weights: str | None = None, max_length: int | None = None, layers: Sequence[int] = (),
                      device: str | torch.device = "cpu", dtype: torch.dtype | None = None, cache_dir: str | None = None,
                      key: str = "text.weights") -> TextEncoder:
    """A registered text encoder from `weights` (a local model directory) or the pre-filled cache of its usual repo."""
    kind = TEXT_ENCODERS.get(name)
    import json

    import transformers

    what = f"text encoder {name}"
    source = model_dir(what, key, weights, kind.repo_id, cache_dir)
    model_type = json.loads((source / "config.json").read_text()).get("model_type")
    if model_type not in kind.model_types:
        raise ConfigError(f"{key}: {source} holds a {model_type!r} model, not {' / '.join(kind.model_types)} "
                          f"(text encoder {name}: {kind.repo_id})")
    model = load_pretrained(getattr(transformers, kind.model_class), what, key, source, kind.repo_id,
                            **({"dtype": dtype} if dtype is not None else {}))
    tokenizer = load_tokenizer(what, key, source, kind.repo_id)
    if tokenizer.pad_token is None:  # decoder-only tokenizers may have none: pad with end-of-text (masked anyway)
        tokenizer.pad_token = tokenizer.eos_token
    return TextEncoder(name, model.to(device), tokenizer, max_length or kind.max_length, layers, str(Path(source)))


def load_recorded_text_encoder(record: dict, weights: str | None = None, device: str | torch.device = "cpu",
                               key: str = "--text-weights") -> TextEncoder:
    """The text encoder that embedded a run's training captions, loaded the same way (its `describe()`
    record: name, max_length, layers) from `weights`, else from the directory it was read from if that
    still holds a model. Embeddings of another width than recorded are refused: other weights."""
    from suite.errors import MissingFileError

    name, max_length, layers = record["text_encoder"], record.get("text_max_length"), tuple(record.get("text_layers") or ())
    how = f"text encoder {name} (max_length {max_length}" + (f", layers {','.join(map(str, layers))})" if layers else ")")
    if weights is None:
        recorded = record.get("text_weights")
        if not recorded or not (Path(recorded).expanduser() / "config.json").is_file():
            where = f"from {recorded}, which no longer holds it" if recorded else "from a directory it did not record"
            raise MissingFileError(f"{key}: this run's captions were embedded by {how} {where}; "
                                   f"pass that model's directory (e.g. {TEXT_ENCODERS.get(name).repo_id}) with {key} DIR")
        weights = recorded
    encoder = load_text_encoder(name, weights, max_length, layers, device, key=key)
    want = record.get("text_dim")
    if want is not None and encoder.dim != int(want):
        raise ConfigError(f"{key}: {encoder.source} gives {encoder.dim}-dim embeddings with {how}, but this run was trained "
                          f"on {want}-dim ones; pass the directory of the model that embedded its captions")
    return encoder
