"""`moving-shapes-text`: the built-in moving shapes with compositional captions (no download).

A clip's caption names what its generator varies that can be read off the frames: colour, shape
kind and direction of motion — "a red disk moving left" (the shade, size, speed, height and
background vary too, continuously, and are not captioned). Captions, vocabulary and the null
token follow suite/data/vocabulary.py. Held out: one shape per colour (`UNSEEN_PAIRS`, a diagonal
of the colour × shape table), so every colour and every shape is seen in training.
"""
from __future__ import annotations

import numpy as np

from suite.data.builtin import SHAPE_KINDS
from suite.data.video import COLOURS, DIRECTIONS, render_moving_shape
from suite.data.vocabulary import CaptionScheme, draw_captioned

ATTRIBUTES = {"colour": tuple(COLOURS), "shape": SHAPE_KINDS, "direction": DIRECTIONS}
UNSEEN_PAIRS = (("red", "ring"), ("blue", "disk"), ("green", "square"), ("yellow", "triangle"), ("white", "cross"))
MOVING_SHAPES_TEXT = CaptionScheme(ATTRIBUTES, "a {colour} {shape} moving {direction}",
                                   ("a", "moving", *DIRECTIONS, *COLOURS, *SHAPE_KINDS), ("colour", "shape"), UNSEEN_PAIRS, 5)


def make_captioned_moving_shapes(n: int, frames: int, size: int, seed: int, unseen: bool | None = False):
    """clips (n, 3, T, S, S) in [-1, 1], captions (n, 5) long, attributes (n, 3) long (colour, shape, direction).

    unseen: False the seen combinations, True the held-out ones, None all (the attribute judge)."""
    if frames < 2:
        from suite.errors import ConfigError

        raise ConfigError(f"data.frames: moving-shapes-text needs at least 2 frames, got {frames}")

    def render(a: dict[str, str], rng: np.random.Generator) -> np.ndarray:
        return render_moving_shape(a["shape"], a["direction"], a["colour"], frames, size, rng)

    clips, captions, attributes = draw_captioned(MOVING_SHAPES_TEXT, n, seed, unseen, render)
    return clips.clamp(0, 1) * 2 - 1, captions, attributes
