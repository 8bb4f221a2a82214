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


# ----------------------------------------------------------------------------- video (FVD)
class _TinyScriptedI3D(torch.nn.Module):
    """StyleGAN-V's TorchScript I3D call: forward(x, rescale, resize, return_features) on
    (B, 3, T, H, W) → (B, 400). A temporal convolution and 4 time bins keep frame order in the
    features (a shuffled clip gives other features), as a real video network's do."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=(3, 16, 16), stride=(1, 16, 16), padding=(1, 0, 0))
        self.pool = torch.nn.AdaptiveAvgPool3d((4, 2, 2))
        self.head = torch.nn.Linear(8 * 16, 400)

    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = torch.tanh(self.conv(x))  # (B, 8, T, H/16, W/16)
        logits = self.head(self.pool(h).flatten(1))  # (B, 400)
        return logits if return_features else torch.softmax(logits, dim=1)


def tiny_i3d_torchscript(directory, seed: int = 0) -> Path:
    """`<directory>/i3d_torchscript.pt`: a tiny scripted 3-D CNN with StyleGAN-V's I3D signature."""
    torch.manual_seed(seed)
    path = Path(directory) / "i3d_torchscript.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(_TinyScriptedI3D()).save(str(path))
    return path


def random_i3d_state_dict(directory, seed: int = 0) -> Path:
    """`<directory>/i3d_pretrained_400.pt`: random weights of cd-fvd's `InceptionI3d` (TATS' file format)."""
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    torch.manual_seed(seed)
    path = Path(directory) / "i3d_pretrained_400.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(InceptionI3d(400, in_channels=3).state_dict(), path)
    return path


def tiny_videomae(directory, seed: int = 0) -> Path:
    """`<directory>/videomae_tiny.pth` ({'model': state dict}): cd-fvd's VideoMAE-v2 `VisionTransformer`
    at the released layout (patch 14, tubelet 2, 16 frames, 224²) but 64 wide and 1 block deep."""
    from functools import partial

    from cdfvd.third_party.VideoMAEv2.videomaev2_finetune import VisionTransformer

    torch.manual_seed(seed)
    net = VisionTransformer(img_size=224, patch_size=14, embed_dim=64, depth=1, num_heads=1, mlp_ratio=2.0, qkv_bias=True,
                            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=4, all_frames=16, tubelet_size=2,
                            use_mean_pooling=True, init_scale=1.0)
    path = Path(directory) / "videomae_tiny.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict()}, path)
    return path


# ----------------------------------------------------------------------------- audio (CLAP)
def tiny_roberta(directory, seed: int = 0) -> Path:
    """A local `roberta-base` stand-in: byte-level tokenizer (no merges) and a 1-layer RoBERTa,
    768 wide (CLAP's text projection expects 768), saved with `save_pretrained`."""
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    vocab["<mask>"] = len(vocab)
    RobertaTokenizer(vocab=vocab, merges=[]).save_pretrained(str(d))
    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=len(vocab), hidden_size=768, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=80, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    RobertaModel(cfg).save_pretrained(str(d))
    return d


def tiny_clap_checkpoint(path, text_dir, amodel: str = "HTSAT-tiny", seed: int = 0) -> Path:
    """A random LAION-CLAP checkpoint in the published layout ({'state_dict': {'module.…': …}},
    with the text branch's position_ids), built by laion_clap.CLAP_Module itself."""
    from suite.evaluation.audio_features import _redirect, import_laion_clap

    laion_clap = import_laion_clap()
    from transformers import RobertaModel, RobertaTokenizer

    torch.manual_seed(seed)
    with _redirect(RobertaModel, Path(text_dir)), _redirect(RobertaTokenizer, Path(text_dir)):
        model = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=torch.device("cpu"))
    sd = {f"module.{k}": v for k, v in model.model.state_dict().items()}
    n_pos = model.model.text_branch.config.max_position_embeddings
    sd["module.text_branch.embeddings.position_ids"] = torch.arange(n_pos)[None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "epoch": 0}, path)
    return path
