"""The attribute judge's feature extractors, one per kind of media (suite/evaluation/caption_consistency.py).

Each maps a batch of media in [-1, 1] to flat features (B, dim) with a small conv stack whose final
pooling keeps a coarse layout (where a shape is; which note comes first, and its frequency band).
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _conv_stack(in_channels: int, width: int, pool: tuple[int, int]) -> nn.Sequential:
    """(B, C, H, W) → (B, 2·width·pool_h·pool_w)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.SiLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
    )


class FrameStack(nn.Module):
    """(B, C, T, H, W) → (B, C·T, H, W): the frames side by side on channels, so the first conv sees motion."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        return x.reshape(b, c * t, h, w)


class LogSpectrogram(nn.Module):
    """(B, 1, L) waveforms → (B, 1, bins, frames) log-magnitude STFT, roughly in [-1, 1].

    n_fft 256 (31 Hz bins at 8 kHz: the base pitches fall 1.3–2 bins apart), hop 128; only the
    lowest `bins` bins are kept (3 kHz at 8 kHz: the notes and their first harmonics)."""

    def __init__(self, n_fft: int = 256, hop: int = 128, bins: int = 96):
        super().__init__()
        self.n_fft, self.hop, self.bins = n_fft, hop, bins
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x.float().mean(1), self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        mag = spec.abs()[:, :self.bins]  # (B, bins, frames)
        return (torch.log(mag + 1e-2) / 4.6).unsqueeze(1)  # log(1e-2) ≈ -4.6: silence at about -1


def judge_frontend(example_shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    """The frontend for examples of this shape — (C, H, W) image, (C, T, H, W) video, (1, L) audio
    waveform — and its feature width."""
    if len(example_shape) == 3:
        return _conv_stack(example_shape[0], width, (4, 4)), 2 * width * 16
    if len(example_shape) == 4:
        c, t = example_shape[:2]
        return nn.Sequential(FrameStack(), _conv_stack(c * t, width, (4, 4))), 2 * width * 16
    if len(example_shape) == 2 and example_shape[0] == 1:
        return nn.Sequential(LogSpectrogram(), _conv_stack(1, width, (12, 4))), 2 * width * 48
    raise ValueError(f"no attribute judge for examples of shape {example_shape} (images, video, or mono waveforms)")
