"""Folders of real video and audio files, one sub-folder per class (root/<class>/<file>; listing:
suite.data.folders), read
with the suite's dependencies: Pillow for GIF / animated WebP / APNG, the standard library's
`wave` for PCM WAV, PyAV for MP4 / WebM / MOV / MKV / AVI and soundfile for FLAC / OGG / AIFF
(both bundle their native libraries; an install without them gets one line naming the package).

Items are what `suite data encode` turns into latents: `pixels` video (3, T, S, S) / audio (C, L)
in [-1, 1], `y` the class index.
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from suite.data.folders import class_files
from suite.errors import SuiteError

PIL_VIDEO_EXTS = (".gif", ".webp", ".png", ".apng")
AV_VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".avi")
WAV_EXTS = (".wav",)
SOUNDFILE_EXTS = (".flac", ".ogg", ".aiff", ".aif")


# ----------------------------------------------------------------------------- video
def read_video(path: Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """(frames (T, H, W, 3) uint8, frames per second) of a video file; with `max_frames`, decoding
    stops after that many frames (a long MP4 is not decoded whole to take its first clip)."""
    ext = path.suffix.lower()
    if ext in PIL_VIDEO_EXTS:
        from PIL import Image, ImageSequence

        with Image.open(path) as im:
            frames = [np.asarray(f.convert("RGB")) for _, f in zip(range(max_frames or 1 << 62), ImageSequence.Iterator(im))]
            ms = im.info.get("duration") or 125
        return np.stack(frames), 1000.0 / float(ms)
    try:
        import av
    except ImportError:
        raise SuiteError(f"{path}: reading {ext} video needs PyAV (`pip install av`); or convert the clips to GIF") from None
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(max_frames or 1 << 62), c.decode(stream))]
        fps = float(stream.average_rate or 8)
    return np.stack(frames), fps


def clip_tensor(frames: np.ndarray, num_frames: int, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 → (3, num_frames, size, size) in [-1, 1]: the first `num_frames` frames
    (the last one repeated when the clip is shorter), centre-cropped square, resized (bicubic)."""
    from suite.data.resample import resize_frames

    idx = np.minimum(np.arange(num_frames), frames.shape[0] - 1)
    x = torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(3, 0, 1, 2).float()  # (3, T, H, W)
    h, w = x.shape[-2:]
    side = min(h, w)
    x = x[..., (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    x = resize_frames(x[None] / 127.5 - 1.0, size)[0]  # (3, T, size, size)
    return x.clamp(-1, 1)


class VideoFolderDataset(Dataset):
    """root/<class>/<clip> (or, `flat`, root/<clip>: one class): `frames` frames of `size`² RGB in [-1, 1],
    rate = the first clip's fps."""

    kind = "video"

    def __init__(self, root: str, frames: int, size: int, flat: bool = False, key: str | None = None):
        self.classes, self.files = class_files(root, PIL_VIDEO_EXTS + AV_VIDEO_EXTS, "video", flat, key)
        self.num_classes, self.frames, self.size = len(self.classes), frames, size
        self.rate = read_video(self.files[0][0], max_frames=1)[1]
        self.name = f"video-folder:{Path(root).name}"
        self.pixel_shape = (3, frames, size, size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        path, label = self.files[i]
        return {"pixels": clip_tensor(read_video(path, self.frames)[0], self.frames, self.size), "y": label, "index": i}


# ----------------------------------------------------------------------------- audio
def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples (C, L) float32 in [-1, 1], sample rate) of an audio file."""
    ext = path.suffix.lower()
    if ext in WAV_EXTS:
        with wave.open(str(path), "rb") as f:
            ch, width, rate, raw = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.readframes(f.getnframes())
        if width == 1:
            x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        elif width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
        else:
            x = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
        return x.reshape(-1, ch).T.copy(), rate
    try:
        import soundfile
    except ImportError:
        raise SuiteError(f"{path}: reading {ext} audio needs soundfile (`pip install soundfile`); or convert the clips to PCM WAV") from None
    x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return x.T.copy(), int(rate)


def audio_tensor(x: np.ndarray, src_rate: float, rate: float, length: int) -> torch.Tensor:
    """(C, L) → (C, length) at `rate` in [-1, 1]: resampled (band-limited), the first `length`
    samples, zero-padded when shorter."""
    from suite.data.resample import resample_audio

    y = resample_audio(torch.from_numpy(x), src_rate, rate)[:, :length]  # (C, ≤ length)
    if y.shape[1] < length:
        y = torch.nn.functional.pad(y, (0, length - y.shape[1]))
    return y.clamp(-1, 1)


class AudioFolderDataset(Dataset):
    """root/<class>/<clip> (or, `flat`, root/<clip>: one class): `length` samples at `rate` (the VAE's),
    `channels` channels (mono is repeated, more channels than wanted are averaged), in [-1, 1]."""

    kind = "audio"

    def __init__(self, root: str, length: int, rate: float, channels: int = 1, flat: bool = False, key: str | None = None):
        self.classes, self.files = class_files(root, WAV_EXTS + SOUNDFILE_EXTS, "audio", flat, key)
        self.num_classes, self.length, self.rate, self.channels = len(self.classes), length, float(rate), channels
        self.name = f"audio-folder:{Path(root).name}"
        self.pixel_shape = (channels, length)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        path, label = self.files[i]
        x, src = read_audio(path)
        y = audio_tensor(x, src, self.rate, self.length)  # (C_file, L)
        if y.shape[0] != self.channels:
            y = y.mean(0, keepdim=True).expand(self.channels, -1).contiguous()
        return {"pixels": y, "y": label, "index": i}
