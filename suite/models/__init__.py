"""Backbones. `build_model(cfg.model, data_shape, num_classes)` is the one way to make one; backbones
register by name in `BACKBONES` (`model.backbone`: the per-token SiT and the FLUX.2-style MM-DiT are
built in, plugins may add others).

A backbone is an nn.Module with the interface the methods use (docs/ARCHITECTURE.md):
`model(x, t, y, taps=..., stop_after=..., attn_groups=...)`, `num_tokens`, `modality`, `depth`,
`hidden_size`, `num_classes`, `null_class`, `forward_with_cfg`, and `blocks`: its `depth` transformer
blocks in the order taps and `stop_after` number them (FSDP shards each, suite.train.fsdp).
"""
from __future__ import annotations

from suite.errors import ConfigError
from suite.models.mmdit import MMDiT
from suite.models.presets import default_layers, parse_preset
from suite.models.sit import SiT
from suite.registry import Registry

__all__ = ["BACKBONES", "SiT", "MMDiT", "build_model", "check_condition", "model_dims", "model_spec", "register_backbone",
           "default_layers"]

BACKBONES = Registry("backbone", "model.backbone")
PRESET_FAMILIES = {"sit": "SiT-", "mmdit": "MMDiT-"}  # built-in backbone → the prefix of its presets


def register_backbone(name: str):
    """Decorator on `build(model_cfg, data_shape, num_classes) -> nn.Module`."""
    return BACKBONES.register(name)


def model_dims(model_cfg) -> dict:
    """The preset's sizes with any explicit width/depth/heads/patch/double-block overrides applied."""
    backbone = model_cfg.backbone
    family = PRESET_FAMILIES.get(backbone)
    if family and not model_cfg.preset.startswith(family):
        raise ConfigError(f"model.preset: {model_cfg.preset!r} is not a model.backbone={backbone} preset "
                          f"(expected {family}…); set model.backbone to match")
    text_dim = getattr(model_cfg, "text_dim", 0)
    if text_dim < 0 or (text_dim and backbone != "mmdit"):
        raise ConfigError(f"model.text_dim: {text_dim} " + ("must be ≥ 0" if text_dim < 0 else
                          "needs model.backbone=mmdit (only the MM-DiT takes caption embeddings)"))
    dims = parse_preset(model_cfg.preset)
    for k in ("hidden_size", "depth", "num_heads", "patch_size", "mlp_ratio", "double_blocks"):
        v = getattr(model_cfg, k, None)
        if v is not None and (k != "double_blocks" or backbone == "mmdit"):
            dims[k] = v
    for k in ("hidden_size", "depth", "num_heads", "patch_size"):
        if dims[k] < 1:
            raise ConfigError(f"model.{k}: must be ≥ 1, got {dims[k]}")
    if dims["hidden_size"] % dims["num_heads"]:
        raise ConfigError(f"model.num_heads: hidden_size {dims['hidden_size']} is not divisible by num_heads {dims['num_heads']}")
    if backbone == "mmdit":
        dims["double_blocks"] = min(dims["double_blocks"], dims["depth"])  # a depth override keeps at most depth
    return dims


@register_backbone("sit")
def build_sit(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> SiT:
    try:
        return SiT(data_shape=tuple(data_shape), num_classes=num_classes, **model_dims(model_cfg))
    except ValueError as e:
        raise ConfigError(f"model.patch_size: {e}") from None


@register_backbone("mmdit")
def build_mmdit(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> MMDiT:
    try:
        return MMDiT(data_shape=tuple(data_shape), num_classes=num_classes, text_time=model_cfg.text_time,
                     text_dim=model_cfg.text_dim, **model_dims(model_cfg))
    except ValueError as e:
        raise ConfigError(f"model.patch_size: {e}") from None


def build_model(model_cfg, data_shape: tuple[int, ...], num_classes: int):
    """data_shape = what the generator learns: (C, H, W) images/latents, (C, T, H, W) video, (C, L) audio."""
    return BACKBONES.get(model_cfg.backbone)(model_cfg, tuple(data_shape), int(num_classes))


def model_spec(model_cfg, data_shape: tuple[int, ...], num_classes: int, text_encoder: dict | None = None) -> dict:
    """What a run directory records so its model can be rebuilt without its data (self-describing runs);
    for caption embeddings also the text encoder that made them (to embed new captions alike)."""
    spec = {"backbone": model_cfg.backbone, "data_shape": [int(d) for d in data_shape], "num_classes": int(num_classes)}
    if text_encoder:
        spec["text_encoder"] = dict(text_encoder)
    return spec


def check_condition(model, condition: str, text_dim: int = 0) -> None:
    """A dataset's condition kind ("class" labels or "text": token ids when `text_dim` is 0, else
    caption embeddings of `text_dim` dims) must be one the backbone takes."""
    model_dim = int(getattr(model, "text_dim", 0) or 0)
    if condition == "text" and not getattr(model, "accepts_text", False):
        raise ConfigError("model.backbone: text conditions need model.backbone=mmdit (and an MMDiT-* preset)")
    if condition != "text" and model_dim:
        raise ConfigError(f"model.text_dim: {model_dim} takes caption embeddings, but this data has class labels; "
                          "use captioned latent shards (suite data encode --text-encoder) or model.text_dim=0")
    if condition == "text" and model_dim != text_dim:
        raise ConfigError(f"model.text_dim: the data's captions are " + (f"{text_dim}-dim embeddings" if text_dim else "token ids")
                          + f", the model expects {model_dim or 'token ids'}; set model.text_dim={text_dim}")
