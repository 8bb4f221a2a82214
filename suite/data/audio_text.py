"""`tones-text`: the built-in tones with compositional captions (no download).

A clip's caption names what its generator varies that can be heard: timbre, pitch pattern (the
second note a fifth above or below the first) and base pitch as a word — "a very low plucked tone
rising" (base pitches 220 / 262 / 330 / 392 Hz, each detuned by up to 1 %; loudness varies too and
is not captioned). Captions, vocabulary and the null token follow suite/data/vocabulary.py. Held
out: one base pitch per timbre (`UNSEEN_PAIRS`), so every timbre and every pitch is seen in training.
"""
from __future__ import annotations

import numpy as np

from suite.data.audio import BASE_PITCHES, PATTERNS, TIMBRES, render_tone
from suite.data.vocabulary import CaptionScheme, draw_captioned

PITCHES = ("very low", "low", "high", "very high")  # BASE_PITCHES in order
ATTRIBUTES = {"timbre": TIMBRES, "pattern": PATTERNS, "pitch": PITCHES}
UNSEEN_PAIRS = (("sine", "high"), ("square", "very high"), ("sawtooth", "very low"), ("plucked", "low"), ("tremolo", "high"))
TONES_TEXT = CaptionScheme(ATTRIBUTES, "a {pitch} {timbre} tone {pattern}",
                           ("a", "tone", "very", "low", "high", *TIMBRES, *PATTERNS), ("timbre", "pitch"), UNSEEN_PAIRS, 6)


def make_captioned_tones(n: int, length: int, sample_rate: int, seed: int, unseen: bool | None = False):
    """waveforms (n, 1, L) in [-1, 1], captions (n, 6) long, attributes (n, 3) long (timbre, pattern, pitch).

    unseen: False the seen combinations, True the held-out ones, None all (the attribute judge)."""
    if length < 64 or sample_rate < 2000:
        from suite.errors import ConfigError

        raise ConfigError(f"data.audio_length/sample_rate: tones-text needs ≥ 64 samples at ≥ 2 kHz, got {length} at {sample_rate} Hz")

    def render(a: dict[str, str], rng: np.random.Generator) -> np.ndarray:
        f0 = BASE_PITCHES[PITCHES.index(a["pitch"])] * rng.uniform(0.99, 1.01)  # slightly detuned
        return render_tone(a["timbre"], a["pattern"], f0, length, sample_rate, rng)[None].astype(np.float32)  # (1, L)

    waves, captions, attributes = draw_captioned(TONES_TEXT, n, seed, unseen, render)
    return waves.clamp(-1, 1), captions, attributes
