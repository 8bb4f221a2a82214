"""Encoders REPA can align to: a registry of frozen image, video and audio encoders emitting tokens.

Importing this package registers every family (each file is one family).
"""
from baselines.encoders.base import Encoder, resample_tokens
from baselines.encoders.registry import ENCODERS, available_encoders, load_encoder, register_encoder
from baselines.encoders import audio, dinov2, dinov3, local, siglip2, vjepa2  # noqa: F401  (registration)

__all__ = ["Encoder", "resample_tokens", "available_encoders", "load_encoder", "register_encoder"]
