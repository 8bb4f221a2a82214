"""Encoder registry: each family's real loading + forward path on a tiny randomly initialised
stand-in of the same class (saved with save_pretrained / torch.save, read back by the real loader),
missing-weights errors, token-grid resampling."""
import json

import pytest
import torch
import torch.nn.functional as F

from baselines.encoders import available_encoders, load_encoder, resample_tokens
from suite.errors import CheckpointError, ConfigError, MissingFileError

transformers = pytest.importorskip("transformers")

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _pixels(b=2, s=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, s, s, generator=g) * 2 - 1  # (B, 3, H, W) in [-1, 1]


def _save(model, path):
    model.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """(registry name, stand-in dir, prefix tokens it must drop): tiny random models, saved once."""
    T = transformers
    tmp_path = tmp_path_factory.mktemp("standins")
    torch.manual_seed(0)
    return [
        ("dinov2-vitb14", _save(T.Dinov2Model(T.Dinov2Config(image_size=28, patch_size=14, **TINY)), tmp_path / "d2"), 1),
        ("dinov2-vitb14-reg", _save(T.Dinov2WithRegistersModel(T.Dinov2WithRegistersConfig(
            image_size=28, patch_size=14, num_register_tokens=4, **TINY)), tmp_path / "d2r"), 5),
        ("dinov3-vitb16", _save(T.DINOv3ViTModel(T.DINOv3ViTConfig(image_size=32, patch_size=16, num_register_tokens=4, **TINY)),
                                tmp_path / "d3"), 5),
        ("siglip2-base-patch16-224", _save(T.SiglipVisionModel(T.SiglipVisionConfig(image_size=32, patch_size=16, **TINY)),
                                           tmp_path / "sig"), 0),
        ("siglip2-base-patch16-naflex", _save(T.Siglip2VisionModel(T.Siglip2VisionConfig(num_patches=16, patch_size=16, **TINY)),
                                              tmp_path / "sig2"), 0),
        # as published on the hub: the whole image-text model; the loader takes its image tower
        ("siglip2-base-patch16-256", _save(T.SiglipModel(T.SiglipConfig(
            text_config=dict(vocab_size=64, max_position_embeddings=8, bos_token_id=1, eos_token_id=2, pad_token_id=0, **TINY),
            vision_config=dict(image_size=32, patch_size=16, **TINY))), tmp_path / "sig-full"), 0),
        ("siglip2-so400m-patch16-naflex", _save(T.Siglip2Model(T.Siglip2Config(
            text_config=dict(vocab_size=64, max_position_embeddings=8, bos_token_id=1, eos_token_id=2, pad_token_id=0, **TINY),
            vision_config=dict(num_patches=16, patch_size=16, **TINY))), tmp_path / "sig2-full"), 0),
    ]


def test_every_family_is_registered():
    names = set(available_encoders())
    for n in ("dinov2-vits14", "dinov2-vitb14", "dinov2-vitl14", "dinov2-vitg14", "dinov3-vitb16", "dinov3-vith16plus",
              "siglip2-base-patch16-224", "siglip2-base-patch16-naflex", "local"):
        assert n in names


def test_hf_standins_return_the_expected_token_grid(standins):
    x = _pixels()
    for name, path, prefix in standins:
        enc = load_encoder(name, path=str(path))
        assert not enc.training and not any(p.requires_grad for p in enc.parameters())
        tokens = enc(x)
        h, w = enc.grid
        assert tokens.shape == (2, h * w, 32), name
        # default resolutions: DINOv2 224/14 → 16×16 (REPA), DINOv3/NaFlex 256/16 → 16×16, SigLIP native
        assert enc.grid == {"siglip2-base-patch16-224": (2, 2), "siglip2-base-patch16-256": (2, 2)}.get(name, (16, 16)), name
        # another input size changes the grid (what a generator with another grid asks for)
        enc = load_encoder(name, path=str(path), input_size=4 * enc.patch_size)
        assert enc(x).shape == (2, 16, 32), name
        # the tokens are the model's own patch tokens: CLS / registers dropped, nothing else
        pre = enc.preprocess(x)
        if name.startswith("dino"):
            full = enc.model(pixel_values=pre).last_hidden_state
            assert full.shape[1] == 16 + prefix
            torch.testing.assert_close(enc.forward_tokens(pre), full[:, prefix:])
    # the image tower of a full SigLIP checkpoint is loaded weight for weight
    full = transformers.SiglipModel.from_pretrained(str(standins[5][1]))
    enc = load_encoder("siglip2-base-patch16-256", path=str(standins[5][1]))
    x32 = _pixels(s=32)
    torch.testing.assert_close(enc(x32), full.vision_model(pixel_values=x32).last_hidden_state)


def test_preprocess_resizes_bicubic_and_normalises_the_encoders_way(standins):
    name, path, _ = standins[0]
    enc = load_encoder(name, path=str(path))
    x = _pixels()
    ref = F.interpolate((x + 1) / 2, size=(224, 224), mode="bicubic", align_corners=False)
    ref = (ref - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.preprocess(x), ref)
    sig = load_encoder("siglip2-base-patch16-224", path=str(standins[3][1]), input_size=32)
    x = _pixels(s=32)
    torch.testing.assert_close(sig.preprocess(x), x)  # SigLIP: mean = std = 0.5 → pixels in [-1, 1] as they are


def test_naflex_patch_layout_matches_the_image_processor(standins):
    from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

    _, path, _ = standins[4]
    enc = load_encoder("siglip2-base-patch16-naflex", path=str(path), input_size=32)
    pre = enc.preprocess(_pixels(b=1))  # (1, 3, 32, 32)
    patches = convert_image_to_patches(pre[0], 16)[None]  # (1, 4, 768): the processor's own layout
    ref = enc.model(pixel_values=patches, pixel_attention_mask=torch.ones(1, 4, dtype=torch.long),
                    spatial_shapes=torch.tensor([[2, 2]])).last_hidden_state
    torch.testing.assert_close(enc.forward_tokens(pre), ref)


def test_dinov2_torch_hub_checkpoint_through_timm(tmp_path):
    timm = pytest.importorskip("timm")
    kw = dict(embed_dim=32, depth=2, num_heads=2, img_size=28)
    ref = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, **kw)
    torch.save(ref.state_dict(), tmp_path / "dinov2_vits14_pretrain.pth")
    enc = load_encoder("dinov2-vits14", path=str(tmp_path / "dinov2_vits14_pretrain.pth"), input_size=56, **kw)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(enc.model.state_dict()[k], v)
    assert enc(_pixels()).shape == (2, 16, 32)


def test_hub_cache_layout_is_read_offline(tmp_path):
    """A pre-filled Hugging Face cache (models--org--name/snapshots/<rev>) works without a path."""
    snap = tmp_path / "cache" / "models--facebook--dinov2-small" / "snapshots" / "0123abc"
    _save(transformers.Dinov2Model(transformers.Dinov2Config(image_size=28, patch_size=14, **TINY)), snap)
    (tmp_path / "cache" / "models--facebook--dinov2-small" / "refs").mkdir()
    (tmp_path / "cache" / "models--facebook--dinov2-small" / "refs" / "main").write_text("0123abc")
    enc = load_encoder("dinov2-vits14", cache_dir=str(tmp_path / "cache"), input_size=28)
    assert enc(_pixels()).shape == (2, 4, 32)


@pytest.mark.parametrize("name, needs", [
    ("dinov2-vitb14", "config.json"), ("dinov3-vitl16", "config.json"), ("siglip2-base-patch16-224", "config.json"),
    ("local", "encoder.json"),
])
def test_missing_weights_error_names_the_file(tmp_path, name, needs):
    with pytest.raises(MissingFileError) as e:
        load_encoder(name, path=str(tmp_path / "absent"))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "absent" / needs) in msg


def test_missing_weight_file_beside_a_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingFileError, match="model.safetensors"):
        load_encoder("dinov2-vitb14", path=str(tmp_path))
    with pytest.raises(MissingFileError, match="dinov2_vitb14_pretrain.pth"):
        load_encoder("dinov2-vitb14", path=str(tmp_path / "x.pth"))
    with pytest.raises(MissingFileError, match="facebook/dinov2-base"):
        load_encoder("dinov2-vitb14", cache_dir=str(tmp_path / "empty-cache"))


def test_a_checkpoint_of_another_model_is_refused_not_randomly_filled(standins):
    dinov2_dir = standins[0][1]
    with pytest.raises(CheckpointError, match="not a DINOv3ViTModel checkpoint"):
        load_encoder("dinov3-vitb16", path=str(dinov2_dir))
    with pytest.raises(CheckpointError, match="not a SiglipVisionModel checkpoint"):
        load_encoder("siglip2-base-patch16-224", path=str(dinov2_dir))


def test_missing_weights_are_refused_not_randomly_filled(tmp_path):
    from safetensors.torch import load_file, save_file

    _save(transformers.Dinov2Model(transformers.Dinov2Config(image_size=28, patch_size=14, **TINY)), tmp_path)
    sd = load_file(tmp_path / "model.safetensors")
    del sd["encoder.layer.1.mlp.fc1.weight"]
    save_file(sd, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="1 weights missing, e.g. encoder.layer.1.mlp.fc1.weight"):
        load_encoder("dinov2-vitb14", path=str(tmp_path))


def test_unknown_encoder_and_bad_local_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="available"):
        load_encoder("no-such-encoder")
    (tmp_path / "encoder.json").write_text(json.dumps({"model": {"embed_dim": 8, "num_heads": 2}}))
    (tmp_path / "encoder.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_encoder("local", path=str(tmp_path))


def test_local_encoder_round_trip(tmp_path):
    from baselines.encoders.local import TinyViT, TinyViTConfig, save_local_encoder

    torch.manual_seed(0)
    vit = TinyViT(TinyViTConfig(input_size=8, patch_size=2, embed_dim=16, depth=1, num_heads=2)).eval()
    save_local_encoder(vit, tmp_path / "enc", {"dataset": "digits"})
    enc = load_encoder("local", path=str(tmp_path / "enc"))
    x = _pixels(s=8)
    torch.testing.assert_close(enc(x), vit((x + 1) / 2 * 2 - 1))  # mean = std = 0.5 on [0, 1]
    assert enc.grid == (4, 4) and enc.meta["dataset"] == "digits"


def test_resample_tokens_area_and_bilinear():
    g = torch.arange(16.0).view(1, 4, 4)  # one channel on a 4×4 grid
    tokens = g.flatten(1)[..., None]  # (1, 16, 1)
    down = resample_tokens(tokens, (2, 2))
    torch.testing.assert_close(down[0, :, 0], torch.tensor([2.5, 4.5, 10.5, 12.5]))  # 2×2 block means
    up = resample_tokens(tokens, (8, 8))
    assert up.shape == (1, 64, 1)
    torch.testing.assert_close(up.mean(), tokens.mean())  # bilinear ×2 of a linear ramp keeps the mean
    assert resample_tokens(tokens, (4, 4)) is tokens
