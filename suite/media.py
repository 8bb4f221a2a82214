"""Samples people can look at and listen to: PNG grids (images), animated GIF grids (video),
WAV files plus a spectrogram PNG (audio). Pillow and the standard library only.

The kind of data is read from its layout (as suite.models.modality does): one example of shape
(C, L) is audio, (C, H, W) an image, (C, T, H, W) a video. Every tensor here is in [-1, 1].
"""
from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np
import torch

KINDS = {2: "audio", 3: "image", 4: "video"}  # rank of one example → kind
EXTENSIONS = {".png": "image/png", ".gif": "image/gif", ".wav": "audio/wav"}
GAP_SECONDS = 0.15  # silence between clips in a WAV of several samples


def media_kind(example_shape) -> str:
    """(C, L) → audio, (C, H, W) → image, (C, T, H, W) → video."""
    kind = KINDS.get(len(tuple(example_shape)))
    if kind is None:
        from suite.errors import SuiteError

        raise SuiteError(f"no media kind for examples of shape {tuple(example_shape)}")
    return kind


# ----------------------------------------------------------------------------- video
def _to_uint8_rgb(x: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) in [-1, 1], C ∈ {1, 3} → (..., H, W, 3) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    return x.movedim(-3, -1).cpu().numpy()


def tile_frames(clips: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """(B, C, T, H, W) → (T, rows·(H+pad)+pad, cols·(W+pad)+pad, 3) uint8: one grid per frame."""
    b, _, t, h, w = clips.shape
    cols = nrow or max(1, int(math.ceil(math.sqrt(b))))
    rows = int(math.ceil(b / cols))
    frames = _to_uint8_rgb(clips.permute(0, 2, 1, 3, 4))  # (B, T, H, W, 3)
    grid = np.full((t, rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, y0 : y0 + h, x0 : x0 + w] = frames[i]
    return grid


def gif_bytes(clips: torch.Tensor, fps: float = 8.0, nrow: int | None = None, scale: int = 4) -> bytes:
    """Animated, looping GIF of a grid of clips (B, C, T, H, W); `scale`× nearest upsampling so
    16×16 clips are visible."""
    from PIL import Image

    grid = tile_frames(clips, nrow)  # (T, GH, GW, 3)
    if scale > 1:
        grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    frames = [Image.fromarray(f) for f in grid]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=int(round(1000 / fps)), loop=0)
    return buf.getvalue()


# ----------------------------------------------------------------------------- audio
def wav_bytes(waves: torch.Tensor, sample_rate: int, gap_seconds: float = GAP_SECONDS) -> bytes:
    """(B, 1, L) or (1, L) in [-1, 1] → one mono 16-bit PCM WAV, clips separated by silence."""
    w = waves.detach().float().reshape(-1, waves.shape[-1]).clamp(-1, 1).cpu().numpy()  # (B, L)
    gap = np.zeros(int(gap_seconds * sample_rate), dtype=np.float32)
    parts = [p for x in w for p in (x, gap)][:-1] if w.shape[0] > 1 else [w[0]]
    pcm = (np.concatenate(parts) * 32767).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(pcm.tobytes())
    return buf.getvalue()


def read_wav(path_or_bytes) -> tuple[np.ndarray, int]:
    """(samples in [-1, 1] float32, sample rate) of a mono 16-bit WAV."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with wave.open(src, "rb") as f:
        rate, data = f.getframerate(), f.readframes(f.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767, rate


def log_spectrogram(waves: torch.Tensor, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """(B, 1, L) → (B, n_fft/2 + 1, frames) log-magnitude STFT (Hann window), in dB-like units."""
    x = waves.float().reshape(-1, waves.shape[-1])  # (B, L)
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, device=x.device), return_complex=True).abs()
    return torch.log10(spec.square() + 1e-8) * 10  # (B, F, T')


def spectrogram_png(waves: torch.Tensor, nrow: int | None = None, scale: int = 1) -> bytes:
    """PNG of a grid of log spectrograms (low frequencies at the bottom), magma colours."""
    from matplotlib import colormaps
    from PIL import Image

    s = log_spectrogram(waves).flip(1)  # (B, F, T'), row 0 = highest frequency
    s = ((s.clamp(min=-80.0) + 80.0) / 80.0).clamp(0, 1)  # 80 dB range → [0, 1]
    grid = tile_frames((s[:, None, None] * 2 - 1), nrow)[0][..., 0]  # (GH, GW) uint8, white padding
    rgb = (colormaps["magma"](grid / 255.0)[..., :3] * 255).astype(np.uint8)
    img = Image.fromarray(rgb)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- any kind
def png_grid_bytes(images: torch.Tensor, nrow: int | None = None) -> bytes:
    """(B, C, H, W) in [-1, 1] → PNG grid."""
    from PIL import Image

    grid = tile_frames(images[:, :, None], nrow)[0]  # (GH, GW, 3)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return buf.getvalue()


def save_samples(samples: torch.Tensor, out_dir, stem: str, rate: float | None = None, nrow: int | None = None) -> list[Path]:
    """Write a batch (B, ...) as what a person would open: `<stem>.png` (images), `<stem>.gif`
    (video, `rate` frames per second), `<stem>.wav` + `<stem>.spectrogram.png` (audio, `rate`
    samples per second). Returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = media_kind(samples.shape[1:])
    if kind == "image":
        files = {f"{stem}.png": png_grid_bytes(samples, nrow)}
    elif kind == "video":
        files = {f"{stem}.gif": gif_bytes(samples, rate or 8.0, nrow)}
    else:
        files = {f"{stem}.wav": wav_bytes(samples, int(rate or 8000)), f"{stem}.spectrogram.png": spectrogram_png(samples, nrow)}
    paths = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths.append(out / name)
    return paths


def write_each(samples: torch.Tensor, labels: torch.Tensor, out_dir, data_cfg, tags: list[str] | None = None) -> list[Path]:
    """`suite sample` for video/audio: `<i>_<tag>.gif|.wav` per sample (tag: `class<y>`, or the
    caller's, e.g. `caption<k>`) plus `grid.*` of the first 64."""
    from suite.data import clip_rate

    rate = clip_rate(data_cfg)
    tags = tags or [f"class{int(y)}" for y in labels]
    paths = []
    for i, (x, tag) in enumerate(zip(samples, tags)):
        paths += [p for p in save_samples(x[None], out_dir, f"{i:06d}_{tag}", rate) if not p.name.endswith(".spectrogram.png")]
    return paths + save_samples(samples[:64], out_dir, "grid", rate, nrow=8)


def show_dataset(dataset, out_dir, stem: str, n: int = 64) -> list[Path]:
    """`suite data show` for video/audio: the first n clips as `out_dir/<stem>.gif` or `<stem>.wav` +
    `<stem>.spectrogram.png`, captions beside in `<stem>.captions.txt`."""
    out_dir = Path(out_dir)
    clips = torch.stack([dataset[i]["pixels"] for i in range(min(n, len(dataset)))])
    paths = save_samples(clips, out_dir, stem, getattr(dataset, "rate", None), nrow=8)  # a built dataset knows its rate
    scheme = getattr(dataset, "scheme", None)  # captioned built-ins: captions are token ids over its vocabulary
    if scheme is not None or getattr(dataset, "captions", None) is not None:
        text = (lambda i: scheme.detokenize(dataset[i]["y"])) if scheme is not None else (lambda i: dataset[i]["caption"])
        cap = out_dir / f"{stem}.captions.txt"
        cap.write_text("".join(f"{text(i)}\n" for i in range(clips.shape[0])))
        paths.append(cap)
    return paths
