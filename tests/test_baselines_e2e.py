"""End to end: `suite encoder train` makes an encoder whose pooled tokens are linearly decodable
(well above chance and above the same network untrained), and a REPA run aligned to it by path
trains and logs like any other run."""
import json

import pytest
import torch

from baselines.encoders import load_encoder
from baselines.encoders.local import LocalEncoder, TinyViTConfig
from baselines.encoders.train import load_pixels, nt_xent, pooled_features
from suite.cli import main
from suite.evaluation.probe import probe_accuracy

SMALL = ["--embed-dim", "32", "--depth", "2", "--num-heads", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("enc") / "digits-classifier"
    assert main(["encoder", "train", "--dataset", "digits", "--kind", "classifier", "--out", str(out),
                 "--steps", "250", "--batch-size", "64", *SMALL]) == 0
    return out


def test_encoder_train_linear_accuracy_well_above_chance(classifier_dir):
    meta = json.loads((classifier_dir / "encoder.json").read_text())
    assert meta["kind"] == "classifier" and meta["chance_acc"] == pytest.approx(0.1)
    acc = meta["linear_probe_acc"]
    # recompute from the saved encoder (what REPA will load), and against the untrained network
    enc = load_encoder("local", path=str(classifier_dir))
    x_tr, y_tr, _ = load_pixels("digits", 16, "train")
    x_te, y_te, _ = load_pixels("digits", 16, "test")
    assert probe_accuracy(pooled_features(enc, x_tr), y_tr, pooled_features(enc, x_te), y_te, 10) == pytest.approx(acc, abs=0.01)
    torch.manual_seed(0)
    untrained = LocalEncoder(TinyViTConfig(embed_dim=32, depth=2, num_heads=2)).freeze()
    base = probe_accuracy(pooled_features(untrained, x_tr), y_tr, pooled_features(untrained, x_te), y_te, 10)
    assert acc > 0.85 and acc > base + 0.04, (acc, base)


def test_encoder_train_ssl_runs_without_labels(tmp_path, monkeypatch):
    """SimCLR: loss falls; the labels are never read (they are scrambled here and nothing changes)."""
    import baselines.encoders.train as tr

    logs = []
    real = tr.load_pixels

    def scrambled(*a, **k):
        x, y, n = real(*a, **k)
        return x, torch.randint(0, n, y.shape, generator=torch.Generator().manual_seed(0)), n

    cfg = tr.EncoderTrainConfig(kind="ssl", steps=150, batch_size=32, embed_dim=16, depth=1, num_heads=2)
    tr.train_encoder(cfg, tmp_path / "a", log=logs.append)
    monkeypatch.setattr(tr, "load_pixels", scrambled)
    tr.train_encoder(cfg, tmp_path / "b", log=lambda s: None)
    a, b = (torch.load(tmp_path / d / "encoder.pt") for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [float(s.split("loss ")[1].split()[0]) for s in logs if s.startswith("step")]
    assert losses[-1] < losses[0]  # mean loss of the last fifth of the steps vs the first


def test_nt_xent_prefers_matching_views():
    z = torch.randn(16, 8)
    assert nt_xent(z, z, 0.2) < nt_xent(z, torch.randn(16, 8), 0.2)


def test_repa_run_aligned_to_the_trained_encoder(classifier_dir, tiny_cfg, tmp_path):
    import mlflow

    from suite.config import load_run_config
    from suite.train import train

    d = tiny_cfg(**{"method": {"name": "repa", "encoders": [{"name": "local", "path": str(classifier_dir)}],
                               "projector_hidden": 64},
                    "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "train.total_images": 768})
    res = train(load_run_config(d))
    assert res.status == "finished" and res.images_seen == 768
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    rep = [r["train/loss_rep"] for r in rows if "train/loss_rep" in r]
    assert len(rep) >= 20 and all(-1 <= v <= 1 for v in rep)
    assert sum(rep[-5:]) / 5 < sum(rep[:5]) / 5  # the projector learns to align
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(res.mlflow_run_id)
    assert run.data.tags["method"] == "repa"
    assert "train/loss_rep" in run.data.metrics and "train/loss_gen" in run.data.metrics
    assert float(run.data.params["flops_per_image_aux"]) > 0
    # the encoder is not in the checkpoint (only the projector is the method's state)
    ck = torch.load(res.run_dir / "checkpoints" / "latest.pt", weights_only=False)
    assert all(k.startswith("projectors.") for k in ck["method"])


def test_repa_without_encoder_weights_is_one_line_error(tiny_cfg, tmp_path, capsys):
    import yaml

    cfg = tmp_path / "repa.yaml"
    d = tiny_cfg(**{"method": {"name": "repa", "encoders": [{"name": "dinov2-vitb14", "path": str(tmp_path / "dinov2-base")}]},
                    "tracking.enabled": False})
    cfg.write_text(yaml.safe_dump(d))
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(tmp_path / "dinov2-base" / "config.json") in err
