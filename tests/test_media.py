"""Built-in video (`moving-shapes`) and audio (`tones`): deterministic by seed, captions, classes
separable by their domain classifiers, media files people can open, and a Self-Flow run on each
that trains, resumes exactly, evaluates (FD, class consistency, probes) and writes GIF / WAV."""
import json
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from suite.config import DataConfig, load_run_config
from suite.data import build_dataset
from suite.evaluation.domain_classifier import ClassifierRecipe, accuracy, train_classifier
from suite.evaluation.images import load_split
from suite.media import gif_bytes, log_spectrogram, media_kind, read_wav, save_samples, wav_bytes

SMALL = {"moving-shapes": dict(num_images=400), "tones": dict(num_images=400, audio_length=2048)}


@pytest.mark.parametrize("name", ["moving-shapes", "tones"])
def test_builtin_media_are_deterministic_by_seed_with_captions(name):
    cfg = DataConfig(name=name, **SMALL[name])
    a = build_dataset(cfg, "all")
    build_dataset.__globals__["_builtin_media"].cache_clear()  # regenerate, do not reuse the cache
    b = build_dataset(cfg, "all")
    other = build_dataset(DataConfig(name=name, seed=1, **SMALL[name]), "all")
    torch.testing.assert_close(a.images, b.images)
    assert a.captions == b.captions and not torch.equal(a.images, other.images)
    item = a[3]
    assert item["x0"].shape == ((3, 8, 16, 16) if name == "moving-shapes" else (1, 2048))
    assert item["x0"].abs().max() <= 1 and isinstance(item["caption"], str) and len(a.captions) == len(a)
    assert set(a.labels.tolist()) == set(range(10))
    word = a.class_names[item["y"]].split("-")  # e.g. ["disk", "left"], ["plucked", "rising"]
    assert word[0] in item["caption"] and word[1] in item["caption"]


def test_moving_shapes_move_the_way_their_class_says():
    ds = build_dataset(DataConfig(name="moving-shapes", num_images=200), "all")
    for i in range(40):
        clip, name = ds[i]["x0"], ds.class_names[ds[i]["y"]]
        fg = (clip - clip[:, :1, :2, :2].mean(dim=(2, 3), keepdim=True)).abs().sum(0) > 0.6  # (T, H, W) shape pixels
        xs = torch.arange(16.0)
        cx = [(fg[t].float().sum(0) * xs).sum() / fg[t].sum().clamp(min=1) for t in (0, 7)]
        assert (cx[1] > cx[0]) == name.endswith("right"), (i, name, cx)


def test_tones_pitch_pattern_is_audible_in_the_spectrum():
    ds = build_dataset(DataConfig(name="tones", num_images=100), "all")
    for i in range(30):
        if not ds.class_names[ds[i]["y"]].startswith(("sine", "tremolo")):
            continue
        spec = log_spectrogram(ds[i]["x0"][None])[0]  # (F, T')
        peak = [int(spec[:, j].argmax()) for j in (10, spec.shape[1] - 10)]  # first note, second note
        assert (peak[1] > peak[0]) == ds.class_names[ds[i]["y"]].endswith("rising")


@pytest.mark.parametrize("name", ["moving-shapes", "tones"])
def test_classes_are_separable_by_their_domain_classifier(name):
    cfg = DataConfig(name=name, num_images=1000)
    (x_tr, y_tr), (x_te, y_te) = load_split(cfg, "train"), load_split(cfg, "test")
    assert x_tr.dtype == (torch.uint8 if name == "moving-shapes" else torch.float32)
    net = train_classifier(x_tr, y_tr, 10, ClassifierRecipe(width=16, feature_dim=32, steps=150, batch_size=64))
    assert net.kind == ("video" if name == "moving-shapes" else "audio")
    assert accuracy(net, x_te, y_te) > 0.4  # 10 classes: chance is 0.1


def test_media_files_open_as_what_they_claim(tmp_path):
    clips = torch.rand(5, 3, 6, 8, 8) * 2 - 1
    im = Image.open(__import__("io").BytesIO(gif_bytes(clips, fps=6, scale=2)))
    assert im.format == "GIF" and im.n_frames == 6 and abs(im.info["duration"] - 1000 / 6) < 10 and im.info.get("loop") == 0
    waves = torch.sin(torch.linspace(0, 400, 800)).reshape(2, 1, 400) * 0.5
    data, rate = read_wav(wav_bytes(waves, 8000, gap_seconds=0.01))
    assert rate == 8000 and data.shape == (880,)
    np.testing.assert_allclose(data[:400], waves[0, 0].numpy(), atol=1e-4)
    assert np.abs(data[400:480]).max() == 0  # the gap between clips is silent
    paths = save_samples(waves, tmp_path, "s", rate=8000)
    assert [p.name for p in paths] == ["s.wav", "s.spectrogram.png"]
    with wave.open(str(paths[0])) as f:
        assert f.getnchannels() == 1 and f.getsampwidth() == 2
    assert Image.open(paths[1]).size[0] > 10
    assert media_kind((3, 8, 16, 16)) == "video" and media_kind((1, 64)) == "audio" and media_kind((3, 8, 8)) == "image"


@pytest.mark.parametrize("name", ["moving-shapes", "tones"])
def test_selfflow_run_trains_resumes_exactly_evaluates_and_writes_media(name, tiny_cfg, tmp_path):
    from suite.train import train

    data = {"moving-shapes": {"data.name": "moving-shapes", "data.num_images": 300, "model.patch_size": 4},
            "tones": {"data.name": "tones", "data.num_images": 300, "data.audio_length": 1024, "model.patch_size": 32}}[name]
    over = {**data, "train.total_images": 320, "train.ckpt_every_images": 160, "eval.metrics": ["fd", "class_consistency", "probe"],
            "eval.n_samples": 64, "eval.batch_size": 64, "eval.probe_n_train": 64, "eval.probe_n_test": 32,
            "eval.classifier_steps": 20, "eval.cache_dir": str(tmp_path / "cache"), "tracking.enabled": False}
    full = train(load_run_config(tiny_cfg(name="full", **over)))
    part = train(load_run_config(tiny_cfg(name="killed", **over, **{"train.max_steps": 7})))
    assert part.status == "interrupted"
    resumed = train(load_run_config(tiny_cfg(name="killed", **over)))
    rows = lambda r: {d["images_seen"]: d["train/loss"] for d in map(json.loads, (r.run_dir / "metrics.jsonl").read_text().splitlines()) if "train/loss" in d}
    a, b = rows(full), rows(resumed)
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)
    m = full.final_metrics
    assert np.isfinite(m["val/loss_mean"]) and np.isfinite(m[f"eval/fd64_{name}-classifier"])
    assert 0 <= m["eval/class_consistency64"] <= 1 and "eval/probe_acc_block1" in m
    files = {p.suffix for p in (full.run_dir / "samples").iterdir()}
    assert files == ({".gif"} if name == "moving-shapes" else {".wav", ".png"})


def test_cli_data_show_and_sample_write_media(tiny_cfg, tmp_path, capsys):
    from suite.cli import main
    from suite.train import train

    assert main(["data", "show", "tones", "--out", str(tmp_path / "tones.png")]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"tones.wav", "tones.spectrogram.png", "tones.captions.txt"}
    assert main(["data", "show", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one clear line, no traceback
    over = {"data.name": "moving-shapes", "data.num_images": 100, "model.patch_size": 4, "train.total_images": 64,
            "tracking.enabled": False}
    run = train(load_run_config(tiny_cfg(name="v", **over)))
    assert main(["sample", str(run.run_dir), "--n", "3", "--out", str(tmp_path / "s")]) == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert len([n for n in names if n.endswith(".gif") and "_class" in n]) == 3 and "meta.pt" in names
    assert "grid.gif" in names and Image.open(tmp_path / "s" / "grid.gif").n_frames == 8


def test_data_show_writes_into_a_directory_and_refuses_a_bad_out_in_one_line(tmp_path, capsys):
    """--out DIR (existing, or ending in /) writes NAME.<ext> inside it for image, video and audio built-ins;
    an image grid takes its format from a known extension; anything else is one line and writes nothing."""
    from suite.cli import main

    assert main(["data", "show", "shapes-text", "--out", str(tmp_path)]) == 0
    assert main(["data", "show", "moving-shapes", "--out", str(tmp_path)]) == 0
    assert main(["data", "show", "tones", "--out", f"{tmp_path / 'new'}/"]) == 0
    assert main(["data", "show", "digits", "--out", str(tmp_path / "grid.jpg")]) == 0
    assert Image.open(tmp_path / "shapes-text.png").format == "PNG" and Image.open(tmp_path / "grid.jpg").format == "JPEG"
    assert Image.open(tmp_path / "moving-shapes.gif").n_frames == 8 and (tmp_path / "new" / "tones.wav").is_file()
    assert f"wrote {tmp_path / 'shapes-text.png'}" in capsys.readouterr().out
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for name, out, why in [("shapes-text", tmp_path / "grid", "no image extension; give a file ending in .png, .jpg"),
                           ("shapes", tmp_path / "grid.mp4", "unknown image extension '.mp4'; give a file ending in .png"),
                           ("shapes-text", tmp_path / "grid.jpg" / "x.png", f"{tmp_path / 'grid.jpg'} is a file, not a directory"),
                           ("tones", tmp_path / "grid.jpg" / "clips", "is a file, not a directory")]:
        assert main(["data", "show", name, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: --out ") and why in err, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written, nothing lost
