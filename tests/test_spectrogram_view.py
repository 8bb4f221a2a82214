"""`data.audio_view: spectrogram`: tones as log-magnitude spectrograms for the generator, waveforms
(Griffin-Lim) for everything that listens; one-line errors where the view cannot apply."""
import pytest
import torch

from suite.config import DataConfig, load_run_config
from suite.data import build_dataset, describe_dataset, media_decoder
from suite.data.audio import make_tones
from suite.data.spectrogram import LOG_FLOOR, LOG_RANGE, SpectrogramView
from suite.errors import ConfigError
from suite.evaluation.domain_classifier import ClassifierRecipe, accuracy, train_classifier
from suite.evaluation.images import load_split


def test_view_is_the_log_magnitude_of_the_stft():
    view = SpectrogramView(length=1024)
    t = torch.arange(1024) / 8000.0
    bin_ = 10  # a sine exactly on bin 10 of a 128-point FFT at 8 kHz: 625 Hz
    wave = (0.5 * torch.sin(2 * torch.pi * bin_ * 8000 / 128 * t)).view(1, 1, -1)
    spec = view.encode(wave)  # (1, 64, 16)
    assert spec.shape == (1, 64, 16) == (1, *view.shape) and spec.min() >= -1 and spec.max() <= 1
    assert (spec[0, :, 2:-2].argmax(0) == bin_).all()  # every interior frame peaks at the tone's bin (edges: padding)
    # a Hann-windowed sine of amplitude a on a bin has |X| = a · n_fft / 4 there
    expected = torch.log(torch.tensor(0.5 * 128 / 4 + LOG_FLOOR)) / LOG_RANGE
    assert abs(spec[0, bin_, 2:-2].mean() - expected) < 0.01
    assert spec[0, 50, 2:-2].max() < -0.5  # far from the tone: near silence


def test_griffin_lim_gives_back_the_spectrogram_and_the_loudness():
    x, _, _ = make_tones(8, 2048, 8000, 10, seed=0)  # (8, 1, 2048)
    view = SpectrogramView(length=2048)
    spec = view.encode(x)
    wave = view.decode(spec)
    assert wave.shape == x.shape and wave.abs().max() <= 1
    assert (view.encode(wave) - spec).abs().mean() < 0.08  # magnitudes kept, phase re-estimated
    assert torch.allclose(wave.pow(2).mean(), x.pow(2).mean(), rtol=0.15)
    assert torch.equal(view.decode(spec), wave)  # a fixed-seed initial phase: deterministic


def test_spectrogram_tones_keep_waveform_pixels_labels_and_captions():
    cfg = DataConfig(name="tones", num_images=200, audio_length=2048, audio_view="spectrogram")
    ds, raw = build_dataset(cfg, "all"), build_dataset(DataConfig(name="tones", num_images=200, audio_length=2048), "all")
    assert describe_dataset(cfg) == ((64, 32), 10) and ds.image_shape == (64, 32) and ds.pixel_shape == (1, 2048)
    item, ref = ds[5], raw[5]
    assert item["x0"].shape == (64, 32) and torch.equal(item["pixels"], ref["pixels"])
    assert item["y"] == ref["y"] and item["caption"] == ref["caption"] and ds.kind == "audio" and ds.rate == 8000
    torch.testing.assert_close(item["x0"], SpectrogramView(2048).encode(ref["x0"][None])[0])
    assert media_decoder(cfg).to_pixels(item["x0"][None]).shape == (1, 1, 2048)
    assert media_decoder(DataConfig(name="tones")) is None


def test_decoded_real_spectrograms_are_classified_as_their_class():
    """Griffin-Lim keeps what the domain classifier (trained on real waveforms) listens to."""
    cfg = DataConfig(name="tones", num_images=800, audio_length=2048)
    (x_tr, y_tr), (x_te, y_te) = load_split(cfg, "train"), load_split(cfg, "test")
    net = train_classifier(x_tr, y_tr, 10, ClassifierRecipe(width=16, feature_dim=32, steps=150, batch_size=64))
    view = SpectrogramView(length=2048)
    decoded = view.decode(view.encode(x_te))
    assert accuracy(net, x_te, y_te) > 0.4 and accuracy(net, decoded, y_te) > accuracy(net, x_te, y_te) - 0.2


@pytest.mark.parametrize("over, message", [
    ({"data.name": "shapes"}, "data.audio_view: the spectrogram view is for the built-in tones and tones-text, not 'shapes'"),
    ({"data.name": "tones", "data.audio_length": 1000}, "data.audio_length: the spectrogram view needs a multiple of 64"),
])
def test_view_where_it_cannot_apply_is_one_line(tiny_cfg, over, message):
    with pytest.raises(ConfigError) as e:
        load_run_config(tiny_cfg(**{"data.audio_view": "spectrogram", **over}))
    assert str(e.value).startswith(message)


def test_spectrogram_run_trains_evaluates_and_writes_wav(tiny_cfg, tmp_path):
    from suite.cli import main
    from suite.train import train

    over = {"data.name": "tones", "data.num_images": 200, "data.audio_length": 1024, "data.audio_view": "spectrogram",
            "model.patch_size": 2, "train.total_images": 128, "eval.metrics": ["fd", "class_consistency"],
            "eval.n_samples": 32, "eval.batch_size": 32, "eval.classifier_steps": 10,
            "eval.cache_dir": str(tmp_path / "cache"), "tracking.enabled": False}
    run = train(load_run_config(tiny_cfg(name="spec", **over)))
    m = run.final_metrics
    assert 0 <= m["eval/class_consistency32"] <= 1 and m["eval/fd32_tones-classifier"] == m["eval/fd32_tones-classifier"]
    assert {p.suffix for p in (run.run_dir / "samples").iterdir()} == {".wav", ".png"}
    assert main(["sample", str(run.run_dir), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*_class*.wav"))) == 2
