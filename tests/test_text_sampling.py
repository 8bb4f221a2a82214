"""`suite sample RUN --caption TEXT` end to end: a tiny MM-DiT trained a few steps on captioned
latent shards (tiny stand-ins of the VAE and T5) samples for new captions, embedded by the text
encoder the run records (same name, max_length, layers), from the recorded directory or --text-weights."""
import shutil

import pytest
import torch

from suite.cli import main
from suite.config import load_run_config
from test_text_conditioning import _image_folder, _tiny_vae
from text_standins import save_tiny_t5

CAPTIONS = ["a red disk", "a photo of a cat in the top left"]


@pytest.fixture
def text_run(tmp_path, tiny_cfg):
    """(run dir, shards dir, T5 dir, VAE dir) of a few training steps on captioned shards."""
    from suite.train import train

    vae, t5 = _tiny_vae(tmp_path / "vae"), save_tiny_t5(tmp_path / "t5")
    _image_folder(tmp_path / "imgs")
    assert main(["data", "encode", "--folder", str(tmp_path / "imgs"), "--vae", str(vae), "--image-size", "16", "--out",
                 str(tmp_path / "lat"), "--text-encoder", "t5", "--text-weights", str(t5), "--text-max-length", "7",
                 "--text-layers", "1,2"]) == 0
    cfg = load_run_config(tiny_cfg(**{
        "name": "t2i", "method": {"name": "vanilla"},
        "data": {"name": "latents", "root": str(tmp_path / "lat"), "vae": str(vae), "test_fraction": 0},
        "model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 2, "num_heads": 2, "text_dim": 64},
        "train.total_images": 12, "train.batch_size": 6, "sampling.steps": 2}))
    res = train(cfg)
    assert res.status == "finished"
    return res.run_dir, tmp_path / "lat", t5, vae


def _spy_conditions(monkeypatch) -> list:
    import suite.sampling

    seen, sample = [], suite.sampling.sample_images
    monkeypatch.setattr(suite.sampling, "sample_images",
                        lambda *a, labels=None, **k: (seen.append(labels), sample(*a, labels=labels, **k))[1])
    return seen


def test_sample_with_captions_embeds_them_as_the_shards_were(text_run, tmp_path, monkeypatch, capsys):
    from suite.text import load_text_encoder

    run, lat, t5, _ = text_run
    spec = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["model_spec"]
    assert spec["text_encoder"] == {"text_encoder": "t5", "text_weights": str(t5), "text_max_length": 7, "text_layers": [1, 2],
                                    "text_dim": 64}  # the run records how its captions were embedded
    seen = _spy_conditions(monkeypatch)
    args = ["sample", str(run), "--n", "3", "--device", "cpu", "--seed", "1"]
    for c in CAPTIONS:
        args += ["--caption", c]
    assert main([*args, "--out", str(tmp_path / "s")]) == 0  # weights from the directory the shards recorded
    emb, _ = load_text_encoder("t5", str(t5), max_length=7, layers=(1, 2)).encode(CAPTIONS)  # (2, 7, 64)
    torch.testing.assert_close(seen[-1], emb[[0, 1, 0]])  # the n samples cycle through the captions
    from PIL import Image

    names = sorted(p.name for p in (tmp_path / "s").glob("0*.png"))
    assert names == ["000000_caption0.png", "000001_caption1.png", "000002_caption0.png"]
    assert Image.open(tmp_path / "s" / names[0]).size == (16, 16)  # decoded through data.vae: pixels, not latents
    assert torch.load(tmp_path / "s" / "meta.pt", weights_only=False)["captions"] == CAPTIONS

    # the recorded directory moved: one line naming the encoder and the flag; then --text-weights
    moved = shutil.move(str(t5), str(tmp_path / "t5-moved"))
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "s2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--text-weights" in err and "text encoder t5 (max_length 7, layers 1,2)" in err and str(t5) in err
    # the shards moved too: the checkpoint's record is enough
    shutil.move(str(lat), str(tmp_path / "lat-moved"))
    assert main([*args, "--text-weights", moved, "--out", str(tmp_path / "s2")]) == 0
    torch.testing.assert_close(seen[-1], emb[[0, 1, 0]])
    # weights of another width: refused in one line; a missing directory: one line naming its config.json
    small = save_tiny_t5(tmp_path / "t5-small", hidden=16)
    assert main([*args, "--text-weights", str(small), "--out", str(tmp_path / "s3")]) == 2
    assert "gives 32-dim embeddings" in capsys.readouterr().err and not (tmp_path / "s3").exists()
    assert main([*args, "--text-weights", str(tmp_path / "nope"), "--out", str(tmp_path / "s3")]) == 2
    assert "nope/config.json" in capsys.readouterr().err
    assert main([*args, "--format", "npz", "--out", str(tmp_path / "s3")]) == 2
    assert "--caption: only with --format png" in capsys.readouterr().err


def test_built_in_vocabulary_captions_still_sample_and_class_runs_refuse_captions(tmp_path, tiny_cfg, monkeypatch, capsys):
    from suite.data.captions import tokenize
    from suite.train import train

    base = {"method": {"name": "vanilla"}, "train.total_images": 8, "train.batch_size": 4, "sampling.steps": 2,
            "model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 2, "num_heads": 2}}
    run = train(load_run_config(tiny_cfg(name="ids", data={"name": "shapes-text", "image_size": 8}, **base))).run_dir
    seen = _spy_conditions(monkeypatch)
    caption = "a large red ring in the top left"
    assert main(["sample", str(run), "--n", "2", "--device", "cpu", "--caption", caption, "--out", str(tmp_path / "s")]) == 0
    assert torch.equal(seen[-1], torch.stack([tokenize(caption)] * 2))
    assert main(["sample", str(run), "--n", "2", "--device", "cpu", "--caption", caption, "--text-weights", str(tmp_path),
                 "--out", str(tmp_path / "s")]) == 2
    assert "built-in vocabulary" in capsys.readouterr().err
    cls = train(load_run_config(tiny_cfg(name="cls", **base))).run_dir
    assert main(["sample", str(cls), "--n", "2", "--device", "cpu", "--caption", caption, "--out", str(tmp_path / "c")]) == 2
    assert "is class-conditional" in capsys.readouterr().err
