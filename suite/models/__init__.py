"""Backbones. `build_model(cfg.model, data_shape, num_classes)` is the one way to make one."""
from __future__ import annotations

from suite.errors import ConfigError
from suite.models.mmdit import MMDiT
from suite.models.presets import default_layers, parse_preset
from suite.models.sit import SiT

__all__ = ["SiT", "MMDiT", "build_model", "check_condition", "model_dims", "default_layers"]

BACKBONES = {"sit": "SiT-", "mmdit": "MMDiT-"}  # backbone → its preset family


def model_dims(model_cfg) -> dict:
    """The preset's sizes with any explicit width/depth/heads/patch/double-block overrides applied."""
    backbone = getattr(model_cfg, "backbone", "sit")
    if not model_cfg.preset.startswith(BACKBONES[backbone]):
        raise ConfigError(f"model.preset: {model_cfg.preset!r} is not a model.backbone={backbone} preset "
                          f"(expected {BACKBONES[backbone]}…); set model.backbone to match")
    dims = parse_preset(model_cfg.preset)
    for k in ("hidden_size", "depth", "num_heads", "patch_size", "mlp_ratio", "double_blocks"):
        v = getattr(model_cfg, k, None)
        if v is not None and (k != "double_blocks" or backbone == "mmdit"):
            dims[k] = v
    if dims["hidden_size"] % dims["num_heads"]:
        raise ConfigError(f"model: hidden_size {dims['hidden_size']} is not divisible by num_heads {dims['num_heads']}")
    if backbone == "mmdit":
        dims["double_blocks"] = min(dims["double_blocks"], dims["depth"])  # a depth override keeps at most depth
    return dims


def build_sit(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> SiT:
    try:
        return SiT(data_shape=tuple(data_shape), num_classes=num_classes, **model_dims(model_cfg))
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None


def build_mmdit(model_cfg, data_shape: tuple[int, ...], num_classes: int) -> MMDiT:
    """The MM-DiT builder (at integration: `@register_backbone("mmdit")`)."""
    try:
        return MMDiT(data_shape=tuple(data_shape), num_classes=num_classes, text_time=model_cfg.text_time,
                     **model_dims(model_cfg))
    except ValueError as e:
        raise ConfigError(f"model: {e}") from None


_BUILDERS = {"sit": build_sit, "mmdit": build_mmdit}  # the lead's backbone registry replaces this


def build_model(model_cfg, data_shape: tuple[int, ...], num_classes: int):
    """data_shape = what the generator learns: (C, H, W) images/latents, (C, T, H, W) video, (C, L) audio."""
    return _BUILDERS[getattr(model_cfg, "backbone", "sit")](model_cfg, tuple(data_shape), num_classes)


def check_condition(model, condition: str) -> None:
    """A dataset's condition kind ("class" labels or "text" token ids) must be one the backbone takes."""
    if condition == "text" and not getattr(model, "accepts_text", False):
        raise ConfigError("model.backbone: text conditions need model.backbone=mmdit (and an MMDiT-* preset)")
