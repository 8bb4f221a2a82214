"""Text: pretrained text encoders (T5, CLIP, Qwen3) that turn captions into the per-token
embeddings an MM-DiT is conditioned on (`model.text_dim`), read offline from local directories.
`load_text_encoder(name, weights)` is the one way to get one (`load_recorded_text_encoder(record)`: the one a
run's shards were embedded with, for sampling new captions); `TEXT_ENCODERS` the registry.
"""
from suite.text.encoders import TEXT_ENCODERS, TextEncoder, TextEncoderKind, load_recorded_text_encoder, load_text_encoder, \
    register_text_encoder

__all__ = ["TEXT_ENCODERS", "TextEncoder", "TextEncoderKind", "load_recorded_text_encoder", "load_text_encoder",
           "register_text_encoder"]
