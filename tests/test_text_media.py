"""Captioned built-in video and audio (moving-shapes-text, tones-text): captions, held-out
combinations, the spectrogram view, attribute judges, training, and the quick text demos."""
import json

import pytest
import torch

from suite.config import DataConfig, load_run_config
from suite.data import build_dataset, collate, describe_dataset
from suite.data.caption_schemes import caption_scheme
from suite.errors import ConfigError, SuiteError
from suite.evaluation.caption_consistency import caption_consistency, judge_training_set, train_attribute_classifier

VIDEO = dict(name="moving-shapes-text", image_size=16, frames=8)
AUDIO = dict(name="tones-text", audio_length=4096, sample_rate=8000, audio_view="spectrogram")


@pytest.mark.parametrize("data, example_shape, caption_len", [(VIDEO, (3, 8, 16, 16), 5), (AUDIO, (64, 64), 6)])
def test_captions_round_trip_and_unseen_pairs_are_held_out(data, example_shape, caption_len):
    cfg = DataConfig(num_images=400, **data)
    train, unseen = build_dataset(cfg, "train"), build_dataset(cfg, "unseen")
    scheme = caption_scheme(cfg.name)
    batch = collate([train[i] for i in range(4)])
    assert batch["x0"].shape == (4, *example_shape) and batch["y"].shape == (4, caption_len) and batch["y"].dtype == torch.long
    assert train.condition == unseen.condition == "text" and train.num_classes == scheme.null_token == len(scheme.vocab)
    assert describe_dataset(cfg) == (example_shape, scheme.null_token)
    a, b = scheme.pair
    pair = lambda ds, i: tuple(scheme.attributes[k][int(ds.attributes[i, list(scheme.attributes).index(k)])] for k in (a, b))  # noqa: E731
    seen_pairs = {pair(train.dataset, i) for i in train.indices}
    unseen_pairs = {pair(unseen, i) for i in range(len(unseen))}
    assert not seen_pairs & set(scheme.unseen_pairs) and unseen_pairs == set(scheme.unseen_pairs)
    assert {x for x, _ in seen_pairs} == set(scheme.attributes[a]) and {y for _, y in seen_pairs} == set(scheme.attributes[b])
    for i in range(8):  # captions and attributes say the same thing
        attrs = {k: v[int(train.dataset.attributes[i, j])] for j, (k, v) in enumerate(scheme.attributes.items())}
        assert scheme.detokenize(train.dataset.captions[i]) == scheme.caption(attrs)
    with pytest.raises(SuiteError, match="unknown words"):
        scheme.tokenize("a purple ring")


def test_unseen_split_and_spectrogram_view_refuse_other_data_in_one_line():
    with pytest.raises(ConfigError, match="captioned built-ins"):
        build_dataset(DataConfig(name="moving-shapes"), "unseen")
    with pytest.raises(ConfigError, match="no built-in caption vocabulary"):
        caption_scheme("tones")


def _judge_on_real(cfg, n_judge, steps):
    test, unseen = build_dataset(cfg, "test"), build_dataset(cfg, "unseen")
    full = test.dataset
    judge = train_attribute_classifier(*judge_training_set(cfg, n_judge, seed=1), steps=steps, batch_size=64, scheme=full.scheme)
    g = torch.Generator().manual_seed(0)
    shuffled = full.attributes[test.indices][torch.randperm(len(test.indices), generator=g)]
    return judge, test, unseen, full, shuffled


def test_video_judge_is_near_one_on_real_captions_and_chance_when_shuffled():
    cfg = DataConfig(num_images=1000, **VIDEO)
    judge, test, unseen, full, shuffled = _judge_on_real(cfg, 1500, 250)
    real = caption_consistency(judge, full.images[test.indices], full.attributes[test.indices])
    real_unseen = caption_consistency(judge, unseen.images, unseen.attributes)
    fake, chance = caption_consistency(judge, full.images[test.indices], shuffled), full.scheme.chance_levels()
    assert real["all"] >= 0.9 and real_unseen["all"] >= 0.9, (real, real_unseen)  # measured 0.98 / 0.96
    for k in chance:
        assert fake[k] < chance[k] + 0.1, (k, fake, chance)


def test_audio_judge_is_near_one_on_real_clips_through_the_spectrogram_view_and_griffin_lim():
    cfg = DataConfig(num_images=600, **AUDIO)
    judge, test, unseen, full, shuffled = _judge_on_real(cfg, 800, 100)
    decoded = full.to_pixels(full.views[test.indices])  # what a generated spectrogram is judged as: (n, 1, L)
    real = caption_consistency(judge, decoded, full.attributes[test.indices])
    real_unseen = caption_consistency(judge, unseen.to_pixels(unseen.views), unseen.attributes)
    fake, chance = caption_consistency(judge, decoded, shuffled), full.scheme.chance_levels()
    assert real["all"] >= 0.9 and real_unseen["all"] >= 0.9, (real, real_unseen)  # measured 0.95 / 0.97 (1500 clips, 250 steps: 0.995 / 0.988)
    for k in chance:
        assert fake[k] < chance[k] + 0.1, (k, fake, chance)


@pytest.mark.parametrize("method", ["vanilla", "selfflow"])
@pytest.mark.parametrize("data", [{**VIDEO, "image_size": 8, "frames": 4, "num_images": 200},
                                  {**AUDIO, "audio_length": 1024, "num_images": 200}])
def test_methods_train_on_captioned_video_and_audio(method, data, tiny_cfg):
    from suite.train import train

    patch = 4 if data["name"] == "moving-shapes-text" else 1
    cfg = tiny_cfg(name=f"{method}-{data['name']}", data=data, method={"name": method},
                   model={"backbone": "mmdit", "preset": f"MMDiT-Nano/{patch}", "hidden_size": 32, "depth": 2, "num_heads": 2},
                   **{"train.total_images": 96, "train.val_images": 32})
    res = train(load_run_config(cfg))
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert res.status == "finished" and len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    if method == "selfflow":
        assert any("train/loss_rep" in r for r in rows)


@pytest.mark.parametrize("modality, attributes, player", [("video", {"colour", "shape", "direction"}, ".gif"),
                                                         ("audio", {"timbre", "pattern", "pitch"}, ".wav")])
def test_text_demo_quick_runs_end_to_end_on_video_and_audio(modality, attributes, player, tmp_path, monkeypatch):
    from suite.cli import main

    monkeypatch.setenv("SUITE_CACHE", str(tmp_path / "cache"))  # the judge is cached like the evaluator's: not in ~/.cache
    assert main(["demo", "--text", "--modality", modality, "--quick", "--out", str(tmp_path)]) == 0
    assert len(list((tmp_path / "cache" / "judges").glob("*-text-judge-*/judge.pt"))) == 1
    out = tmp_path / f"text-{modality}-quick"
    res = json.loads((out / "results.json").read_text())
    for key in ("real", "vanilla/cfg1/seen", "selfflow/cfg1/unseen", "selfflow/cfg3.5/seen"):
        assert 0.0 <= res[key]["all"] <= 1.0 and set(res[key]) == attributes | {"all"}
    assert res["dataset"] == f"{'moving-shapes' if modality == 'video' else 'tones'}-text" and set(res["chance"]) == attributes | {"all"}
    assert ("real/decoded" in res) == (modality == "audio")  # spectrogram view: the Griffin-Lim ceiling is measured
    page = (out / "report.html").read_text()
    files = sorted(p.name for p in out.glob(f"samples-*{player}"))
    assert len(files) == (8 if modality == "video" else 8 * 8)  # 2 methods × 2 CFG scales × seen/unseen (audio: a WAV per clip)
    assert all(f'src="{f}"' in page for f in files) and ("<audio " in page) == (modality == "audio")
    caption = "a red disk moving left" if modality == "video" else "a very low plucked tone rising"  # over the run's own vocabulary
    assert main(["sample", str(out / "runs" / "selfflow"), "--n", "2", "--out", str(tmp_path / "s"), "--set", "sampling.steps=2",
                 "--caption", caption]) == 0
    assert (tmp_path / "s" / f"000001_caption0{player}").is_file()


def test_data_show_writes_captioned_clips_with_their_captions(tmp_path):
    from suite.cli import main

    assert main(["data", "show", "moving-shapes-text", "--out", str(tmp_path / "v.png")]) == 0
    lines = (tmp_path / "v.captions.txt").read_text().splitlines()
    assert (tmp_path / "v.gif").is_file() and len(lines) == 64 and lines[0].split()[2] in {"disk", "square", "triangle", "cross", "ring"}
