"""Caption consistency as an evaluation metric: names, validation, and a training run on
shapes-text that logs the seen and unseen metrics to MLflow (then `suite eval` on the cached judge)."""
import json

import pytest

from suite.config import load_run_config
from suite.errors import ConfigError
from suite.evaluation.metrics import MetricSpec, metric_names, parse_metric

SHAPES = ("colour", "shape", "size", "position")
MMDIT = {"backbone": "mmdit", "preset": "MMDiT-Nano/4", "hidden_size": 32, "depth": 2, "num_heads": 2, "double_blocks": 1}


def _names(n: str) -> set[str]:
    return {f"eval/caption_consistency{n}_{split}{a}" for split in ("", "unseen_") for a in (*SHAPES, "all")}


def test_caption_consistency_names_parse_and_validate_in_one_line(tiny_cfg):
    assert parse_metric("caption_consistency", 500, "auto") == [MetricSpec("caption_consistency", 500, None)]
    assert parse_metric("caption_consistency2k", 500, "auto") == [MetricSpec("caption_consistency", 2000, None)]
    assert parse_metric("class_consistency2k", 500, "auto") == [MetricSpec("class_consistency", 2000, None)]
    assert metric_names("caption_consistency", 2000, None, attributes=("colour", "shape")) == [
        "caption_consistency2k_colour", "caption_consistency2k_shape", "caption_consistency2k_all",
        "caption_consistency2k_unseen_colour", "caption_consistency2k_unseen_shape", "caption_consistency2k_unseen_all"]
    text = dict(data={"name": "shapes-text", "image_size": 16}, model=MMDIT)
    cfg = load_run_config(tiny_cfg(**text, **{"eval.metrics": ["caption_consistency2k", "caption_consistency"]}))
    assert cfg.eval.metrics == ["caption_consistency2k", "caption_consistency"]
    with pytest.raises(ConfigError, match=r"caption_consistency needs a captioned built-in .*'digits'") as err:
        load_run_config(tiny_cfg(**{"eval.metrics": ["caption_consistency"]}))  # digits
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="eval.judge_steps"):
        load_run_config(tiny_cfg(**text, **{"eval.metrics": ["caption_consistency"], "eval.judge_steps": 0}))


def test_training_on_shapes_text_logs_seen_and_unseen_caption_consistency_to_mlflow(tiny_cfg, tmp_path):
    from suite.commands.eval import evaluate_run
    from suite.tracking import get_client, resolve_tracking_uri
    from suite.train import train

    cache = tmp_path / "cache"
    cfg = load_run_config(tiny_cfg(name="cc", data={"name": "shapes-text", "image_size": 16, "num_images": 200}, model=MMDIT,
                                   method={"name": "vanilla"}, sampling={"steps": 2},
                                   **{"train.total_images": 64, "train.val_images": 32, "eval.metrics": ["caption_consistency"],
                                      "eval.n_samples": 8, "eval.batch_size": 8, "eval.judge_steps": 10, "eval.judge_images": 128,
                                      "eval.cache_dir": str(cache)}))
    assert cfg.tracking.enabled
    res = train(cfg)
    client = get_client(resolve_tracking_uri(cfg.tracking, cfg.train.runs_root))
    logged = {k: v for k, v in client.get_run(res.mlflow_run_id).data.metrics.items() if "caption_consistency" in k}
    assert set(logged) == _names("8") and all(0.0 <= v <= 1.0 for v in logged.values()), logged
    hist = client.get_metric_history(res.mlflow_run_id, "eval/caption_consistency8_unseen_all")
    assert [m.step for m in hist] == [64]
    record = json.loads((res.run_dir / "eval" / "eval-0000000064.json").read_text())
    proto = record["protocol"]["caption_consistency"]
    assert proto["splits"] == {"seen": "test", "unseen": "unseen"} and record["protocol"]["sampling"]["cfg_scale"] == 1.0
    judges = list((cache / "judges").glob("shapes-text-judge-*/judge.pt"))
    assert len(judges) == 1 and proto["judge"] == str(judges[0])
    # `suite eval` reuses the cached judge and logs another count under its own names
    stamp = judges[0].stat().st_mtime_ns
    out = evaluate_run(res.run_dir, metrics=["caption_consistency4"], device="cpu")
    assert set(out) == _names("4") and judges[0].stat().st_mtime_ns == stamp
    assert set(_names("4")) <= set(client.get_run(res.mlflow_run_id).data.metrics)


@pytest.mark.parametrize("data, attributes", [
    ({"name": "moving-shapes-text", "image_size": 8, "frames": 4, "num_images": 200}, ("colour", "shape", "direction")),
    ({"name": "tones-text", "audio_length": 1024, "num_images": 200, "audio_view": "spectrogram"}, ("timbre", "pattern", "pitch")),
])
def test_evaluator_judges_video_and_spectrogram_audio(tiny_cfg, tmp_path, data, attributes):
    """Video is judged frame-stacked; spectrogram samples are judged after the Griffin-Lim decode every metric sees."""
    from suite.train import train

    patch = 4 if data["name"] == "moving-shapes-text" else 1
    cfg = load_run_config(tiny_cfg(name="cc", data=data, model={**MMDIT, "preset": f"MMDiT-Nano/{patch}"}, method={"name": "vanilla"},
                                   sampling={"steps": 2},
                                   **{"train.total_images": 32, "train.val_images": 32, "eval.metrics": ["caption_consistency"],
                                      "eval.n_samples": 4, "eval.batch_size": 4, "eval.judge_steps": 5, "eval.judge_images": 64,
                                      "eval.cache_dir": str(tmp_path / "cache"), "tracking.enabled": False}))
    m = train(cfg).final_metrics
    names = {f"eval/caption_consistency4_{split}{a}" for split in ("", "unseen_") for a in (*attributes, "all")}
    assert names == {k for k in m if "caption_consistency" in k} and all(0.0 <= m[k] <= 1.0 for k in names), m


def test_every_metric_on_a_captioned_builtin_samples_for_real_test_captions(tiny_cfg, monkeypatch):
    """FID and the like on shapes-text sample for whole captions of the test split (token ids
    (b, L)), not for single random words; class consistency there is refused in one line."""
    import torch

    import suite.sampling
    from suite.evaluation.caption_eval import draw_captions
    from suite.evaluation.run_eval import Evaluator

    text = dict(data={"name": "shapes-text", "image_size": 16, "num_images": 200}, model=MMDIT)
    cfg = load_run_config(tiny_cfg(**text, **{"eval.metrics": ["fid"], "eval.batch_size": 4}))
    seen = []

    def fake_sample(model, n, sampling_cfg, device, seed=0, labels=None, **kw):
        seen.append(labels)
        return torch.zeros(n, 3, 16, 16), labels

    monkeypatch.setattr(suite.sampling, "sample_images", fake_sample)
    list(Evaluator(cfg).samples(None, 6, torch.device("cpu")))
    expected, _ = draw_captions(cfg.data, "seen", 6, cfg.eval.seed)  # (6, L)
    torch.testing.assert_close(torch.cat(seen), expected)
    with pytest.raises(ConfigError, match="class_consistency needs class labels") as err:
        load_run_config(tiny_cfg(**text, **{"eval.metrics": ["class_consistency"]}))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("metrics, named", [(["caption_consistency"], "caption_consistency"),
                                            (["isc", "caption_consistency2k", "probe"], "caption_consistency and probe")])
def test_given_samples_refuse_caption_consistency_before_reading_them(tiny_cfg, tmp_path, metrics, named):
    """Samples from an npz (`suite sample --format npz`, `Evaluator.evaluate_images`) have no captions and no
    unseen-split samples: caption consistency (and the probe) is refused in one line, before a batch is read or
    a judge trained, instead of silently missing from the results."""
    from suite.evaluation.run_eval import Evaluator

    text = dict(data={"name": "shapes-text", "image_size": 16, "num_images": 200}, model=MMDIT)
    cfg = load_run_config(tiny_cfg(**text, **{"eval.cache_dir": str(tmp_path / "cache")}))
    read = []

    def batches():
        read.append(1)
        yield from ()

    with pytest.raises(ConfigError, match=rf"^eval.metrics: {named} cannot be computed from given samples .*not captions\).*"
                                          rf"evaluate the run instead: suite eval RUN_DIR --metrics {named.replace(' and ', ' ')}$") as err:
        Evaluator(cfg, metrics=metrics, n=4).evaluate_images(batches())
    assert "\n" not in str(err.value)
    assert not read and not (tmp_path / "cache").exists()

