"""Evaluation beside published numbers: ADM npz export read back by the suite's own metrics, sFID.

Offline: Inception is torch-fidelity's own class with random weights (standins.py), so values mean
nothing, but every code path (hook on Mixed_6d, published mu_s/sigma_s, npz layout) is the real one.
"""
import json

import numpy as np
import pytest
import torch

from suite.cli import main
from suite.config import config_from_dict, dump_config
from suite.evaluation.metrics import metric_names, parse_metric
from suite.errors import SuiteError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    from suite.evaluation.extractors import inception_extractor
    from suite.evaluation.standins import random_inception_weights

    path = random_inception_weights(tmp_path_factory.mktemp("inception"))
    return path, inception_extractor(path, batch_size=16)


def pixel_run(tmp_path, inception_path, reference_npz) -> "Path":
    """A run directory by hand: digits 8×8, a random (not zero-output) Nano SiT, Inception eval."""
    from suite.models import build_model
    from suite.train.checkpoint import save_atomic

    cfg = config_from_dict({
        "name": "npz", "data": {"name": "digits", "image_size": 8},
        "model": {"preset": "SiT-Nano/2", "hidden_size": 32, "depth": 2, "num_heads": 2},
        "sampling": {"steps": 2},
        "eval": {"extractor": "inception", "inception_weights": str(inception_path), "reference_npz": str(reference_npz),
                 "batch_size": 4, "cache_dir": str(tmp_path / "cache")},
        "train": {"runs_root": str(tmp_path / "runs")},
    })
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 8, 8), 10)
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(cfg))
    save_atomic({"model": model.state_dict(), "ema": model.state_dict(), "step": 0, "images_seen": 0}, run / "checkpoints" / "latest.pt")
    return run


def fake_adm_reference(path, seed=0):
    """An ADM reference batch with published pool3 and spatial statistics (any PSD Σ will do)."""
    rng = np.random.default_rng(seed)
    np.savez(path, arr_0=rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
             mu=rng.normal(size=2048), sigma=np.diag(rng.uniform(0.5, 2, 2048)),
             mu_s=rng.normal(size=2023), sigma_s=np.diag(rng.uniform(0.5, 2, 2023)))
    return path


def test_npz_export_round_trips_through_suite_fid_and_sfid(tmp_path, inception, capsys):
    from suite.evaluation.npz_batches import read_adm_batches
    from suite.evaluation.run_eval import Evaluator
    from suite.commands.run_loading import load_run

    run = pixel_run(tmp_path, inception[0], fake_adm_reference(tmp_path / "VIRTUAL_tiny.npz"))
    out = tmp_path / "samples"
    assert main(["sample", str(run), "--n", "6", "--format", "npz", "--out", str(out), "--seed", "3"]) == 0
    with np.load(out / "samples.npz") as z:  # what the ADM evaluator reads
        assert z["arr_0"].shape == (6, 8, 8, 3) and z["arr_0"].dtype == np.uint8 and z["arr_1"].shape == (6,)
        assert z["arr_0"].std() > 5  # real images, not a constant
    meta = json.loads((out / "samples.json").read_text())
    assert meta["sampling"]["steps"] == 2 and meta["eval_seed"] == 3 and meta["n"] == 6

    loaded = load_run(run, device="cpu")
    loaded.cfg.eval.seed = 3
    direct = Evaluator(loaded.cfg, metrics=["fid", "sfid"], n=6)(loaded.ema, 0)
    from_npz = Evaluator(loaded.cfg, metrics=["fid", "sfid"], n=6).evaluate_images(read_adm_batches(out / "samples.npz", 4))
    assert set(direct) == {"eval/fid6_inception", "eval/sfid6_inception"}
    for k in direct:
        assert from_npz[k] == pytest.approx(direct[k], rel=1e-6) and direct[k] > 0
    assert main(["sample", str(run), "--n", "0", "--format", "npz", "--out", str(out)]) == 2


def blobs(n, seed, shift=0):
    """Coloured squares on grey, 64×64; `shift` moves every square right (a pure spatial change)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, 64, 64), 128, dtype=torch.uint8)
    for i in range(n):
        c = (torch.rand(3, generator=g) * 255).to(torch.uint8)
        r, q = int(torch.randint(8, 44, (1,), generator=g)), int(torch.randint(4, 16, (1,), generator=g))
        x[i, :, r:r + 12, q + shift:q + shift + 12] = c[:, None, None]
    return x


def test_sfid_zero_on_itself_grows_with_spatial_shift(inception):
    from suite.evaluation.frechet import feature_stats
    from suite.evaluation.metrics import MetricSpec, compute_for_extractor
    from suite.evaluation.reference import Reference

    ext = inception[1]
    a = ext.extract(blobs(8, 0))
    assert a["spatial"].shape == (8, 17 * 17 * 7) and a["spatial"].min() >= 0  # mixed_6/conv is post-ReLU
    ref = Reference("a", *feature_stats(a["features"].double().numpy()))
    ref.spatial_mu, ref.spatial_sigma = feature_stats(a["spatial"].double().numpy())
    spec = [MetricSpec("sfid", 8, "inception")]

    def sfid(feats):
        return compute_for_extractor(spec, "inception", feats, ref)["sfid8_inception"]

    assert sfid(a) == pytest.approx(0.0, abs=1e-6 * ref.spatial_sigma.trace())
    s16, s32 = sfid(ext.extract(blobs(8, 0, 16))), sfid(ext.extract(blobs(8, 0, 32)))
    assert 0 < s16 < s32


def test_sfid_names_and_errors():
    assert [s.backend for s in parse_metric("sfid", 50_000, "inception", ("torch-fidelity", "clean-fid"))] == ["torch-fidelity"]
    assert parse_metric("sfid50k_inception", 1, "auto")[0].kind == "sfid"
    assert metric_names("sfid", 50_000, "inception") == ["sfid50k_inception"]
    from suite.evaluation.metrics import MetricSpec, compute_for_extractor
    from suite.evaluation.reference import Reference

    with pytest.raises(SuiteError, match="Inception"):
        compute_for_extractor([MetricSpec("sfid", 2, "auto")], "digits-classifier", {"features": torch.zeros(2, 4)},
                              Reference("r", np.zeros(4), np.eye(4)))
