"""REPA on video and audio, and real video/audio as latents.

- Token grids of any rank are resampled in one place (closed forms); audio resampling keeps a tone.
- V-JEPA 2 and HuBERT / wav2vec 2.0 / data2vec-audio load through the registry from tiny random
  stand-ins of the same transformers classes, saved to a temporary directory; missing weights are
  one line naming the file.
- `suite encoder train` on moving-shapes and tones, and REPA runs (the normal config → trainer
  path) aligned to those local encoders and to the stand-ins.
- `suite data encode` of GIF / WAV folders (written from the built-in generators) with tiny random
  AutoencoderKLWan / AutoencoderOobleck, training on the latents, decoded samples, and `suite eval`
  computing FVD / FAD-CLAP on the decoded samples of those latent runs.
"""
import json
import wave

import numpy as np
import pytest
import torch

from baselines.encoders import load_encoder, resample_tokens
from suite.cli import main
from suite.errors import ConfigError, MissingFileError

T = pytest.importorskip("transformers")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
AUDIO_TINY = dict(**TINY, intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
AUDIO_CLASSES = {"hubert-base": (T.HubertModel, T.HubertConfig), "wav2vec2-base": (T.Wav2Vec2Model, T.Wav2Vec2Config),
                 "data2vec-audio-base": (T.Data2VecAudioModel, T.Data2VecAudioConfig)}


def _vjepa2_standin(path):
    torch.manual_seed(0)
    cfg = T.VJEPA2Config(crop_size=32, patch_size=16, frames_per_clip=4, tubelet_size=2, mlp_ratio=2.0, pred_hidden_size=32,
                         pred_num_attention_heads=2, pred_num_hidden_layers=1, num_pooler_layers=1, **TINY)
    T.VJEPA2Model(cfg).save_pretrained(str(path))
    return str(path)


def _audio_standin(name, path):
    torch.manual_seed(0)
    model_cls, cfg_cls = AUDIO_CLASSES[name]
    model_cls(cfg_cls(**AUDIO_TINY)).save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    d = tmp_path_factory.mktemp("media-standins")
    return {"vjepa2": _vjepa2_standin(d / "vjepa2"), "hubert": _audio_standin("hubert-base", d / "hubert")}


# ----------------------------------------------------------------------------- resampling
def test_resample_tokens_3d_and_1d_closed_forms():
    # (t, h, w) = (2, 4, 4) → (1, 2, 2): the mean of each 2×2×2 block
    g = torch.arange(32.0).view(2, 4, 4)
    down = resample_tokens(g.flatten()[None, :, None], (1, 2, 2), (2, 4, 4))
    want = g.view(1, 2, 2, 2, 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, 2, 2, 8).mean(-1).flatten()
    torch.testing.assert_close(down[0, :, 0], want)
    # growing in time, shrinking in space, at once: a ramp along time stays a ramp; space is averaged
    ramp = torch.arange(2.0).view(2, 1, 1).expand(2, 4, 4).reshape(1, 32, 1)
    mixed = resample_tokens(ramp, (4, 2, 2), (2, 4, 4)).view(4, 2, 2)
    torch.testing.assert_close(mixed[:, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))  # linear, half-pixel centres
    # 1-D audio frames: 6 → 3 pairs averaged
    seq = torch.arange(6.0)[None, :, None]
    torch.testing.assert_close(resample_tokens(seq, (3,), (6,))[0, :, 0], torch.tensor([0.5, 2.5, 4.5]))
    with pytest.raises(Exception, match="modalities differ"):
        resample_tokens(seq, (2, 3), (6,))


def test_resample_audio_keeps_a_tone_band_limited():
    from suite.data.resample import resample_audio

    t8, t16 = torch.arange(4000) / 8000, torch.arange(8000) / 16000
    x = torch.sin(2 * torch.pi * 440 * t8)[None, None]  # 440 Hz, 50 whole periods
    torch.testing.assert_close(resample_audio(x, 8000, 16000)[0, 0], torch.sin(2 * torch.pi * 440 * t16), atol=1e-3, rtol=0)
    hi = torch.sin(2 * torch.pi * 6000 * t16)[None]  # above the 4 kHz Nyquist of 8 kHz: removed
    assert resample_audio(hi, 16000, 8000).abs().max() < 1e-3


# ----------------------------------------------------------------------------- HF encoders
def test_vjepa2_standin_tokens_on_a_tubelet_grid(standins):
    enc = load_encoder("vjepa2-vitl-fpc64-256", path=standins["vjepa2"])
    assert enc.modality == "video" and enc.embed_dim == 32 and not any(p.requires_grad for p in enc.parameters())
    clips = torch.rand(2, 3, 7, 16, 16) * 2 - 1  # 7 frames: padded to 8 = 4 tubelets of 2
    tokens, grid = enc.encode(clips)
    assert grid == (4, 2, 2) and tokens.shape == (2, 16, 32)  # 32² input (the stand-in's crop size) / 16
    ref = enc.model(pixel_values_videos=enc.preprocess(clips), skip_predictor=True).last_hidden_state
    torch.testing.assert_close(tokens, ref)
    assert resample_tokens(tokens, (8, 4, 4), grid).shape == (2, 128, 32)
    with pytest.raises(Exception, match=r"expected video \(B, 3, T, H, W\)"):
        enc.encode(torch.zeros(2, 3, 16, 16))


@pytest.mark.parametrize("name", list(AUDIO_CLASSES))
def test_audio_standins_frames_at_16khz(name, tmp_path):
    enc = load_encoder(name, path=_audio_standin(name, tmp_path / name))
    assert enc.modality == "audio" and enc.embed_dim == 32
    enc.input_rate = 8000.0
    tokens, grid = enc.encode(torch.rand(2, 1, 4096) * 2 - 1)  # 0.5 s at 8 kHz → 8192 samples at 16 kHz
    x = enc.preprocess(torch.rand(2, 1, 4096) * 2 - 1)
    assert x.shape == (2, 8192)
    assert grid == (tokens.shape[1],) and tokens.shape[0] == 2 and tokens.shape[1] == 408  # the stand-in's conv strides 5·4


def test_missing_media_encoder_weights_name_the_file(tmp_path):
    for name in ("vjepa2-vitl-fpc64-256", "hubert-base", "wav2vec2-base", "data2vec-audio-base"):
        with pytest.raises(MissingFileError, match=r"config\.json") as e:
            load_encoder(name, path=str(tmp_path / "nothing"))
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- REPA runs
def _media_run(tmp_path, tiny_cfg, dataset, encoder, **over):
    data = ({"name": "moving-shapes", "image_size": 16, "frames": 8, "num_images": 48} if dataset == "moving-shapes"
            else {"name": "tones", "audio_length": 4096, "sample_rate": 8000, "num_images": 48})
    patch = 4 if dataset == "moving-shapes" else 64
    return tiny_cfg(**{"name": f"repa-{dataset}", "data": data, "model.patch_size": patch,
                       "method": {"name": "repa", "encoders": [encoder], "projector_hidden": 32},
                       "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "train.total_images": 48,
                       "train.batch_size": 16, "train.val_images": 16, "train.log_every_images": 16, **over})


def _rep_losses(res):
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss_rep"] for r in rows if "train/loss_rep" in r]


@pytest.mark.parametrize("dataset", ["moving-shapes", "tones"])
def test_encoder_train_on_media_and_repa_aligns_to_it(dataset, tiny_cfg, tmp_path):
    from suite.config import load_run_config
    from suite.train import train

    out = tmp_path / f"enc-{dataset}"
    assert main(["encoder", "train", "--dataset", dataset, "--kind", "ssl", "--out", str(out), "--steps", "6",
                 "--batch-size", "16", "--num-images", "200", "--embed-dim", "16", "--depth", "1", "--num-heads", "2", "--threads", "1"]) == 0
    meta = json.loads((out / "encoder.json").read_text())
    enc = load_encoder("local", path=str(out))
    assert meta["modality"] == enc.modality == ("video" if dataset == "moving-shapes" else "audio")
    assert enc.grid == ((8, 4, 4) if dataset == "moving-shapes" else (64,))  # the demo generators' token grids
    res = train(load_run_config(_media_run(tmp_path, tiny_cfg, dataset, {"name": "local", "path": str(out)})))
    rep = _rep_losses(res)
    assert res.status == "finished" and len(rep) == 3 and all(-1 <= v <= 1 for v in rep)


@pytest.mark.parametrize("dataset", ["moving-shapes", "tones"])
def test_repa_with_standin_video_and_audio_encoders(dataset, standins, tiny_cfg, tmp_path):
    from suite.config import load_run_config
    from suite.train import train

    spec = ({"name": "vjepa2-vitl-fpc64-256", "path": standins["vjepa2"]} if dataset == "moving-shapes"
            else {"name": "hubert-base", "path": standins["hubert"]})
    cfg = load_run_config(_media_run(tmp_path, tiny_cfg, dataset, spec))
    if dataset == "tones":
        assert cfg.method.encoders[0].input_rate == 8000  # the data's sample rate, recorded in the resolved config
    res = train(cfg)
    assert res.status == "finished" and len(_rep_losses(res)) == 3


def test_repa_refuses_an_encoder_of_another_modality(standins, tiny_cfg, tmp_path):
    from suite.config import load_run_config
    from suite.train import train

    cfg = load_run_config(_media_run(tmp_path, tiny_cfg, "tones", {"name": "vjepa2-vitl-fpc64-256", "path": standins["vjepa2"]}))
    with pytest.raises(ConfigError, match=r"method.encoders\[0\].name: vjepa2-vitl-fpc64-256 is a video encoder; this run's data is audio"):
        train(cfg)


# ----------------------------------------------------------------------------- real media → latents
def _write_gifs(root, n=4, frames=5, size=16):
    from PIL import Image

    from suite.data.video import make_moving_shapes

    clips, labels, _ = make_moving_shapes(n, frames, size, 2, seed=0)
    for i, (clip, y) in enumerate(zip(clips, labels)):
        d = root / f"class{int(y)}"
        d.mkdir(parents=True, exist_ok=True)
        rgb = ((clip.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()  # (T, H, W, 3)
        imgs = [Image.fromarray(f) for f in rgb]
        imgs[0].save(d / f"{i}.gif", save_all=True, append_images=imgs[1:], duration=125, loop=0)
    return clips, labels


def _write_wavs(root, n=4, length=1024, rate=8000):
    from suite.data.audio import make_tones
    from suite.media import wav_bytes

    waves, labels, _ = make_tones(n, length, rate, 2, seed=0)
    for i, (x, y) in enumerate(zip(waves, labels)):
        d = root / f"class{int(y)}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.wav").write_bytes(wav_bytes(x, rate))
    return waves, labels


def _latent_run(tmp_path, tiny_cfg, lat, vae, patch, name="latents"):
    from suite.config import load_run_config
    from suite.train import train

    d = tiny_cfg(**{"name": name, "data": {"name": "latents", "root": str(lat), "vae": str(vae), "test_fraction": 0.25},
                    "model.patch_size": patch, "method": {"name": "vanilla"},
                    "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "train.total_images": 8, "train.batch_size": 4,
                    "train.val_images": 4, "train.log_every_images": 4, "sampling.steps": 2})
    return train(load_run_config(d))


def test_video_folder_to_wan_latents_train_and_decode(tmp_path, tiny_cfg):
    from diffusers import AutoencoderKLWan
    from PIL import Image

    from suite.data import clip_rate
    from suite.config import DataConfig

    clips, labels = _write_gifs(tmp_path / "videos")
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                     latents_mean=[0.1, 0.2, -0.1, 0.0], latents_std=[1.5, 2.0, 1.0, 0.5],
                     scale_factor_temporal=2, scale_factor_spatial=2).save_pretrained(tmp_path / "wan")
    assert main(["data", "encode", "--folder", str(tmp_path / "videos"), "--vae", str(tmp_path / "wan"), "--out", str(tmp_path / "lat"),
                 "--image-size", "16", "--frames", "5", "--batch-size", "2"]) == 0
    shard = torch.load(tmp_path / "lat" / "shard-00000.pt", weights_only=True)
    meta = shard["meta"]
    assert meta["modality"] == "video" and meta["vae_class"] == "AutoencoderKLWan" and meta["rate"] == pytest.approx(8.0, rel=0.05)  # GIF stores centiseconds: 120 ms
    assert meta["latent_scale"] == pytest.approx([1 / 1.5, 0.5, 1.0, 2.0]) and meta["latent_shift"] == pytest.approx([0.1, 0.2, -0.1, 0.0])
    assert shard["latents"].shape == (4, 4, 3, 8, 8) and shard["pixels"].dtype == torch.uint8
    order = [int(p.stem) for c in sorted((tmp_path / "videos").iterdir()) for p in sorted(c.iterdir())]  # the folder's order
    torch.testing.assert_close(shard["pixels"].float() / 127.5 - 1, clips[order], atol=2 / 127.5, rtol=0)  # GIF palette ≈ lossless here
    assert clip_rate(DataConfig(name="latents", root=str(tmp_path / "lat"))) == meta["rate"]
    res = _latent_run(tmp_path, tiny_cfg, tmp_path / "lat", tmp_path / "wan", 2)
    assert res.status == "finished"
    gif = res.run_dir / "samples" / "grid-0000000008.gif"
    with Image.open(gif) as im:
        assert im.n_frames == 5  # decoded by the WAN VAE the shards name: 3 latent frames → 5 frames


def test_audio_folder_to_oobleck_latents_train_and_decode(tmp_path, tiny_cfg):
    from diffusers import AutoencoderOobleck

    from suite.media import read_wav

    waves, labels = _write_wavs(tmp_path / "wavs")  # 1024 samples at 8 kHz
    torch.manual_seed(0)
    AutoencoderOobleck(encoder_hidden_size=8, downsampling_ratios=[2, 4], channel_multiples=[1, 2], decoder_channels=8,
                       decoder_input_channels=4, audio_channels=2, sampling_rate=16000).save_pretrained(tmp_path / "oobleck")
    assert main(["data", "encode", "--folder", str(tmp_path / "wavs"), "--vae", str(tmp_path / "oobleck"), "--out", str(tmp_path / "lat"),
                 "--audio-length", "2048"]) == 0
    shard = torch.load(tmp_path / "lat" / "shard-00000.pt", weights_only=True)
    meta = shard["meta"]
    assert meta["modality"] == "audio" and meta["vae_class"] == "AutoencoderOobleck" and meta["rate"] == 16000
    assert shard["latents"].shape == (4, 4, 256) and shard["pixels"].shape == (4, 1, 2048) and shard["pixels"].dtype == torch.int16
    # the stored waveform is the 8 kHz clip resampled to the VAE's 16 kHz: every other sample is the original
    order = [int(p.stem) for c in sorted((tmp_path / "wavs").iterdir()) for p in sorted(c.iterdir())]
    torch.testing.assert_close(shard["pixels"][:, 0, ::2].float() / 32767, waves[order, 0], atol=2e-3, rtol=0)
    from suite.config import DataConfig
    from suite.data import build_dataset

    lat = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), vae=str(tmp_path / "oobleck")), "all")
    assert lat.to_pixels(lat[0]["x0"][None]).shape == (1, 1, 2048)  # decoded to mono at the VAE's rate
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    wrong = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), vae=str(tmp_path / "other")), "all")
    with pytest.raises(ConfigError, match="is an AutoencoderKL, but the latents were encoded with an AutoencoderOobleck"):
        wrong.to_pixels(lat[0]["x0"][None])
    res = _latent_run(tmp_path, tiny_cfg, tmp_path / "lat", tmp_path / "oobleck", 16)
    assert res.status == "finished"
    samples, rate = read_wav(res.run_dir / "samples" / "grid-0000000008.wav")
    assert rate == 16000 and samples.size >= 2048  # decoded by the Oobleck VAE, written at its rate


def test_suite_eval_decodes_latent_video_and_audio_runs_for_fvd_and_fad(tmp_path, tiny_cfg):
    """Latent runs reach the video/audio metrics: samples decode through the VAE the shards name
    (WAN → clips, Oobleck → waveforms at its rate) and the reference is the shards' stored media."""
    import json as _json

    from diffusers import AutoencoderKLWan, AutoencoderOobleck

    from suite.evaluation import standins

    _write_gifs(tmp_path / "videos", n=8)
    _write_wavs(tmp_path / "wavs", n=8)
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
                     scale_factor_temporal=2, scale_factor_spatial=2).save_pretrained(tmp_path / "wan")
    AutoencoderOobleck(encoder_hidden_size=8, downsampling_ratios=[2, 4], channel_multiples=[1, 2], decoder_channels=8,
                       decoder_input_channels=4, audio_channels=1, sampling_rate=16000).save_pretrained(tmp_path / "oobleck")
    assert main(["data", "encode", "--folder", str(tmp_path / "videos"), "--vae", str(tmp_path / "wan"), "--out",
                 str(tmp_path / "vlat"), "--image-size", "16", "--frames", "5", "--batch-size", "4"]) == 0
    assert main(["data", "encode", "--folder", str(tmp_path / "wavs"), "--vae", str(tmp_path / "oobleck"), "--out",
                 str(tmp_path / "alat"), "--audio-length", "2048"]) == 0
    i3d = standins.tiny_i3d_torchscript(tmp_path / "i3d")
    text = standins.tiny_roberta(tmp_path / "roberta-base")
    clap = standins.tiny_clap_checkpoint(tmp_path / "630k-audioset-best.pt", text)
    cases = {"fvd4_i3d": (tmp_path / "vlat", tmp_path / "wan", 2, [f"eval.i3d_weights={i3d}"]),
             "fad4_clap-a": (tmp_path / "alat", tmp_path / "oobleck", 16,
                             [f"eval.clap_audio_weights={clap}", f"eval.clap_text_model={text}"])}
    for metric, (lat, vae, patch, weights) in cases.items():
        run_dir = _latent_run(tmp_path, tiny_cfg, lat, vae, patch, name=metric.split("_")[0]).run_dir
        sets = [a for w in [*weights, "eval.batch_size=4", f"eval.cache_dir={tmp_path / 'cache'}"] for a in ("--set", w)]
        assert main(["eval", str(run_dir), "--n", "4", "--metrics", metric, "--no-log", *sets]) == 0
        record = _json.loads(sorted((run_dir / "eval").glob("eval-*.json"))[-1].read_text())
        value = record["metrics"][f"eval/{metric}"]
        assert np.isfinite(value) and value >= 0


def test_vae_kind_is_read_from_the_directory(tmp_path):
    from suite.data.vae import load_vae, vae_class_name

    with pytest.raises(MissingFileError, match=r"nope/config\.json"):
        load_vae(str(tmp_path / "nope"))
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(ConfigError, match="UNet2DModel"):
        vae_class_name(str(tmp_path / "odd"))
    assert vae_class_name(str(tmp_path / "odd"), "audio") == "AutoencoderOobleck"  # an explicit kind wins


def test_media_folder_readers(tmp_path):
    from suite.data.media_files import AudioFolderDataset, read_audio

    rate = 8000
    x = (np.sin(2 * np.pi * 500 * np.arange(800) / rate) * 0.5).astype(np.float32)
    stereo = np.stack([x, -x], 1)  # (L, 2)
    (tmp_path / "a" / "c0").mkdir(parents=True)
    with wave.open(str(tmp_path / "a" / "c0" / "s.wav"), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((stereo * 32767).round().astype("<i2").tobytes())
    y, r = read_audio(tmp_path / "a" / "c0" / "s.wav")
    assert r == rate and y.shape == (2, 800)
    np.testing.assert_allclose(y[1], -x, atol=1e-4)
    ds = AudioFolderDataset(str(tmp_path / "a"), length=1000, rate=rate, channels=2)
    item = ds[0]["pixels"]
    assert item.shape == (2, 1000) and item[:, 800:].abs().max() == 0  # padded with silence
    with pytest.raises(MissingFileError, match="no audio files"):
        AudioFolderDataset(str(tmp_path / "a" / "c0"), 10, rate)  # files but no class folders


def test_mp4_and_flac_folders_read_through_pyav_and_soundfile(tmp_path):
    """Real datasets ship MP4 and FLAC: an H.264 clip of moving shapes and a 16-bit FLAC tone come
    back as the frames / samples written (H.264 is lossy: close, not equal; FLAC is lossless)."""
    av = pytest.importorskip("av")
    soundfile = pytest.importorskip("soundfile")
    from suite.data.media_files import AudioFolderDataset, VideoFolderDataset, read_audio, read_video
    from suite.data.video import make_moving_shapes

    clips, _, _ = make_moving_shapes(1, 12, 32, 2, seed=0)
    rgb = ((clips[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()  # (T, H, W, 3)
    (tmp_path / "v" / "c0").mkdir(parents=True)
    with av.open(str(tmp_path / "v" / "c0" / "clip.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=8, options={"crf": "0"})  # lossless in luma; chroma subsampled
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv444p"
        for f in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    frames, fps = read_video(tmp_path / "v" / "c0" / "clip.mp4")
    assert frames.shape == rgb.shape and fps == pytest.approx(8.0)
    assert np.abs(frames.astype(int) - rgb.astype(int)).mean() < 3  # RGB↔YUV rounding only
    assert read_video(tmp_path / "v" / "c0" / "clip.mp4", max_frames=5)[0].shape[0] == 5
    ds = VideoFolderDataset(str(tmp_path / "v"), frames=8, size=16)
    assert ds.rate == pytest.approx(8.0) and ds[0]["pixels"].shape == (3, 8, 16, 16)

    rate = 16000
    x = (np.sin(2 * np.pi * 440 * np.arange(4000) / rate) * 0.5).astype(np.float32)
    (tmp_path / "a" / "c0").mkdir(parents=True)
    soundfile.write(str(tmp_path / "a" / "c0" / "tone.flac"), x, rate, subtype="PCM_16")
    y, r = read_audio(tmp_path / "a" / "c0" / "tone.flac")
    assert r == rate and y.shape == (1, 4000)
    np.testing.assert_allclose(y[0], x, atol=1 / 32768 + 1e-6)
    assert AudioFolderDataset(str(tmp_path / "a"), length=2000, rate=8000)[0]["pixels"].shape == (1, 2000)
