"""Built-in audio data: `tones`, synthetic two-note clips, deterministic by seed, no download.

A class is (timbre, pitch pattern): five timbres (waveform, harmonics and envelope) × two
patterns (the second note a fifth above or below the first). A model has to get the sound *and*
the melody right. Base pitch (one of four, slightly detuned) and loudness vary within a class;
notes start in phase, so a small generator can learn the set on a CPU in minutes. Clips are mono waveforms
(1, L) in [-1, 1] at `sample_rate`; every clip has a caption ("a plucked tone falling from 310 Hz").
"""
from __future__ import annotations

import numpy as np
import torch

TIMBRES = ("sine", "square", "sawtooth", "plucked", "tremolo")
PATTERNS = ("rising", "falling")
TONE_CLASS_NAMES = [f"{t}-{p}" for t in TIMBRES for p in PATTERNS]  # 10 classes
TONE_CLASS_CAPTIONS = [f"a {t} tone {p}" for t in TIMBRES for p in PATTERNS]  # what a class says (captions add the pitch)
FIFTH = 1.5  # frequency ratio between the two notes
BASE_PITCHES = (220.0, 262.0, 330.0, 392.0)  # A3, C4, E4, G4: the first note's pitch


def tone_class(timbre: str, pattern: str) -> int:
    return TIMBRES.index(timbre) * len(PATTERNS) + PATTERNS.index(pattern)


def _note(timbre: str, f0: float, n: int, sample_rate: int, phase: float) -> np.ndarray:
    """One band-limited note of n samples, peak about 1."""
    t = np.arange(n, dtype=np.float64) / sample_rate
    nyquist = 0.45 * sample_rate
    if timbre in ("sine", "tremolo"):
        harmonics = [(1, 1.0)]
    elif timbre == "square":  # odd harmonics, 1/k
        harmonics = [(k, 1.0 / k) for k in range(1, 64, 2) if k * f0 < nyquist]
    else:  # sawtooth, plucked: every harmonic, 1/k
        harmonics = [(k, 1.0 / k) for k in range(1, 64) if k * f0 < nyquist]
    wave = sum(a * np.sin(2 * np.pi * k * f0 * t + k * phase) for k, a in harmonics)
    wave = wave / np.abs(wave).max()
    if timbre == "plucked":
        wave = wave * np.exp(-t / 0.04)  # fast exponential decay per note
    elif timbre == "tremolo":
        wave = wave * (0.55 + 0.45 * np.cos(2 * np.pi * 16.0 * t))  # 16 Hz amplitude modulation
    fade = min(n // 8, int(0.005 * sample_rate))  # 5 ms ramps: no clicks at note boundaries
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return wave


def make_tones(n: int, length: int, sample_rate: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(n, 1, L) waveforms in [-1, 1], labels (n,), captions (n strings)."""
    from suite.errors import ConfigError

    if not 1 <= num_classes <= len(TONE_CLASS_NAMES):
        raise ConfigError(f"data.num_classes: tones has 1..{len(TONE_CLASS_NAMES)} classes, got {num_classes}")
    if length < 64 or sample_rate < 2000:
        raise ConfigError(f"data.audio_length/sample_rate: tones needs ≥ 64 samples at ≥ 2 kHz, got {length} at {sample_rate} Hz")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n)
    clips = np.empty((n, 1, length), dtype=np.float32)
    captions = []
    for i, lab in enumerate(labels):
        timbre, pattern = TIMBRES[lab // len(PATTERNS)], PATTERNS[lab % len(PATTERNS)]
        f0 = BASE_PITCHES[rng.integers(len(BASE_PITCHES))] * rng.uniform(0.99, 1.01)  # slightly detuned
        clips[i, 0] = render_tone(timbre, pattern, f0, length, sample_rate, rng)
        captions.append(f"a {timbre} tone {pattern} from {f0:.0f} Hz")
    return torch.from_numpy(clips).clamp(-1, 1), torch.from_numpy(labels).long(), captions


def render_tone(timbre: str, pattern: str, f0: float, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip (L,) (callers clamp to [-1, 1]): a note at f0, then one a fifth above (rising) or
    below (falling), notes starting in phase (a CPU-learnable set); loudness and noise drawn from rng."""
    half = length // 2
    f1 = f0 * FIFTH if pattern == "rising" else f0 / FIFTH
    first = _note(timbre, f0, half, sample_rate, 0.0)
    second = _note(timbre, f1, length - half, sample_rate, 0.0)
    wave = np.concatenate([first, second]) * rng.uniform(0.5, 0.8)
    return wave + rng.normal(0, 0.003, size=length)
