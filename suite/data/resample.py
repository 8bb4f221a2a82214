"""Resampling clips in time: audio to another sample rate, video to another number of frames.

One place for both, shared by data encoding (a WAV at 48 kHz → the VAE's 44.1 kHz) and by audio /
video encoders (the data's 8 kHz tones → an SSL encoder's 16 kHz). Pure torch, on any device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resample_audio(x: torch.Tensor, src_rate: float, dst_rate: float) -> torch.Tensor:
    """(..., L) at `src_rate` → (..., round(L·dst/src)) at `dst_rate`, band-limited (FFT:
    frequencies above the lower Nyquist are dropped; the clip is treated as one period)."""
    if float(src_rate) == float(dst_rate):
        return x
    n = x.shape[-1]
    m = max(1, int(round(n * float(dst_rate) / float(src_rate))))
    spec = torch.fft.rfft(x.float(), dim=-1)  # (..., n//2 + 1)
    keep = min(spec.shape[-1], m // 2 + 1)
    out = torch.zeros(*spec.shape[:-1], m // 2 + 1, dtype=spec.dtype, device=spec.device)
    out[..., :keep] = spec[..., :keep]
    if m % 2 == 0 and keep == m // 2 + 1 and m < n:  # the new Nyquist bin of a real signal is real
        out[..., -1] = out[..., -1].real.clone()
    return (torch.fft.irfft(out, n=m, dim=-1) * (m / n)).to(x.dtype)  # (..., m)


def resample_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, C, T, H, W) → (B, C, frames, H, W): nearest frame in time (frames are repeated or
    dropped, never blended)."""
    t = x.shape[2]
    if t == frames:
        return x
    idx = torch.clamp(((torch.arange(frames, device=x.device) + 0.5) * t / frames).long(), max=t - 1)
    return x.index_select(2, idx)


def resize_frames(x: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """(B, C, T, H, W) → (B, C, T, size, size), each frame resized (antialiased when shrinking)."""
    b, c, t, h, w = x.shape
    if (h, w) == (size, size):
        return x
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B·T, C, H, W)
    frames = F.interpolate(frames.float(), size=(size, size), mode=mode, align_corners=False,
                           antialias=size < min(h, w) and mode in ("bilinear", "bicubic"))
    return frames.reshape(b, t, c, size, size).transpose(1, 2).to(x.dtype)  # (B, C, T, size, size)
