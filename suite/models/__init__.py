"""Backbones. `build_model(cfg.model, data_shape, num_classes)` is the one way to make one; backbones
register by name in `BACKBONES` (`model.backbone`; the SiT is built in, plugins may add others).

A backbone is an nn.Module with the interface the methods use (docs/ARCHITECTURE.md):
`model(x, t, y, taps=..., stop_after=..., attn_groups=...)`, `num_tokens`, `modality`, `depth`,
`hidden_size`, `num_classes`, `null_class`, `forward_with_cfg`.
"""
from __future__ import annotations

from suite.errors import ConfigError
from suite.models.presets import default_layers, parse_preset
from suite.models.sit import SiT
from suite.registry import Registry

__all__ = ["BACKBONES", "SiT", "build_model", "model_dims", "model_spec", "register_backbone", "default_layers"]

BACKBONES = Registry("backbone", "model.backbone")


def register_backbone(name: str):
    """Decorator on `build(model_cfg, data_shape, num_classes) -> nn.Module`."""
    return BACKBONES.register(name)


def model_dims(model_cfg) -> dict:
    """The preset's sizes with any explicit width/depth/heads/patch overrides applied."""
    dims = parse_preset(model_cfg.preset)
    for k in ("hidden_size", "depth", "num_heads", "patch_size", "mlp_ratio"):
        v = getattr(model_cfg, k)
        if v is not None:
            dims[k] = v
    for k in ("hidden_size", "depth", "num_heads", "patch_size"):
        if dims[k] < 1:
            raise ConfigError(f"model.{k}: must be ≥ 1, got {dims[k]}")
    if dims["hidden_size"] % dims["num_heads"]:
        raise ConfigError(f"model.num_heads: hidden_size {dims['hidden_size']} is not divisible by num_heads {dims['num_heads']}")
    return dims


@register_backbone("sit")
def _sit(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> SiT:
    try:
        return SiT(data_shape=tuple(data_shape), num_classes=num_classes, **model_dims(model_cfg))
    except ValueError as e:
        raise ConfigError(f"model.patch_size: {e}") from None


def build_model(model_cfg, data_shape: tuple[int, ...], num_classes: int):
    """data_shape = what the generator learns: (C, H, W) images/latents, (C, T, H, W) video, (C, L) audio."""
    return BACKBONES.get(model_cfg.backbone)(model_cfg, tuple(data_shape), int(num_classes))


def model_spec(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> dict:
    """What a run directory records so its model can be rebuilt without its data (self-describing runs)."""
    return {"backbone": model_cfg.backbone, "data_shape": [int(d) for d in data_shape], "num_classes": int(num_classes)}
