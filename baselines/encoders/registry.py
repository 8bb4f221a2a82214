"""Name → loader table for the encoders REPA can align to (a core `Registry`; other plugins may
register more encoders here).

A loader is `fn(path: str | None, cache_dir: str | None, **options) -> Encoder`. Loaders never
download: they read an explicit weights path or a pre-filled cache and otherwise raise one
`MissingFileError` line naming what they need and where it is normally obtained.
"""
from __future__ import annotations

from suite.errors import ConfigError
from suite.registry import Registry

from baselines.encoders.base import Encoder

ENCODERS = Registry("encoder", "method.encoders[].name")


def register_encoder(name: str):
    """Decorator: `@register_encoder("dinov2-vitb14") def load(path, cache_dir, **options): ...`."""
    return ENCODERS.register(name)


def available_encoders() -> list[str]:
    return ENCODERS.names()


def load_encoder(name: str, path: str | None = None, cache_dir: str | None = None,
                 input_size: int | None = None, **options) -> Encoder:
    """Build encoder `name` from local weights, frozen and in eval mode.

    `input_size` overrides the resolution `preprocess` resizes to (and so the token grid).
    """
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder '{name}'; available: {', '.join(available_encoders())}")
    enc = ENCODERS.get(name)(path=path, cache_dir=cache_dir, **options)
    if input_size is not None:
        if input_size % enc.patch_size:
            raise ConfigError(f"encoder {name}: input_size {input_size} is not a multiple of its patch size {enc.patch_size}")
        enc.input_size = int(input_size)
    return enc.freeze()
