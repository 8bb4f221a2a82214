"""Which captioned built-in has which caption scheme (suite/data/vocabulary.py): the one lookup."""
from __future__ import annotations

from suite.data.vocabulary import CaptionScheme

CAPTIONED_BUILTINS = ("shapes-text", "moving-shapes-text", "tones-text")  # built-in datasets with a scheme and an `unseen` split


def caption_scheme(name: str) -> CaptionScheme:
    """The scheme of a captioned built-in dataset; a one-line error for any other name."""
    if name == "shapes-text":
        from suite.data.captions import SHAPES_TEXT

        return SHAPES_TEXT
    if name == "moving-shapes-text":
        from suite.data.video_text import MOVING_SHAPES_TEXT

        return MOVING_SHAPES_TEXT
    if name == "tones-text":
        from suite.data.audio_text import TONES_TEXT

        return TONES_TEXT
    from suite.errors import ConfigError

    raise ConfigError(f"data.name: {name!r} has no built-in caption vocabulary; captioned built-ins: {', '.join(CAPTIONED_BUILTINS)}")
