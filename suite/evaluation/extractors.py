"""Feature extractors behind one small interface, each also registered with torch-fidelity.

An `Extractor` wraps a torch-fidelity `FeatureExtractorBase` built through torch-fidelity's own
registry (`create_feature_extractor`), so the features the suite computes once and shares
between metrics are exactly the features `torch_fidelity.calculate_metrics` would compute.

- `inception`: torch-fidelity's Inception-v3 port of the ADM/TF graph, from an explicit weights
  file or a pre-filled torch hub cache; never downloaded.
- `dinov2`: FD-DINOv2 (EDM2) with a transformers `Dinov2Model` read from a local directory.
- `<dataset>-classifier`: the suite's own domain classifier (see domain_classifier.py).

Every loader fails with one line naming the file it needs and where it normally comes from.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from suite.errors import MissingFileError, SuiteError
from suite.evaluation.images import quantise, to_float, to_uint8

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
CLEANFID_INCEPTION_FILE = "inception-2015-12-05.pt"
CLEANFID_INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + CLEANFID_INCEPTION_FILE
DINOV2_HINT = "a local Hugging Face directory of facebook/dinov2-large (config.json + model.safetensors)"

FIDELITY_DOMAIN = "suite-domain-classifier"
FIDELITY_DINOV2 = "suite-dinov2"
FIDELITY_INCEPTION = "inception-v3-compat"


# ----------------------------------------------------------------------------- torch-fidelity classes
class FidelityDomainClassifier(FeatureExtractorBase):
    """torch-fidelity view of the domain classifier; `feature_extractor_weights_path` = classifier.pt."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        from suite.evaluation.domain_classifier import load_classifier

        if feature_extractor_weights_path is None:
            raise MissingFileError("the domain classifier needs feature_extractor_weights_path (its classifier.pt)")
        self.net = load_classifier(feature_extractor_weights_path)

    def forward(self, x):
        if not (torch.is_tensor(x) and self.net.accepts(x)):
            raise SuiteError(f"{self.net.kind} domain classifier expects {self.net.expected_input}, got {getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
        feats, logits = self.net(to_float(x))  # (B, F), (B, K)
        out = {"penultimate": feats.float(), "logits": logits.float()}
        return tuple(out[a] for a in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)


class FidelityDinoV2(FeatureExtractorBase):
    """DINOv2 from a local transformers directory (torch-fidelity's own loader needs torch.hub).

    Preprocessing follows torch-fidelity's DINOv2 extractor: TF1-compatible bilinear resize to
    the model's image size (224 for the released models), ImageNet mean/std; the feature is the
    layer-normed CLS token (`pooler_output`), as in EDM2's FD-DINOv2.
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        from transformers import Dinov2Model

        self.model = Dinov2Model.from_pretrained(str(_dinov2_dir(feature_extractor_weights_path)), local_files_only=True)
        self.size = int(self.model.config.image_size)

    def forward(self, x):
        import torchvision
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(self.size, self.size), align_corners=False)
        x = torchvision.transforms.functional.normalize(
            x, (255 * 0.485, 255 * 0.456, 255 * 0.406), (255 * 0.229, 255 * 0.224, 255 * 0.225)
        )  # (B, 3, S, S)
        out = {"dinov2": self.model(pixel_values=x).pooler_output.float()}  # (B, D)
        return tuple(out[a] for a in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return ("dinov2",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "dinov2"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 16, 16, dtype=torch.uint8)


def register_with_torch_fidelity() -> None:
    """Idempotent: torch-fidelity refuses a second registration of the same name."""
    for name, cls in ((FIDELITY_DOMAIN, FidelityDomainClassifier), (FIDELITY_DINOV2, FidelityDinoV2)):
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            torch_fidelity.register_feature_extractor(name, cls)


register_with_torch_fidelity()


# ----------------------------------------------------------------------------- weights lookup
def _dinov2_dir(path) -> Path:
    if path is None:
        raise MissingFileError(f"FD-DINOv2 needs eval.dinov2_weights: {DINOV2_HINT}")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise MissingFileError(f"DINOv2 weights not found: {p / 'config.json'} (expected {DINOV2_HINT})")
    return p


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """An explicit weights path, else a pre-filled torch hub cache; never a download."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / INCEPTION_FILE
        if p.is_file():
            return p
        raise MissingFileError(f"Inception weights not found: {p} (need {INCEPTION_FILE}, from {INCEPTION_URL})")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached
    raise MissingFileError(
        f"Inception weights not found: set eval.inception_weights to {INCEPTION_FILE} (from {INCEPTION_URL}) or place it at {cached}"
    )


def find_cleanfid_inception(directory: str | os.PathLike | None) -> Path:
    """clean-fid's TorchScript Inception (`inception-2015-12-05.pt`), looked for in `directory`."""
    d = Path(directory).expanduser() if directory is not None else Path("/tmp")
    if d.is_file():
        d = d.parent
    p = d / CLEANFID_INCEPTION_FILE
    if not p.is_file():
        raise MissingFileError(f"clean-fid Inception not found: {p} (need {CLEANFID_INCEPTION_FILE}, from {CLEANFID_INCEPTION_URL})")
    return p


def _file_fingerprint(path: Path) -> str:
    """sha256 of the file (first 16 hex); cached weights change → cached reference stats do too."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- the interface
class Extractor:
    """Images → features (and logits). `name` appears in metric names (`fid2k_<name>`).

    `extract(images)` takes (B, C, H, W) floats in [-1, 1] or uint8 and returns
    {"features": (B, F), "logits": (B, K)} (logits only when the extractor has them).
    """

    def __init__(self, name: str, fidelity_name: str, feature_layer: str, logits_layer: str | None,
                 weights_path, device="cpu", batch_size: int = 250):
        self.name = name
        self.fidelity_name = fidelity_name
        self.feature_layer = feature_layer
        self.logits_layer = logits_layer
        self.weights_path = None if weights_path is None else str(weights_path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        layers = [feature_layer] + ([logits_layer] if logits_layer else [])
        from torch_fidelity.utils import create_feature_extractor

        self.module = create_feature_extractor(
            fidelity_name, layers, cuda=False, verbose=False, feature_extractor_weights_path=self.weights_path
        ).to(self.device)
        self.adm_compatible = fidelity_name == FIDELITY_INCEPTION  # same graph as ADM's evaluator: published μ, Σ apply
        self.has_spatial = self.adm_compatible  # ADM's sFID features (spatial.py) exist in Inception only
        wp = Path(self.weights_path) if self.weights_path else None
        self.fingerprint = f"{name}-{_file_fingerprint(wp) if wp and wp.is_file() else _dir_fingerprint(wp)}"

    @property
    def has_logits(self) -> bool:
        return self.logits_layer is not None

    def fidelity_kwargs(self) -> dict:
        """What torch_fidelity.calculate_metrics needs to build the same extractor."""
        return {
            "feature_extractor": self.fidelity_name,
            "feature_extractor_weights_path": self.weights_path,
            "feature_layer_fid": self.feature_layer,
            "feature_layer_kid": self.feature_layer,
            "feature_layer_prc": self.feature_layer,
            "feature_layer_isc": self.logits_layer or self.feature_layer,
        }

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"features", "logits" (if any), "spatial" (Inception: sFID's (B, 2023) features)}."""
        from contextlib import nullcontext

        from suite.evaluation.spatial import capture_spatial

        out: dict[str, list[torch.Tensor]] = {"features": [], "logits": []}
        with capture_spatial(self.module) if self.has_spatial else nullcontext([]) as spatial:
            for i in range(0, images.shape[0], self.batch_size):
                batch = quantise(images[i : i + self.batch_size]).to(self.device)  # (b, 3, H, W) uint8; video/audio: see quantise
                feats = self.module.convert_features_tuple_to_dict(self.module(batch))
                out["features"].append(feats[self.feature_layer].float().cpu())
                if self.logits_layer:
                    out["logits"].append(feats[self.logits_layer].float().cpu())
        out["spatial"] = spatial
        return {k: torch.cat(v) for k, v in out.items() if v}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.extract(images)["features"]  # (B, F)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        if not self.has_logits:
            raise SuiteError(f"extractor {self.name!r} has no logits")
        return self.extract(images)["logits"]  # (B, K)

    def cleanfid_model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """clean-fid's custom_feat_extractor: float (B, 3, H, W) in [0, 255] → (B, F)."""
        module, layer, device = self.module, self.feature_layer, self.device

        def fn(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device).float().round().clamp(0, 255).to(torch.uint8)
            return module.convert_features_tuple_to_dict(module(x))[layer]

        return fn


def _dir_fingerprint(path) -> str:
    if path is None:
        return "none"
    p = Path(path)
    files = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else []
    return hashlib.sha256("|".join(f"{q.name}:{q.stat().st_size}" for q in files).encode()).hexdigest()[:16]


def domain_extractor(data_cfg, cache_dir=None, device="cpu", batch_size: int = 250, recipe=None, seed: int = 0) -> Extractor:
    """`<dataset>-classifier`, trained and cached on first use."""
    from suite.evaluation.domain_classifier import get_domain_classifier

    path = get_domain_classifier(data_cfg, cache_dir=cache_dir, recipe=recipe, seed=seed)
    return Extractor(f"{data_cfg.name}-classifier", FIDELITY_DOMAIN, "penultimate", "logits", path, device, batch_size)


def inception_extractor(weights=None, device="cpu", batch_size: int = 250) -> Extractor:
    return Extractor("inception", FIDELITY_INCEPTION, "2048", "logits_unbiased", find_inception_weights(weights), device, batch_size)


def dinov2_extractor(weights_dir, device="cpu", batch_size: int = 250) -> Extractor:
    return Extractor("dinov2", FIDELITY_DINOV2, "dinov2", None, _dinov2_dir(weights_dir), device, batch_size)


class CleanFidInception:
    """clean-fid's own Inception (TorchScript `inception-2015-12-05.pt`) after its 'clean' resize
    (PIL bicubic to 299). Same `extract`/`features` interface as `Extractor`; its numbers are
    labelled `_cleanfid` and never compared with ADM's published statistics."""

    adm_compatible = False
    has_logits = False

    def __init__(self, weights, device="cpu", batch_size: int = 250):
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        p = find_cleanfid_inception(Path(weights).parent if weights and Path(weights).is_file() else weights)
        self.name, self.weights_path, self.device, self.batch_size = "inception", str(p), torch.device(device), batch_size
        self.fingerprint = f"cleanfid-inception-{_file_fingerprint(p)}"
        self.model = InceptionV3W(str(p.parent), download=False, resize_inside=False).to(self.device).eval()
        self.resize = build_resizer("clean")

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            batch = to_uint8(images[i : i + self.batch_size]).permute(0, 2, 3, 1).numpy()  # (b, H, W, 3) uint8
            resized = np.stack([self.resize(im) for im in batch]).transpose(0, 3, 1, 2)  # (b, 3, 299, 299) float 0..255
            out.append(self.model(torch.from_numpy(resized).float().to(self.device)).float().cpu())
        return {"features": torch.cat(out)}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.extract(images)["features"]
