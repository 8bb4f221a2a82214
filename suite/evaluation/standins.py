"""Tiny randomly initialised stand-ins for pretrained extractors, built from the real classes.

Tests (and `suite` smoke checks on machines without weights) use these so that the real loading
and forward code paths run without any download: a state dict saved from a random instance of
torch-fidelity's own Inception class, and a `save_pretrained` directory of a tiny transformers
DINOv2. Their numbers mean nothing; their shapes and code paths are the real ones.
"""
from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch

from suite.evaluation.extractors import INCEPTION_FILE


def random_inception_weights(directory, seed: int = 0) -> Path:
    """Write `<directory>/weights-inception-2015-12-05-6726825d.pth` holding random weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = Path(directory) / INCEPTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # The class always loads a state dict in __init__; skip that once to get a random instance.
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None), \
         mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="<random>")
    # Random convs shrink activations to ~1e-8 by pool3; one calibration pass sets every BatchNorm's
    # running statistics to that batch's (momentum None = plain average), so features are O(1).
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net((torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    torch.save(net.state_dict(), path)
    return path


def tiny_dinov2(directory, seed: int = 0, image_size: int = 28) -> Path:
    """A 2-layer, 32-wide DINOv2 (patch 14) saved with `save_pretrained` into `directory`."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=image_size, patch_size=14)
    Dinov2Model(cfg).save_pretrained(str(directory))
    return Path(directory)


class _TinyTorchScriptInception(torch.nn.Module):
    """Same interface as clean-fid's TorchScript Inception: a `layers` module mapping a
    (B, 3, 299, 299) input in [-1, 1] to 2048 features, and forward(x, return_features)."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7, stride=8), torch.nn.SiLU(), torch.nn.AdaptiveAvgPool2d(2),
                                          torch.nn.Flatten(), torch.nn.Linear(32, 2048))

    def forward(self, x, return_features: bool = False):
        return self.layers((x - 128) / 128)


def tiny_cleanfid_inception(directory, seed: int = 0) -> Path:
    """Write `<directory>/inception-2015-12-05.pt`: a tiny scripted module clean-fid's wrapper can load."""
    from suite.evaluation.extractors import CLEANFID_INCEPTION_FILE

    torch.manual_seed(seed)
    path = Path(directory) / CLEANFID_INCEPTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(_TinyTorchScriptInception()).save(str(path))
    return path
