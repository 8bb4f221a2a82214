"""Video feature networks for FVD, and frame-wise image features of video.

Both FVD networks see 16 frames at 224 × 224, the convention of StyleGAN-V / TATS (I3D) and of
content-debiased FVD (VideoMAE-v2), through `fit_frames` and a per-frame bilinear resize
(align_corners=False). Clips longer than 16 frames are cut to their first 16 (StyleGAN-V's
`_16f`); shorter ones (the built-in `moving-shapes` has 8) are stretched by repeating frames
(nearest-neighbour in time), so the order of frames, which FVD is there to judge, is kept.

- `i3d`: Kinetics-400 I3D; the 400 logits are the features (the TF-hub FVD convention). Either
  StyleGAN-V's TorchScript `i3d_torchscript.pt`, called with rescale=False, resize=False,
  return_features=True on frames in [-1, 1]; or TATS' state dict `i3d_pretrained_400.pt`, loaded
  into cd-fvd's `InceptionI3d` (the class it ships for that file), on frames in [-1, 1].
- `videomae`: VideoMAE-v2 (cd-fvd's `VisionTransformer`; the released ViT-g fine-tuned on SSv2,
  `vit_g_hybrid_pt_1200e_ssv2_ft.pth`); the feature is `forward_features` (mean-pooled tokens
  after `fc_norm`, 1408 dims for ViT-g), on frames in [0, 1] without mean/std normalisation, as
  cd-fvd feeds it. The architecture is read from the state dict's shapes (heads: 16 for the
  1408-wide ViT-g, else width / 64 as in the other VideoMAE-v2 releases).
- `FramewiseExtractor`: any image extractor applied to every frame ((B·T) rows of features):
  the frame-wise FID of video (`fidframes2k_inception`).

Weights are never downloaded: an explicit path, or one line naming the file.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from suite.errors import CheckpointError, MissingFileError, SuiteError

FVD_FRAMES = 16
FVD_SIZE = 224
I3D_HINT = ("StyleGAN-V's i3d_torchscript.pt or TATS' i3d_pretrained_400.pt "
            "(the file cd-fvd downloads: github.com/songweige/TATS, tats/fvd/i3d_pretrained_400.pt)")
VIDEOMAE_HINT = "VideoMAE-v2 vit_g_hybrid_pt_1200e_ssv2_ft.pth (OpenGVLab VideoMAEv2 model zoo; the file cd-fvd downloads)"


# ----------------------------------------------------------------------------- preprocessing
def fit_frames(video: torch.Tensor, frames: int = FVD_FRAMES) -> torch.Tensor:
    """(B, C, T, H, W) → (B, C, frames, H, W): the first `frames` frames, or (T < frames) each
    frame repeated in order (frame i of the output is frame ⌊i·T/frames⌋ of the input)."""
    t = video.shape[2]
    if t >= frames:
        return video[:, :, :frames]
    idx = torch.arange(frames) * t // frames  # (frames,) nondecreasing
    return video[:, :, idx]


def resize_frames(video: torch.Tensor, size: int = FVD_SIZE) -> torch.Tensor:
    """(B, C, T, H, W) float → (B, C, T, size, size), bilinear per frame (align_corners=False)."""
    b, c, t, h, w = video.shape
    if (h, w) == (size, size):
        return video
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)  # (B·T, C, H, W)
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return frames.reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)  # (B, C, T, S, S)


def _video_uint8(x: torch.Tensor, who: str) -> torch.Tensor:
    if x.dim() != 5 or x.shape[1] != 3 or x.dtype != torch.uint8:
        raise SuiteError(f"{who} expects video (B, 3, T, H, W) uint8, got {x.dtype} {tuple(x.shape)} (is the dataset video?)")
    return x


# ----------------------------------------------------------------------------- loaders
def _checked(path, key: str, hint: str) -> Path:
    if path is None:
        raise MissingFileError(f"{key} is not set: it needs {hint}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"{key}: file not found: {p} (need {hint})")
    return p


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive holds code/ and constants.pkl; a torch.save zip holds data.pkl only."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


class I3DFeatures(torch.nn.Module):
    """(B, 3, 16, 224, 224) in [-1, 1] → (B, 400) I3D logits, from either published file."""

    def __init__(self, path, device="cpu"):
        super().__init__()
        p = _checked(path, "eval.i3d_weights", I3D_HINT)
        try:
            if is_torchscript(p):
                self.net, self.scripted = torch.jit.load(str(p), map_location=device).eval(), True
            else:
                from cdfvd.third_party.i3d.utils import load_i3d_model  # the file exists: no download

                self.net, self.scripted = load_i3d_model(torch.device(device), str(p)).eval(), False
        except (RuntimeError, KeyError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as e:
            raise CheckpointError(f"cannot read I3D weights {p}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scripted:
            return self.net(x, rescale=False, resize=False, return_features=True)  # (B, 400)
        return self.net(x)  # (B, 400)


def videomae_arch(sd: dict) -> dict:
    """VisionTransformer kwargs of a VideoMAE-v2 state dict (shapes; heads by the releases' rule)."""
    d, _, tubelet, patch, _ = sd["patch_embed.proj.weight"].shape  # (D, 3, tubelet, p, p)
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    return dict(img_size=FVD_SIZE, patch_size=patch, embed_dim=d, depth=depth, num_heads=16 if d == 1408 else max(1, d // 64),
                mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / d, qkv_bias="blocks.0.attn.q_bias" in sd,
                init_values=1e-5 if "blocks.0.gamma_1" in sd else 0.0,
                num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
                all_frames=FVD_FRAMES, tubelet_size=tubelet, use_mean_pooling="fc_norm.weight" in sd)


def load_videomae(path, device="cpu") -> torch.nn.Module:
    """cd-fvd's VideoMAE-v2 `VisionTransformer` with the weights of `path` ({'model'|'module': sd} or sd)."""
    from functools import partial

    from cdfvd.third_party.VideoMAEv2.videomaev2_finetune import VisionTransformer

    p = _checked(path, "eval.videomae_weights", VIDEOMAE_HINT)
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
        for key in ("model", "module"):
            if isinstance(sd, dict) and key in sd:
                sd = sd[key]
                break
        net = VisionTransformer(norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **videomae_arch(sd))
        net.load_state_dict(sd)
    except (RuntimeError, KeyError, ValueError, AttributeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise CheckpointError(f"cannot read VideoMAE-v2 weights {p}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return net.eval().requires_grad_(False).to(device)


# ----------------------------------------------------------------------------- extractors
class VideoExtractor:
    """Video (B, 3, T, H, W) uint8 → {"features": (B, F)}; the Extractor interface of extractors.py."""

    adm_compatible = False
    has_spatial = False
    has_logits = False

    def __init__(self, name: str, net: torch.nn.Module, unit_range: bool, weights_path, device="cpu", batch_size: int = 16):
        from suite.evaluation.extractors import _file_fingerprint

        self.name, self.net, self.unit_range = name, net.eval(), unit_range
        self.weights_path, self.device, self.batch_size = str(weights_path), torch.device(device), batch_size
        self.fingerprint = f"{name}-{_file_fingerprint(Path(weights_path))}"
        self.preprocess = (f"{FVD_FRAMES} frames (first {FVD_FRAMES}, or each repeated), bilinear {FVD_SIZE}², "
                           + ("[0, 1]" if unit_range else "[-1, 1]"))

    def prepare(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) uint8 → (B, 3, 16, 224, 224) float in [0, 1] (VideoMAE) or [-1, 1] (I3D)."""
        x = resize_frames(fit_frames(_video_uint8(video, self.name)).float())  # (B, 3, 16, 224, 224) in [0, 255]
        return x / 255.0 if self.unit_range else x / 127.5 - 1.0

    @torch.no_grad()
    def extract(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        out = [self.net(self.prepare(video[i : i + self.batch_size]).to(self.device)).float().cpu()
               for i in range(0, video.shape[0], self.batch_size)]
        return {"features": torch.cat(out)}  # (B, F)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        return self.extract(video)["features"]


class _VideoMAEFeatures(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_features(x)  # (B, D)


def i3d_extractor(weights, device="cpu", batch_size: int = 16) -> VideoExtractor:
    return VideoExtractor("i3d", I3DFeatures(weights, device), False, weights, device, batch_size)


def videomae_extractor(weights, device="cpu", batch_size: int = 16) -> VideoExtractor:
    return VideoExtractor("videomae", _VideoMAEFeatures(load_videomae(weights, device)), True, weights, device, batch_size)


class FramewiseExtractor:
    """An image extractor on every frame: video (B, 3, T, H, W) uint8 → {"features": (B·T, F)}
    (clip-major: rows b·T … b·T + T − 1 are clip b's frames). `rows_per_sample` = T."""

    adm_compatible = False
    has_spatial = False
    has_logits = False

    def __init__(self, image_extractor):
        self.inner = image_extractor
        self.name = image_extractor.name  # metric names: fidframes2k_<name>
        self.weights_path = image_extractor.weights_path
        self.fingerprint = f"frames-{image_extractor.fingerprint}"
        self.rows_per_sample = 1
        self.preprocess = "every frame through the image extractor"

    def extract(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, t, h, w = _video_uint8(video, f"frame-wise {self.name}").shape
        self.rows_per_sample = t
        frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)  # (B·T, 3, H, W)
        return {"features": self.inner.extract(frames)["features"]}  # (B·T, F)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        return self.extract(video)["features"]
