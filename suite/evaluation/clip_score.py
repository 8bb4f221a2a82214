"""CLIP score on real text-to-image data: `clipscore<n>_clip` (e.g. `eval/clipscore2k_clip`).

CLIP score (Hessel et al. 2021, as torchmetrics computes it) = mean over samples of
100 · max(cos(image embedding, caption embedding), 0), with a transformers `CLIPModel` read from
`eval.clip_weights` (a local directory: config.json, weights, the tokenizer and, when present,
preprocessor_config.json; normally openai/clip-vit-large-patch14). Nothing is downloaded.

Images (B, 3, H, W) uint8 are preprocessed as CLIPImageProcessor does, on tensors: resize the
shortest side to the model's image size (bicubic, antialiased), centre crop, scale to [0, 1],
normalise with the processor's mean/std. Captions are tokenised with the model's tokenizer,
truncated to its context length (77). Each sample is scored against the caption it was
generated for (captioned latent shards: suite.evaluation.run_eval draws the captions).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from suite.errors import SuiteError

CLIP_REPO = "openai/clip-vit-large-patch14"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_score(image_features: torch.Tensor, text_features: torch.Tensor) -> float:
    """100 · mean(max(cos, 0)) of paired (N, D) image and caption embeddings."""
    cos = F.cosine_similarity(image_features.double(), text_features.double(), dim=-1)  # (N,)
    return float(100 * cos.clamp(min=0).mean())


def _pooled(out) -> torch.Tensor:
    """transformers ≥ 5 returns the projected embeddings as `pooler_output` of an output object; older ones a tensor."""
    return out if torch.is_tensor(out) else out.pooler_output


class ClipExtractor:
    """Images (B, 3, H, W) uint8 → {"features": (B, D)} CLIP image embeddings; `text_features(texts)`
    → (N, D) caption embeddings (both projected, not normalised: the score takes the cosine)."""

    adm_compatible = False
    has_spatial = False
    has_logits = False

    def __init__(self, weights: str | None, device="cpu", batch_size: int = 64, name: str = "clip"):
        from transformers import CLIPModel

        from suite.evaluation.extractors import _dir_fingerprint
        from suite.text.hf import load_pretrained, load_tokenizer, model_dir

        what = "the CLIP score's CLIPModel"
        src = model_dir(what, "eval.clip_weights", weights, CLIP_REPO)
        self.model = load_pretrained(CLIPModel, what, "eval.clip_weights", src, CLIP_REPO).to(device).eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(what, "eval.clip_weights", src, CLIP_REPO)
        vision = self.model.config.vision_config
        self.size, self.crop = int(vision.image_size), int(vision.image_size)
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        pre = src / "preprocessor_config.json"
        if pre.is_file():  # the processor's own numbers, as CLIPProcessor would use them
            p = json.loads(pre.read_text())
            size, crop = p.get("size", {}), p.get("crop_size", {})
            self.size = int(size.get("shortest_edge", size) if isinstance(size, dict) else size)
            self.crop = int(crop.get("height", crop) if isinstance(crop, dict) else crop)
            self.mean, self.std = tuple(p.get("image_mean", self.mean)), tuple(p.get("image_std", self.std))
        self.context = int(self.model.config.text_config.max_position_embeddings)
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.weights_path = str(src)
        self.fingerprint = f"{name}-{_dir_fingerprint(Path(src))}"
        self.preprocess = f"bicubic antialiased resize shortest side → {self.size}, centre crop {self.crop}, CLIP mean/std"

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 → (B, 3, crop, crop) normalised float, as CLIPImageProcessor."""
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise SuiteError(f"{self.name} expects images (B, 3, H, W) uint8, got {images.dtype} {tuple(images.shape)}")
        x = images.float()
        h, w = x.shape[-2:]
        if min(h, w) != self.size:
            scale = self.size / min(h, w)
            x = F.interpolate(x, size=(max(self.size, round(h * scale)), max(self.size, round(w * scale))), mode="bicubic",
                              antialias=True, align_corners=False).clamp(0, 255)
        h, w = x.shape[-2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        x = x[..., top:top + self.crop, left:left + self.crop] / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            pv = self.pixel_values(images[i:i + self.batch_size]).to(self.device)
            out.append(_pooled(self.model.get_image_features(pixel_values=pv)).float().cpu())
        return {"features": torch.cat(out)}  # (B, D)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.extract(images)["features"]

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        """(N,) captions → (N, D) CLIP text embeddings."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            tok = self.tokenizer(list(texts[i:i + self.batch_size]), padding=True, truncation=True, max_length=self.context,
                                 return_tensors="pt").to(self.device)
            out.append(_pooled(self.model.get_text_features(**tok)).float().cpu())
        return torch.cat(out)
