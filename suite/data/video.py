"""Built-in video data: `moving-shapes`, procedural clips, deterministic by seed, no download.

A class is (shape kind, direction of motion): a model has to get the appearance *and* the motion
right, since the same shape moving the other way is another class. Colour, size, speed, start
position and background vary within a class. Clips are (3, T, H, W) in [-1, 1]; every clip has
a caption ("a red disk moving left"), for text-to-video work.
"""
from __future__ import annotations

import numpy as np
import torch

from suite.data.builtin import SHAPE_KINDS, _shape_mask

DIRECTIONS = ("left", "right")  # horizontal motion: the direction a shape travels
MOVING_SHAPE_CLASS_NAMES = [f"{k}-{d}" for k in SHAPE_KINDS for d in DIRECTIONS]  # 10 classes
MOVING_SHAPE_CLASS_CAPTIONS = [f"a {k} moving {d}" for k in SHAPE_KINDS for d in DIRECTIONS]  # captions add the colour
COLOURS = {  # name → RGB in [0, 1]; not part of the class
    "red": (0.95, 0.25, 0.2), "blue": (0.2, 0.5, 0.95), "green": (0.25, 0.85, 0.3),
    "yellow": (0.95, 0.85, 0.2), "white": (0.95, 0.95, 0.95),
}
FPS = 8  # how the clips are meant to be played (GIF/MP4 writers)


def moving_shape_class(kind: str, direction: str) -> int:
    return SHAPE_KINDS.index(kind) * len(DIRECTIONS) + DIRECTIONS.index(direction)


def make_moving_shapes(n: int, frames: int, size: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(n, 3, T, S, S) clips in [-1, 1], labels (n,), captions (n strings)."""
    if not 1 <= num_classes <= len(MOVING_SHAPE_CLASS_NAMES):
        from suite.errors import ConfigError

        raise ConfigError(f"data.num_classes: moving-shapes has 1..{len(MOVING_SHAPE_CLASS_NAMES)} classes, got {num_classes}")
    if frames < 2:
        from suite.errors import ConfigError

        raise ConfigError(f"data.frames: moving-shapes needs at least 2 frames, got {frames}")
    rng = np.random.default_rng(seed)
    clips = np.empty((n, 3, frames, size, size), dtype=np.float32)
    labels = rng.integers(0, num_classes, size=n)
    names = list(COLOURS)
    captions = []
    for i, lab in enumerate(labels):
        kind, direction = SHAPE_KINDS[lab // len(DIRECTIONS)], DIRECTIONS[lab % len(DIRECTIONS)]
        colour_name = names[rng.integers(len(names))]
        clips[i] = render_moving_shape(kind, direction, colour_name, frames, size, rng)
        captions.append(f"a {colour_name} {kind} moving {direction}")
    return torch.from_numpy(clips).clamp(0, 1) * 2 - 1, torch.from_numpy(labels).long(), captions


def render_moving_shape(kind: str, direction: str, colour_name: str, frames: int, size: int,
                        rng: np.random.Generator) -> np.ndarray:
    """One clip (3, T, S, S) in [0, 1] (noise may overshoot; callers clamp): the shape travels
    horizontally; its shade, size, speed, start position, height and the background drawn from rng."""
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    clip = np.empty((3, frames, s, s), dtype=np.float32)
    colour = np.array(COLOURS[colour_name], dtype=np.float32) * rng.uniform(0.85, 1.0)
    r = rng.uniform(0.24, 0.3) * s
    travel = rng.uniform(0.3, 0.45) * s  # pixels over the whole clip
    sign = -1.0 if direction == "left" else 1.0
    lo, hi = r, s - r - travel  # the start x keeps the whole path inside the frame
    cx0 = rng.uniform(lo, max(lo, hi))
    if sign < 0:
        cx0 = s - cx0  # mirror: start on the right, travel left
    cy = rng.uniform(r, s - r)
    bg = rng.uniform(0.0, 0.3, size=3).astype(np.float32)
    for f in range(frames):
        cx = cx0 + sign * travel * f / (frames - 1)
        img = np.broadcast_to(bg[:, None, None], (3, s, s)).copy()
        m = _shape_mask(kind, yy, xx, cy, cx, r)
        img[:, m] = colour[:, None]
        clip[:, f] = img
    clip += rng.normal(0, 0.02, size=clip.shape).astype(np.float32)
    return clip
