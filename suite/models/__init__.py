"""Backbones. `build_model(cfg.model, data_shape, num_classes)` is the one way to make one."""
from __future__ import annotations

from suite.models.presets import default_layers, parse_preset
from suite.models.sit import SiT

__all__ = ["SiT", "build_model", "model_dims", "default_layers"]


def model_dims(model_cfg) -> dict:
    """The preset's sizes with any explicit width/depth/heads/patch overrides applied."""
    dims = parse_preset(model_cfg.preset)
    for k in ("hidden_size", "depth", "num_heads", "patch_size", "mlp_ratio"):
        v = getattr(model_cfg, k)
        if v is not None:
            dims[k] = v
    if dims["hidden_size"] % dims["num_heads"]:
        from suite.errors import ConfigError

        raise ConfigError(f"model: hidden_size {dims['hidden_size']} is not divisible by num_heads {dims['num_heads']}")
    return dims


def build_model(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> SiT:
    """data_shape = what the generator learns: (C, H, W) images/latents, (C, T, H, W) video, (C, L) audio."""
    dims = model_dims(model_cfg)
    try:
        return SiT(data_shape=tuple(data_shape), num_classes=num_classes, **dims)
    except ValueError as e:
        from suite.errors import ConfigError

        raise ConfigError(f"model.patch_size: {e}") from None
