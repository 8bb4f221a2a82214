"""`shapes-text`: built-in captioned shapes with compositional captions (no download).

Each image holds one shape with four attributes, and its caption names all four:
"a large red ring in the top left". Captions travel as token ids over a fixed word vocabulary
(`VOCAB`), padded to `CAPTION_LEN` with the null token `len(VOCAB)` — the same id the model uses
for a dropped condition (docs/ARCHITECTURE.md, "Conditions"); the convention is every captioned
built-in's (`SHAPES_TEXT`, a `CaptionScheme` of suite/data/vocabulary.py). `CaptionedDataset`
holds any captioned built-in in memory (moving-shapes-text and tones-text too).

Held-out combinations: the (colour, shape) pairs in `UNSEEN_PAIRS` never appear in the train or
test splits; the `unseen` split holds only them (every colour and every shape is still seen in
training, just never together), so caption consistency on `unseen` measures composition.
"""
from __future__ import annotations

import numpy as np
import torch

from suite.data.builtin import _shape_mask
from suite.data.vocabulary import CaptionScheme, draw_captioned

COLOURS = {"red": (0.95, 0.2, 0.15), "green": (0.15, 0.85, 0.25), "blue": (0.2, 0.4, 0.95), "yellow": (0.95, 0.85, 0.15)}
KINDS = ("disk", "square", "triangle", "cross", "ring")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
ATTRIBUTES = {"colour": tuple(COLOURS), "shape": KINDS, "size": SIZES, "position": POSITIONS}
UNSEEN_PAIRS = (("red", "ring"), ("green", "triangle"), ("blue", "cross"), ("yellow", "square"))

VOCAB = ("a", "in", "the", "top", "bottom", "left", "right", *SIZES, *COLOURS, *KINDS)
CAPTION_LEN = 8  # "a large red ring in the top left"
SHAPES_TEXT = CaptionScheme(ATTRIBUTES, "a {size} {colour} {shape} in the {position}", VOCAB, ("colour", "shape"),
                            UNSEEN_PAIRS, CAPTION_LEN)
# shapes-text's scheme under the names its callers have always used
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
NULL_TOKEN = SHAPES_TEXT.null_token  # padding and dropped captions
caption, detokenize = SHAPES_TEXT.caption, SHAPES_TEXT.detokenize
draw_attributes, attribute_indices = SHAPES_TEXT.draw_attributes, SHAPES_TEXT.attribute_indices


def tokenize(text: str) -> torch.Tensor:
    """Caption → (CAPTION_LEN,) long ids over shapes-text's vocabulary (CaptionScheme.tokenize)."""
    return SHAPES_TEXT.tokenize(text)


def is_unseen(colour: str, shape: str) -> bool:
    return (colour, shape) in UNSEEN_PAIRS


def render(attrs: dict[str, str], image_size: int, rng: np.random.Generator) -> np.ndarray:
    """(3, S, S) in [0, 1]: the shape in its quadrant, small r ≈ 0.13·S or large r ≈ 0.22·S."""
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    r = rng.uniform(0.13, 0.15) * s if attrs["size"] == "small" else rng.uniform(0.21, 0.24) * s
    vert, horiz = attrs["position"].split()
    cy = (0.27 if vert == "top" else 0.73) * s + rng.uniform(-0.03, 0.03) * s
    cx = (0.27 if horiz == "left" else 0.73) * s + rng.uniform(-0.03, 0.03) * s
    bg = rng.uniform(0.0, 0.2, size=3).astype(np.float32)
    img = np.broadcast_to(bg[:, None, None], (3, s, s)).copy()
    m = _shape_mask(attrs["shape"], yy, xx, cy, cx, r)
    img[:, m] = (np.array(COLOURS[attrs["colour"]], dtype=np.float32) * rng.uniform(0.85, 1.0))[:, None]
    img += rng.normal(0, 0.02, size=img.shape).astype(np.float32)
    return img.clip(0, 1)


def make_captioned_shapes(n: int, image_size: int, seed: int, unseen: bool | None = False):
    """images (n, 3, S, S) in [-1, 1], captions (n, CAPTION_LEN) long, attributes (n, 4) long.

    unseen: False the seen combinations (training data), True the held-out ones, None all of them
    (only for the attribute judge, which must not learn colour → shape shortcuts from the seen set).
    """
    images, captions, attributes = draw_captioned(SHAPES_TEXT, n, seed, unseen, lambda a, rng: render(a, image_size, rng))
    return images * 2 - 1, captions, attributes


class CaptionedDataset(torch.utils.data.Dataset):
    """A captioned built-in in memory. Items {"x0": the example (image (3, S, S), clip (3, T, S, S)
    or waveform (1, L)), "y": (L,) caption ids, "pixels": the example, "index"}; `attributes`
    (n, A) long for caption consistency. Video / audio also carry `kind` and `rate` (media writers)."""

    condition = "text"

    def __init__(self, images: torch.Tensor, captions: torch.Tensor, attributes: torch.Tensor, name: str,
                 scheme: CaptionScheme = SHAPES_TEXT, kind: str | None = None, rate: float | None = None):
        self.images, self.captions, self.attributes, self.name, self.scheme = images, captions, attributes, name, scheme
        self.num_classes = scheme.null_token  # vocabulary size; id num_classes is the null token (as a null class)
        self.image_shape = self.pixel_shape = tuple(images.shape[1:])
        if kind is not None:
            self.kind, self.rate = kind, rate  # "video" | "audio"; frames or samples per second

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"x0": self.images[i], "y": self.captions[i], "pixels": self.images[i], "index": i}

    def preview_conditions(self, n: int) -> torch.Tensor:
        """(n, L) captions for sample grids: the first n examples' captions."""
        return self.captions[torch.arange(n) % len(self)]


CaptionedImageDataset = CaptionedDataset  # shapes-text's name for it
