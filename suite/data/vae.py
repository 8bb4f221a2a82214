"""The VAEs that turn real data into latents, one table: diffusers `AutoencoderKL` (images),
`AutoencoderKLWan` (video: the WAN 2.1 / 2.2 VAE) and `AutoencoderOobleck` (audio: Stable Audio's VAE).

Everything about a VAE kind lives here: which class reads a directory (its config.json
`_class_name`, so the kind is detected, never guessed from names), what media it takes, the
latent normalisation the generator learns in — `z_norm = (z − shift) · scale`, per channel, read
from the VAE's config (KL: `shift_factor`, `scaling_factor`; WAN: `latents_mean`, 1 / `latents_std`;
Oobleck: none) and recorded in every shard — and how latents go back to media in [-1, 1].
Nothing is downloaded: the VAE path must exist.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from suite.errors import ConfigError, MissingFileError

# diffusers class → (modality, where one is normally obtained)
VAE_CLASSES = {
    "AutoencoderKL": ("image", "stabilityai/sd-vae-ft-ema"),
    "AutoencoderKLWan": ("video", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers (subfolder vae) or Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
    "AutoencoderOobleck": ("audio", "stabilityai/stable-audio-open-1.0 (subfolder vae)"),
}
MODALITY_CLASS = {m: c for c, (m, _) in VAE_CLASSES.items()}  # image | video | audio → class


def vae_class_name(path: str | None, kind: str = "auto") -> str:
    """The diffusers class of the VAE directory `path`: its config.json `_class_name`, or the
    class for `kind` (image | video | audio) when given. One-line error if the directory is not one."""
    if kind not in ("auto", *MODALITY_CLASS):
        raise ConfigError(f"vae kind: {kind!r} not allowed; allowed: auto, {', '.join(MODALITY_CLASS)}")
    cfg_file = Path(path).expanduser() / "config.json" if path else None
    if cfg_file is None or not cfg_file.is_file():
        want = "a diffusers " + ("/".join(VAE_CLASSES) if kind == "auto" else MODALITY_CLASS[kind])
        raise MissingFileError(f"VAE weights not found: {cfg_file or '<no path>/config.json'} ({want} directory, e.g. "
                               f"{VAE_CLASSES[MODALITY_CLASS.get(kind, 'AutoencoderKL')][1]}; download it once and pass its path)")
    if kind != "auto":
        return MODALITY_CLASS[kind]
    try:
        name = json.loads(cfg_file.read_text()).get("_class_name")
    except (ValueError, AttributeError):
        name = None
    if name not in VAE_CLASSES:
        raise ConfigError(f"VAE {cfg_file}: _class_name {name!r} is not one of {', '.join(VAE_CLASSES)} (or pass the kind explicitly)")
    return name


def vae_modality(vae) -> str:
    return VAE_CLASSES[type(vae).__name__][0]


def load_vae(path: str | None, device: str = "cpu", kind: str = "auto"):
    """A diffusers VAE from a local directory (config.json + weights), its class read from the config."""
    import diffusers

    cls = getattr(diffusers, vae_class_name(path, kind))
    try:
        vae = cls.from_pretrained(str(Path(path).expanduser()), local_files_only=True)
    except OSError as e:
        raise MissingFileError(f"VAE {path}: cannot read its weights ({str(e).splitlines()[0][:200]})") from None
    return vae.to(device).eval()


def latent_normalisation(vae) -> dict:
    """{"shift": [..], "scale": [..]} (one value or one per channel): z_norm = (z − shift) · scale."""
    c, name = vae.config, type(vae).__name__
    if name == "AutoencoderKLWan":
        return {"shift": [float(v) for v in c.latents_mean], "scale": [1.0 / float(v) for v in c.latents_std]}
    if name == "AutoencoderKL":
        return {"shift": [float(getattr(c, "shift_factor", None) or 0.0)], "scale": [float(getattr(c, "scaling_factor", None) or 0.18215)]}
    return {"shift": [0.0], "scale": [1.0]}


def _per_channel(values, z: torch.Tensor) -> torch.Tensor:
    v = torch.tensor(values, dtype=torch.float32, device=z.device)
    return v.view(1, -1, *([1] * (z.dim() - 2)))  # (1, C or 1, 1, …)


def media_rate(vae) -> float | None:
    """Samples per second the VAE works at (audio), None otherwise."""
    rate = getattr(vae.config, "sampling_rate", None)
    return float(rate) if rate else None


def check_media_shape(vae, shape: tuple[int, ...]) -> None:
    """One line when media of `shape` (one example) cannot be encoded by this VAE."""
    name, c = type(vae).__name__, vae.config
    if name == "AutoencoderOobleck":
        hop = int(torch.tensor(c.downsampling_ratios).prod())
        if shape[-1] % hop:
            raise ConfigError(f"audio length: {shape[-1]} samples is not a multiple of the VAE's hop length {hop}")
        return
    down = 2 ** (len(getattr(c, "block_out_channels", [0])) - 1) if name == "AutoencoderKL" else int(c.scale_factor_spatial or 8)
    if shape[-1] % down:
        raise ConfigError(f"image size: {shape[-1]} is not a multiple of the VAE's spatial downsampling {down}")
    if name == "AutoencoderKLWan":
        tdown = int(c.scale_factor_temporal or 4)
        if (shape[1] - 1) % tdown:
            raise ConfigError(f"frames: the WAN VAE encodes 1 + {tdown}·k frames, got {shape[1]}")


@torch.no_grad()
def encode_media(vae, x: torch.Tensor, norm: dict) -> torch.Tensor:
    """Media in [-1, 1] — images (B, 3, H, W), video (B, 3, T, H, W), audio (B, C, L) at the VAE's
    rate — → normalised latents (a sample of the posterior): (B, C', h, w) | (B, C', t, h, w) | (B, C', l)."""
    if type(vae).__name__ == "AutoencoderOobleck":
        want = int(vae.config.audio_channels)
        x = x.mean(1, keepdim=True).expand(-1, want, -1) if x.shape[1] != want else x  # mono ↔ stereo
    z = vae.encode(x.to(vae.dtype)).latent_dist.sample().float()
    return (z - _per_channel(norm["shift"], z)) * _per_channel(norm["scale"], z)


@torch.no_grad()
def decode_latents(vae, z: torch.Tensor, norm: dict, batch_size: int = 16) -> torch.Tensor:
    """Normalised latents → media in [-1, 1] on the CPU, in the evaluation layout: images
    (B, 3, H, W), video (B, 3, T, H, W), audio (B, 1, L) (channels averaged to mono)."""
    dev = next(vae.parameters()).device
    out = []
    for i in range(0, z.shape[0], batch_size):
        zi = z[i:i + batch_size].float().to(dev)
        zi = zi / _per_channel(norm["scale"], zi) + _per_channel(norm["shift"], zi)
        x = vae.decode(zi.to(vae.dtype)).sample.float()
        if type(vae).__name__ == "AutoencoderOobleck":
            x = x.mean(1, keepdim=True)  # (b, 1, L)
        out.append(x.cpu())
    return torch.cat(out).clamp(-1, 1)
