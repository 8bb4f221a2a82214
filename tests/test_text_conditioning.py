"""MM-DiT on precomputed caption embeddings (model.text_dim) and captioned latent shards
(`suite data encode --text-encoder`), end to end with tiny stand-ins of the VAE and text encoders."""
import json

import numpy as np
import pytest
import torch

from suite.config import load_run_config
from suite.errors import ConfigError, MissingFileError
from suite.models import mmdit
from suite.models.mmdit import MMDiT
from suite.models.token_times import TokenTimes
from text_standins import save_tiny_t5

E = 12  # caption embedding width


def _tiny(text_time="mean") -> MMDiT:
    torch.manual_seed(0)
    m = MMDiT((3, 8, 8), 10, hidden_size=32, depth=4, num_heads=2, double_blocks=2, text_time=text_time, text_dim=E)
    for p in m.parameters():  # leave the zero init so every path carries signal
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.1)
    return m.eval()


def _captions(b: int, length: int = 6) -> torch.Tensor:
    """(b, length, E) embeddings, each caption right-padded with zero tokens after a random length."""
    y = torch.randn(b, length, E)
    lengths = torch.randint(1, length + 1, (b,))
    return y * (torch.arange(length)[None, :] < lengths[:, None])[..., None]


@pytest.mark.parametrize("rule", mmdit.TEXT_TIME_RULES)
def test_equal_per_token_times_equal_the_scalar_time_with_embeddings(rule):
    m = _tiny(rule)
    x, y, t = torch.randn(2, 3, 8, 8), _captions(2), torch.rand(2)
    torch.testing.assert_close(m(x, t[:, None].expand(2, m.num_tokens).contiguous(), y), m(x, t, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m(x, TokenTimes.dual(t, t, torch.rand(2, m.num_tokens) < 0.5), y), m(x, t, y), rtol=1e-5, atol=1e-6)


def test_zero_tokens_are_the_learned_null_token_and_cfg_uses_them():
    m = _tiny()
    x, t, y = torch.randn(2, 3, 8, 8), torch.rand(2), _captions(2)
    zeros = torch.zeros_like(y)
    before_pad, before_null = m(x, t, y), m(x, t, zeros)
    with torch.no_grad():
        m.text_proj.weight.normal_()
        m.text_proj.bias.normal_()
    torch.testing.assert_close(m(x, t, zeros), before_null)  # a dropped caption never reaches the projection
    assert not torch.allclose(m(x, t, y), before_pad)  # a real caption does
    with torch.no_grad():
        m.null_text.normal_()
    assert not torch.allclose(m(x, t, zeros), before_null)  # …and the null token is the learned parameter
    torch.testing.assert_close(m.forward_with_cfg(x, t, y, 0.0), m(x, t, zeros), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.forward_with_cfg(x, t, y, 1.0), m(x, t, y), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="text_dim=0"):
        MMDiT((3, 8, 8), 10, hidden_size=32, depth=2, num_heads=2, double_blocks=1)(x, t, y)


def test_caption_embedding_dropout_is_one_draw_per_sample():
    from suite.flow import TimeSampler, TimeSamplerConfig
    from suite.methods.vanilla import VanillaConfig, VanillaFlowMatching

    method = VanillaFlowMatching(VanillaConfig(name="vanilla", label_dropout=0.5), _tiny(), TimeSampler(TimeSamplerConfig()))
    torch.manual_seed(0)
    y = torch.randn(400, 5, E)
    dropped = method.drop_labels(y)
    null_rows = (dropped == 0).flatten(1).all(1)
    assert torch.equal(dropped[~null_rows], y[~null_rows])  # a caption is dropped whole or kept whole
    assert 0.4 < null_rows.float().mean() < 0.6


def _write_captioned_shards(root, n=24, length=5, seed=0):
    """Captioned latent shards written directly (the layout `suite data encode --text-encoder` writes)."""
    from suite.data.latents import ShardWriter

    g = torch.Generator().manual_seed(seed)
    meta = {"num_classes": 1, "modality": "image", "vae_class": "AutoencoderKL", "latent_shift": [0.0], "latent_scale": [1.0],
            "rate": None, "text_encoder": "t5", "text_weights": "standin", "text_max_length": length, "text_layers": [], "text_dim": E}
    w = ShardWriter(str(root), meta, shard_size=10)
    y = _captions(n, length)
    w.add(latents=torch.randn(n, 4, 8, 8, generator=g), labels=torch.zeros(n, dtype=torch.long),
          text_embeddings=y.bfloat16(), text_masks=(y != 0).any(-1), captions=[f"caption {i}" for i in range(n)])
    w.close()
    return y


def _text_cfg(tiny_cfg, root, **over):
    return tiny_cfg(**{"data": {"name": "latents", "root": str(root)},
                       "model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 4, "num_heads": 2,
                                 "text_dim": E}, **over})


def test_captioned_shards_are_a_text_dataset_and_the_config_checks_text_dim(tiny_cfg, tmp_path):
    from suite.data import build_dataset, caption_dim, condition_kind

    y = _write_captioned_shards(tmp_path / "lat")
    cfg = load_run_config(_text_cfg(tiny_cfg, tmp_path / "lat"))
    assert condition_kind(cfg.data) == "text" and caption_dim(cfg.data) == E
    ds = build_dataset(cfg.data, "all")
    item = ds[3]
    torch.testing.assert_close(item["y"], y[3].bfloat16().float())
    assert item["caption"] == "caption 3" and (item["y"][(y[3] == 0).all(-1)] == 0).all()  # padding stays exactly zero
    with pytest.raises(ConfigError, match=f"model.text_dim: the data's captions are {E}-dim embeddings, the model expects 7"):
        load_run_config(_text_cfg(tiny_cfg, tmp_path / "lat", **{"model.text_dim": 7}))
    with pytest.raises(ConfigError, match=f"set model.text_dim={E}"):
        load_run_config(_text_cfg(tiny_cfg, tmp_path / "lat", **{"model.text_dim": 0}))
    with pytest.raises(ConfigError, match="model.text_dim: 8 takes caption embeddings, but this data has class labels"):
        load_run_config(tiny_cfg(**{"model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 4,
                                              "num_heads": 2, "text_dim": 8}}))
    with pytest.raises(ConfigError, match="model.text_dim: 8 needs model.backbone=mmdit"):
        load_run_config(tiny_cfg(**{"model.text_dim": 8}))


@pytest.mark.parametrize("method", ["vanilla", "selfflow"])
def test_methods_train_on_caption_embeddings_unchanged(method, tiny_cfg, tmp_path):
    from suite.train import train

    _write_captioned_shards(tmp_path / "lat")
    res = train(load_run_config(_text_cfg(tiny_cfg, tmp_path / "lat", name=method, method={"name": method},
                                          **{"train.total_images": 96, "train.batch_size": 16})))
    rows = [json.loads(l) for l in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert res.status == "finished" and len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    if method == "selfflow":
        assert any("train/loss_rep" in r for r in rows)


# ----------------------------------------------------------------------------- suite data encode --text-encoder
def _tiny_vae(path):
    from diffusers import AutoencoderKL

    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                  up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
                  latent_channels=4, norm_num_groups=4, sample_size=16).save_pretrained(path)
    return path


def _image_folder(root, captions_beside=True):
    from PIL import Image

    words = ["a red disk", "a blue square in the top left", "a photo of a cat", "a small green ring"]
    rows = []
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(3):
            f = root / f"class{c}" / f"{i}.png"
            Image.fromarray(np.random.default_rng(i + 10 * c).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(f)
            caption = words[(i + c) % len(words)]
            if captions_beside:
                f.with_suffix(".txt").write_text(caption + "\n")
            rows.append({"file": f"class{c}/{i}.png", "caption": caption})
    return rows


def test_data_encode_writes_captioned_shards_end_to_end(tmp_path, capsys):
    from suite.cli import main
    from suite.data import build_dataset
    from suite.config import DataConfig
    from suite.text import load_text_encoder

    vae, t5 = _tiny_vae(tmp_path / "vae"), save_tiny_t5(tmp_path / "t5")
    rows = _image_folder(tmp_path / "imgs")
    args = ["data", "encode", "--folder", str(tmp_path / "imgs"), "--vae", str(vae), "--image-size", "16", "--batch-size", "4",
            "--shard-size", "4", "--text-encoder", "t5", "--text-weights", str(t5), "--text-max-length", "10"]
    assert main([*args, "--out", str(tmp_path / "lat")]) == 0
    assert "model.text_dim=32" in capsys.readouterr().out
    ds = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), test_fraction=0), "all")
    assert len(ds) == 6 and ds.condition == "text" and ds.text_dim == 32 and ds.meta["text_encoder"] == "t5"
    enc = load_text_encoder("t5", str(t5), max_length=10)
    for i, r in enumerate(rows):  # the embeddings are the encoder's, of the caption beside each file
        emb, mask = enc.encode([r["caption"]])
        assert ds[i]["caption"] == r["caption"]
        torch.testing.assert_close(ds[i]["y"], emb[0].bfloat16().float())
    shard = torch.load(tmp_path / "lat" / "shard-00000.pt", weights_only=True)
    assert shard["text_masks"].shape == (4, 10) and shard["text_embeddings"].dtype == torch.bfloat16

    # a manifest gives the same shards; a missing caption is one line
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for f in (tmp_path / "imgs").rglob("*.txt"):
        f.unlink()
    assert main([*args, "--captions", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "lat2")]) == 0
    ds2 = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat2"), test_fraction=0), "all")
    assert [ds2[i]["caption"] for i in range(6)] == [r["caption"] for r in rows]
    torch.testing.assert_close(ds2.text, ds.text)
    assert main([*args, "--out", str(tmp_path / "lat3")]) == 2
    assert "caption not found:" in capsys.readouterr().err and not (tmp_path / "lat3").exists()
    (tmp_path / "m.csv").write_text("file,caption\nclass0/0.png,a red disk\n")
    assert main([*args, "--captions", str(tmp_path / "m.csv"), "--out", str(tmp_path / "lat4")]) == 2
    assert "no caption for class0/1.png" in capsys.readouterr().err
    assert main([*args[:-6], "--text-encoder", "t5", "--text-weights", str(tmp_path / "nope"), "--captions", str(tmp_path / "m.jsonl"),
                 "--out", str(tmp_path / "lat5")]) == 2
    assert "nope/config.json" in capsys.readouterr().err


def test_data_encode_reads_a_flat_captioned_folder_as_one_class(tmp_path, capsys):
    """root/x.png + root/x.txt (no class sub-folders): every item class 0, each with its own caption."""
    from PIL import Image

    from suite.cli import main
    from suite.config import DataConfig
    from suite.data import build_dataset
    from suite.text import load_text_encoder

    vae, t5 = _tiny_vae(tmp_path / "vae"), save_tiny_t5(tmp_path / "t5")
    flat = tmp_path / "pairs"
    flat.mkdir()
    captions = {"b": "a blue square", "a": "a photo of a cat", "c": "a small green ring in the top left"}
    for i, (name, caption) in enumerate(captions.items()):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (18, 16, 3), dtype=np.uint8)).save(flat / f"{name}.png")
        (flat / f"{name}.txt").write_text(caption)
    args = ["data", "encode", "--vae", str(vae), "--image-size", "16", "--text-encoder", "t5", "--text-weights", str(t5),
            "--text-max-length", "6"]
    assert main([*args, "--folder", str(flat), "--out", str(tmp_path / "lat")]) == 0
    ds = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), test_fraction=0), "all")
    assert len(ds) == 3 and ds.num_classes == 1 and ds.labels.tolist() == [0, 0, 0]
    assert [ds[i]["caption"] for i in range(3)] == [captions[k] for k in ("a", "b", "c")]  # sorted by file name
    emb, _ = load_text_encoder("t5", str(t5), max_length=6).encode([captions["a"]])
    torch.testing.assert_close(ds[0]["y"], emb[0].bfloat16().float())

    # one layout or the other: a folder with both is one line; without --text-encoder, class folders are needed
    (flat / "extra").mkdir()
    Image.new("RGB", (16, 16)).save(flat / "extra" / "d.png")
    capsys.readouterr()
    assert main([*args, "--folder", str(flat), "--out", str(tmp_path / "lat2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (diffusers may warn above it)
    assert err.startswith("error: --folder: ") and "both at its top level and in sub-folders" in err
    assert not (tmp_path / "lat2").exists()
    (flat / "extra" / "d.png").unlink()
    assert main(["data", "encode", "--vae", str(vae), "--image-size", "16", "--folder", str(flat), "--out", str(tmp_path / "lat3")]) == 2
    assert "no image files under" in capsys.readouterr().err
