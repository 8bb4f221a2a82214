"""Video and audio metrics: FVD (I3D, VideoMAE-v2), frame-wise FID, FAD-CLAP and the CLAP score,
on tiny random stand-ins of the real classes (no weights, no download)."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from scipy import linalg

from suite.errors import ConfigError, MissingFileError, SuiteError
from suite.evaluation import standins
from suite.evaluation.metrics import MetricSpec, compute_for_extractor, metric_names, parse_metric
from suite.evaluation.reference import Reference

torch.set_num_threads(1)


def direct_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½), straight from numpy/scipy."""
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sa @ sb).real
    return float(((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(covmean))


def as_reference(features: torch.Tensor) -> Reference:
    f = features.double().numpy()
    return Reference("real", f.mean(0), np.cov(f, rowvar=False), features=features)


def frechet_metric(kind: str, name: str, gen: torch.Tensor, real: torch.Tensor, rows: int = 1) -> float:
    n = gen.shape[0] // rows
    out = compute_for_extractor([MetricSpec(kind, n, name)], name, {"features": gen}, as_reference(real), rows_per_sample=rows)
    return out[metric_names(kind, n, name)[0]]


@pytest.fixture(scope="module")
def clips():
    from suite.data.video import make_moving_shapes

    x, y, _ = make_moving_shapes(16, 8, 16, 10, seed=1)  # (16, 3, 8, 16, 16) in [-1, 1]
    return ((x + 1) * 127.5).round().to(torch.uint8), y


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    from suite.evaluation.video_features import i3d_extractor

    return i3d_extractor(standins.tiny_i3d_torchscript(tmp_path_factory.mktemp("i3d")), "cpu", 8)


# ----------------------------------------------------------------------------- names
def test_media_metric_names_parse_round_trip_and_validate():
    from suite.config import DataConfig
    from suite.evaluation.registry import metric_group

    video, audio = DataConfig(name="moving-shapes"), DataConfig(name="tones")
    for name, kind, data, group in (("fvd2k_i3d", "fvd", video, "i3d"), ("fvd2k_videomae", "fvd", video, "videomae"),
                                    ("fidframes2k_inception", "fidframes", video, "frames:inception"),
                                    ("fdframes500_dinov2", "fidframes", video, "frames:dinov2"),
                                    ("fad2k_clap-a", "fad", audio, "clap-a"), ("fad10k_clap-m", "fad", audio, "clap-m"),
                                    ("clapscore2k_clap-a", "clapscore", audio, "clap-a")):
        (spec,) = parse_metric(name, 500, "auto")
        assert spec.kind == kind and metric_names(spec.kind, spec.n, spec.extractor) == [name]
        assert metric_group(spec, data) == group
    assert [s.kind for s in parse_metric("fvd", 2000, "i3d")] == ["fvd"]  # short kind, with eval.extractor
    assert metric_group(parse_metric("kid2k_i3d", 500, "auto")[0], video) == "i3d"  # KVD: KID on I3D features
    for bad, data, needle in (("fvd2k_inception", video, "fvd needs a video extractor"), ("fid2k_i3d", video, "fvd2k_i3d"),
                              ("fad2k_i3d", audio, "fad needs an audio extractor"), ("fidframes2k_i3d", video, "image"),
                              ("clapscore2k_inception", audio, "clap-a"), ("fvd2k_auto", video, "video extractor"),
                              ("fvd2k_nonesuch", video, "unknown feature extractor 'nonesuch'"),
                              ("isc2k_videomae", video, "isc is not defined for the video extractor")):
        with pytest.raises(ConfigError, match=needle) as e:
            metric_group(parse_metric(bad, 500, "auto")[0], data)
        assert "\n" not in str(e.value)
    with pytest.raises(SuiteError, match="clean-fid computes only fid and kid"):
        parse_metric("fvd2k_i3d_cleanfid", 500, "auto")


def test_config_validation_and_cli_reject_mismatched_metrics_in_one_line(tmp_path, capsys):
    from suite.cli import main
    from suite.config import load_run_config

    base = ["data.name=moving-shapes", "model.preset=SiT-Nano/2"]
    assert load_run_config("builtin:demo-digits", [*base, "eval.metrics=[fvd2k_i3d, fidframes2k_inception]"]).eval.metrics
    with pytest.raises(ConfigError, match="fvd needs a video extractor"):
        load_run_config("builtin:demo-digits", [*base, "eval.metrics=[fvd2k_inception]"])
    capsys.readouterr()
    rc = main(["config", "builtin:demo-digits", "--set", "data.name=moving-shapes", "--set", "model.preset=SiT-Nano/2",
               "--set", "eval.metrics=[fvd2k_nonesuch]"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "nonesuch" in err and len(err.splitlines()) == 1 and "Traceback" not in err


# ----------------------------------------------------------------------------- FVD
def test_fvd_is_the_frechet_distance_of_i3d_features_zero_on_itself_and_grows_with_shuffled_time(i3d, clips):
    x, _ = clips
    real = i3d.features(x)  # (16, 400)
    assert real.shape == (16, 400) and torch.equal(real, i3d.features(x))  # deterministic
    assert frechet_metric("fvd", "i3d", real, real) == pytest.approx(0.0, abs=1e-6)
    half_a, half_b = real[:8], i3d.features(x[8:])
    assert frechet_metric("fvd", "i3d", half_a, half_b) == pytest.approx(direct_frechet(half_a.double().numpy(), half_b.double().numpy()), rel=1e-4)
    swapped = x[:, :, [1, 0, 2, 3, 4, 5, 6, 7]]  # two frames exchanged
    reversed_ = x.flip(2)  # the whole clip played backwards: the shapes move the other way
    fvd = [frechet_metric("fvd", "i3d", i3d.features(v), real) for v in (x, swapped, reversed_)]
    assert fvd[0] < 1e-6 < fvd[1] < fvd[2]


def test_fit_frames_and_resize_conventions():
    from suite.evaluation.video_features import fit_frames, resize_frames

    v = torch.arange(8).float().view(1, 1, 8, 1, 1).expand(1, 3, 8, 4, 4)
    assert fit_frames(v)[0, 0, :, 0, 0].tolist() == [i // 2 for i in range(16)]  # 8 frames: each twice, in order
    long = torch.arange(20).float().view(1, 1, 20, 1, 1)
    assert fit_frames(long)[0, 0, :, 0, 0].tolist() == list(range(16))  # the first 16
    assert resize_frames(v).shape == (1, 3, 8, 224, 224)


def test_i3d_state_dict_file_loads_into_cdfvd_inceptioni3d(tmp_path, clips):
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    from suite.evaluation.video_features import i3d_extractor

    ext = i3d_extractor(standins.random_i3d_state_dict(tmp_path), "cpu", 2)
    assert isinstance(ext.net.net, InceptionI3d) and not ext.net.scripted
    f = ext.features(clips[0][:2])
    assert f.shape == (2, 400) and torch.isfinite(f).all()


def test_videomae_standin_same_class_architecture_from_state_dict(tmp_path, clips):
    from cdfvd.third_party.VideoMAEv2.videomaev2_finetune import VisionTransformer

    from suite.evaluation.video_features import videomae_extractor

    ext = videomae_extractor(standins.tiny_videomae(tmp_path), "cpu", 4)
    assert isinstance(ext.net.net, VisionTransformer) and ext.net.net.embed_dim == 64 and len(ext.net.net.blocks) == 1
    x = clips[0][:8]
    f = ext.features(x)
    assert f.shape == (8, 64) and torch.equal(f, ext.features(x))
    assert frechet_metric("fvd", "videomae", f[:4], f[4:]) == pytest.approx(direct_frechet(f[:4].double().numpy(), f[4:].double().numpy()), rel=1e-4)


def test_framewise_fid_reads_every_frame_with_the_image_extractor(tmp_path, clips):
    from suite.evaluation.extractors import dinov2_extractor
    from suite.evaluation.video_features import FramewiseExtractor

    image = dinov2_extractor(standins.tiny_dinov2(tmp_path / "dino"), "cpu", 64)
    frames = FramewiseExtractor(image)
    x = clips[0][:6]  # (6, 3, 8, 16, 16)
    f = frames.features(x)  # (48, 32)
    per_frame = image.features(x.permute(0, 2, 1, 3, 4).reshape(48, 3, 16, 16))
    assert f.shape == (48, 32) and frames.rows_per_sample == 8 and torch.allclose(f, per_frame)
    real = frames.features(clips[0][6:12])  # (48, 32)
    value = frechet_metric("fidframes", "dinov2", f, real, rows=8)
    assert metric_names("fidframes", 6, "dinov2") == ["fdframes6_dinov2"]
    assert value == pytest.approx(direct_frechet(f.double().numpy(), real.double().numpy()), rel=1e-4)
    with pytest.raises(SuiteError, match=r"expects video \(B, 3, T, H, W\) uint8"):
        frames.features(clips[0][:2, :, 0])


def test_evaluator_computes_fvd_and_framewise_fid_against_the_dataset(tmp_path, clips):
    from suite.config import load_run_config
    from suite.evaluation.run_eval import Evaluator

    i3d_path = standins.tiny_i3d_torchscript(tmp_path)
    dino = standins.tiny_dinov2(tmp_path / "dino")
    cfg = load_run_config("builtin:demo-digits", [
        "data.name=moving-shapes", "data.image_size=16", "data.frames=8", "data.num_images=64", "model.preset=SiT-Nano/2",
        f"eval.i3d_weights={i3d_path}", f"eval.dinov2_weights={dino}", "eval.batch_size=8",
        "eval.metrics=[fvd16_i3d, fdframes16_dinov2]"])
    ev = Evaluator(cfg, tmp_path / "run", cache_dir=tmp_path / "cache")
    x, y = clips
    out = ev.evaluate_images([(x[:8], y[:8]), (x[8:16], y[8:16])])
    assert set(out) == {"eval/fvd16_i3d", "eval/fdframes16_dinov2"} and all(np.isfinite(v) and v > 0 for v in out.values())
    ref = ev._references["i3d"]
    assert out["eval/fvd16_i3d"] == pytest.approx(direct_frechet(ev._extractors["i3d"].features(x[:16]).double().numpy(),
                                                                  ref.features.double().numpy()), rel=1e-3)


# ----------------------------------------------------------------------------- loaders fail in one line
def test_video_loaders_name_the_missing_file(tmp_path):
    from suite.evaluation.video_features import i3d_extractor, videomae_extractor

    for fn, key in ((i3d_extractor, "eval.i3d_weights"), (videomae_extractor, "eval.videomae_weights")):
        for arg, needle in ((None, "is not set"), (tmp_path / "absent.pt", "absent.pt")):
            with pytest.raises(MissingFileError, match=needle) as e:
                fn(arg)
            assert key in str(e.value) and "\n" not in str(e.value)
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SuiteError, match="cannot read VideoMAE-v2 weights"):
        videomae_extractor(bad)


# ----------------------------------------------------------------------------- CLAP
@pytest.fixture(scope="module")
def clap_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clap")
    text = standins.tiny_roberta(d / "roberta-base")
    return standins.tiny_clap_checkpoint(d / "630k-audioset-best.pt", text), text


@pytest.fixture(scope="module")
def clap(clap_files):
    from suite.evaluation.audio_features import ClapExtractor

    ckpt, text = clap_files
    return ClapExtractor("clap-a", ckpt, 8000, text, "cpu", 8)


@pytest.fixture(scope="module")
def tones():
    from suite.data.audio import make_tones

    return make_tones(6, 4096, 8000, 10, seed=3)  # (6, 1, 4096), labels, captions


def test_clap_standin_runs_laion_clap_itself(clap):
    import laion_clap

    assert isinstance(clap.model, laion_clap.CLAP_Module)
    assert type(clap.model.model.audio_branch).__name__ == "HTSAT_Swin_Transformer"
    assert clap.model.model.text_branch.config.num_hidden_layers == 1  # the stand-in text model, from the local directory


def test_fad_is_the_frechet_distance_of_clap_features_and_grows_with_noise(clap, tones):
    x, _, _ = tones
    real = clap.features(x)  # (6, 512), unit norm
    assert real.shape == (6, 512) and torch.allclose(real.norm(dim=1), torch.ones(6), atol=1e-4)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = [clap.features((x + s * noise).clamp(-1, 1)) for s in (0.05, 0.5)]
    fad = [frechet_metric("fad", "clap-a", f, real) for f in (real, *noisy)]
    assert fad[0] == pytest.approx(0.0, abs=1e-6) and fad[0] < fad[1] < fad[2]
    assert fad[2] == pytest.approx(direct_frechet(noisy[1].double().numpy(), real.double().numpy()), rel=1e-4)


def test_resampling_to_48k_keeps_a_tone():
    from suite.evaluation.audio_features import resample

    t = np.arange(8000) / 8000
    up = resample(np.sin(2 * np.pi * 440 * t)[None], 8000)  # (1, 48000)
    assert up.shape == (1, 48000)
    spectrum = np.abs(np.fft.rfft(up[0]))
    assert abs(np.argmax(spectrum) * 48000 / 48000 - 440) <= 1  # 1 Hz bins over 1 s


def test_clap_score_through_the_evaluator_is_the_mean_caption_cosine(tmp_path, clap_files, tones):
    from suite.config import load_run_config
    from suite.data.audio import TONE_CLASS_CAPTIONS
    from suite.evaluation.run_eval import Evaluator

    ckpt, text = clap_files
    cfg = load_run_config("builtin:demo-digits", [
        "data.name=tones", "data.num_images=16", "model.preset=SiT-Nano/2", f"eval.clap_audio_weights={ckpt}",
        f"eval.clap_text_model={text}", "eval.batch_size=8", "eval.metrics=[fad6_clap-a, clapscore6_clap-a]"])
    ev = Evaluator(cfg, None, cache_dir=tmp_path / "cache")
    x, y, _ = tones
    out = ev.evaluate_images([(x, y)])
    ext = ev._extractors["clap-a"]
    audio, texts = ext.features(x), ext.text_features([TONE_CLASS_CAPTIONS[int(c)] for c in y])
    expected = float((audio.double() * texts.double()).sum(1).mean())
    assert out["eval/clapscore6_clap-a"] == pytest.approx(expected, abs=1e-5) and -1 <= expected <= 1
    assert out["eval/fad6_clap-a"] > 0


def test_clap_loaders_name_the_missing_file(tmp_path, clap_files):
    from suite.evaluation.audio_features import ClapExtractor, text_model_dir

    ckpt, text = clap_files
    for arg, needle in ((None, "eval.clap_audio_weights is not set"), (tmp_path / "absent.pt", "absent.pt")):
        with pytest.raises(MissingFileError, match=needle) as e:
            ClapExtractor("clap-a", arg, 8000, text)
        assert "630k-audioset-best.pt" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MissingFileError, match="eval.clap_music_weights"):
        ClapExtractor("clap-m", None, 8000, text)
    with pytest.raises(MissingFileError, match="config.json"):
        text_model_dir(tmp_path)
    with pytest.raises(MissingFileError, match="roberta-base not in the Hugging Face cache") as e:
        text_model_dir(None, hub_cache=str(tmp_path / "empty-hub"))
    assert "\n" not in str(e.value)
    with pytest.raises(SuiteError, match="needs audio data"):
        ClapExtractor("clap-a", ckpt, None, text)


def test_clap_text_model_found_in_a_prefilled_hub_cache(tmp_path, clap_files):
    import shutil

    from suite.evaluation.audio_features import text_model_dir

    _, text = clap_files
    snap = tmp_path / "hub" / "models--roberta-base" / "snapshots" / "0123abc"
    shutil.copytree(text, snap)
    (tmp_path / "hub" / "models--roberta-base" / "refs").mkdir()
    (tmp_path / "hub" / "models--roberta-base" / "refs" / "main").write_text("0123abc")
    assert text_model_dir(None, hub_cache=str(tmp_path / "hub")) == snap


# ----------------------------------------------------------------------------- `suite eval` end to end
def test_suite_eval_fvd_on_a_trained_video_run_and_one_line_for_missing_weights(tmp_path, capsys):
    from suite.cli import main
    from suite.config import load_run_config
    from suite.train import train

    cfg = load_run_config("builtin:demo-moving-shapes", [
        f"train.runs_root={tmp_path / 'runs'}", "name=video", "data.num_images=64", "train.total_images=32",
        "train.batch_size=16", "train.log_every_images=16", "train.ckpt_every_images=32", "train.threads=1",
        "train.progress=false", "train.val_images=16", "sampling.steps=2", "tracking.enabled=false"])
    run_dir = train(cfg).run_dir
    i3d_path = standins.tiny_i3d_torchscript(tmp_path)
    capsys.readouterr()
    rc = main(["eval", str(run_dir), "--n", "8", "--metrics", "fvd8_i3d", "--no-log", "--set", f"eval.i3d_weights={tmp_path / 'none.pt'}",
               "--set", f"eval.cache_dir={tmp_path / 'cache'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.pt" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    rc = main(["eval", str(run_dir), "--n", "8", "--metrics", "fvd8_i3d", "--no-log", "--set", f"eval.i3d_weights={i3d_path}",
               "--set", "eval.batch_size=8", "--set", f"eval.cache_dir={tmp_path / 'cache'}"])
    out = capsys.readouterr().out
    assert rc == 0 and "eval/fvd8_i3d" in out


def test_videomae_architecture_rule_rebuilds_the_released_vit_g():
    """On the meta device (no memory): the shapes of cd-fvd's ViT-g (the released SSv2 model)
    give back the same architecture, key for key and shape for shape."""
    from functools import partial

    from cdfvd.third_party.VideoMAEv2.videomaev2_finetune import VisionTransformer, vit_giant_patch14_224

    from suite.evaluation.video_features import videomae_arch

    cpu_linspace = torch.linspace  # the class reads its drop-path schedule with .item(), which meta tensors refuse
    with torch.device("meta"), mock.patch.object(torch, "linspace", lambda *a, **k: cpu_linspace(*a, **{**k, "device": "cpu"})), \
         mock.patch("cdfvd.third_party.VideoMAEv2.videomaev2_finetune.get_sinusoid_encoding_table",
                    lambda n, d: torch.zeros(1, n, d)):  # a fixed table, not in the state dict; slow in pure Python at ViT-g size
        released = vit_giant_patch14_224(img_size=224, pretrained=False, num_classes=174, all_frames=16, tubelet_size=2,
                                         use_mean_pooling=True).state_dict()
        arch = videomae_arch(released)
        rebuilt = VisionTransformer(norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **arch).state_dict()
    assert arch["num_heads"] == 16 and arch["depth"] == 40 and arch["embed_dim"] == 1408 and arch["num_classes"] == 174
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in released.items()}
