"""Name → loader table for the encoders REPA can align to.

A loader is `fn(path: str | None, cache_dir: str | None, **options) -> Encoder`. Loaders never
download: they read an explicit weights path or a pre-filled cache and otherwise raise one
`MissingFileError` line naming what they need and where it is normally obtained.
"""
from __future__ import annotations

from typing import Callable

from suite.errors import ConfigError

from baselines.encoders.base import Encoder

_LOADERS: dict[str, Callable[..., Encoder]] = {}


def register_encoder(name: str):
    """Decorator: `@register_encoder("dinov2-vitb14") def load(path, cache_dir, **options): ...`."""

    def wrap(fn):
        if name in _LOADERS and _LOADERS[name] is not fn:
            raise ValueError(f"encoder '{name}' registered twice")
        _LOADERS[name] = fn
        return fn

    return wrap


def available_encoders() -> list[str]:
    return sorted(_LOADERS)


def load_encoder(name: str, path: str | None = None, cache_dir: str | None = None,
                 input_size: int | None = None, **options) -> Encoder:
    """Build encoder `name` from local weights, frozen and in eval mode.

    `input_size` overrides the resolution `preprocess` resizes to (and so the token grid).
    """
    if name not in _LOADERS:
        raise ConfigError(f"unknown encoder '{name}'; available: {', '.join(available_encoders())}")
    enc = _LOADERS[name](path=path, cache_dir=cache_dir, **options)
    if input_size is not None:
        if input_size % enc.patch_size:
            raise ConfigError(f"encoder {name}: input_size {input_size} is not a multiple of its patch size {enc.patch_size}")
        enc.input_size = int(input_size)
    return enc.freeze()
