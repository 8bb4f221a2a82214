"""Image metrics end to end, offline: domain extractor with torch-fidelity and clean-fid, the
Inception and DINOv2 code paths with tiny random stand-ins, reference statistics, names."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from suite.config import DataConfig, load_run_config
from suite.errors import MissingFileError, SuiteError
from suite.evaluation.domain_classifier import ClassifierRecipe, get_domain_classifier, read_meta
from suite.evaluation.registry import build_extractor
from suite.evaluation.extractors import (INCEPTION_FILE, dinov2_extractor, domain_extractor,
                                         find_cleanfid_inception, inception_extractor)
from suite.evaluation.images import load_split, to_uint8
from suite.evaluation.metrics import MetricSpec, compute_for_extractor, count_label, metric_names, parse_metric
from suite.evaluation.reference import adm_reference, dataset_reference, load_adm_npz

torch.set_num_threads(1)
# Tiny but real: ~4 s on one core, ~85 % test accuracy on digits.
RECIPE = ClassifierRecipe(width=16, feature_dim=32, steps=150, batch_size=64)
DIGITS = DataConfig(name="digits")


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "suite-eval-cache"


@pytest.fixture(scope="session")
def ext(cache):
    return domain_extractor(DIGITS, cache_dir=cache, recipe=RECIPE)


@pytest.fixture(scope="session")
def halves():
    """Train split of digits cut in two disjoint halves, plus the test split."""
    x, y = load_split(DIGITS, "train")
    h = x.shape[0] // 2
    return (x[:h], y[:h]), (x[h : 2 * h], y[h : 2 * h])


ALL = [MetricSpec("fid", 300, "auto"), MetricSpec("kid", 300, "auto"), MetricSpec("prc", 300, "auto"),
       MetricSpec("isc", 300, "auto"), MetricSpec("class_consistency", 300, None),
       MetricSpec("fid", 300, "auto", "clean-fid"), MetricSpec("kid", 300, "auto", "clean-fid")]


def test_domain_classifier_is_cached_with_provenance(cache, ext):
    path = get_domain_classifier(DIGITS, cache_dir=cache, recipe=RECIPE)
    assert str(path) == ext.weights_path  # second call: the cached file, not a retrain
    meta = read_meta(path)
    assert meta["dataset"] == "digits" and meta["key"]["recipe"]["steps"] == RECIPE.steps
    assert meta["test_accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert "torch" in meta and meta["created_utc"]
    # another seed is another cache entry
    other = get_domain_classifier(DIGITS, cache_dir=cache, recipe=ClassifierRecipe(width=8, feature_dim=16, steps=5), seed=1)
    assert other != path and other.is_file()


def test_fid_train_vs_test_small_and_noise_large(ext, halves, cache):
    """Generated = 300 train images (a perfect generator) or uniform noise; reference = test split."""
    (xa, ya), _ = halves
    ref = dataset_reference(ext, DIGITS, "test", cache_dir=cache)
    real = compute_for_extractor(ALL, ext.name, ext.extract(xa[:300]), ref, ya[:300])
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(300, 3, 16, 16, generator=g) * 2 - 1
    fake = compute_for_extractor(ALL, ext.name, ext.extract(noise), ref, ya[:300])
    fid = "fid300_digits-classifier"
    assert real[fid] * 20 < fake[fid]
    assert real["kid300_digits-classifier"] * 20 < fake["kid300_digits-classifier"]
    assert real["precision300_digits-classifier"] > 0.8 > fake["recall300_digits-classifier"]
    assert real["class_consistency300"] > 0.6 and fake["class_consistency300"] < 0.4
    assert real["isc300_digits-classifier"] > fake["isc300_digits-classifier"]
    # clean-fid on the shared features: same Fréchet distance, its own KID estimator
    assert real[fid + "_cleanfid"] == pytest.approx(real[fid], rel=1e-6)
    assert real["kid300_digits-classifier_cleanfid"] * 20 < fake["kid300_digits-classifier_cleanfid"]


class _Images(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, i):
        return self.x[i]


def test_torch_fidelity_end_to_end_with_registered_domain_extractor(ext, halves):
    """calculate_metrics builds the extractor from torch-fidelity's registry and agrees with the shared path."""
    import torch_fidelity

    (xa, _), (xb, _) = halves
    xa, xb = xa[:200], xb[:200]
    tf = torch_fidelity.calculate_metrics(input1=_Images(xa), input2=_Images(xb), fid=True, kid=True, isc=True,
                                          cuda=False, cache=False, verbose=False, save_cpu_ram=True,
                                          kid_subset_size=200, batch_size=100, **ext.fidelity_kwargs())
    from suite.evaluation.frechet import feature_stats

    fb = ext.extract(xb)
    from suite.evaluation.reference import Reference

    ref = Reference("b", *feature_stats(fb["features"].double().numpy()), features=fb["features"])
    specs = [MetricSpec("fid", 200, "auto"), MetricSpec("kid", 200, "auto"), MetricSpec("isc", 200, "auto")]
    ours = compute_for_extractor(specs, ext.name, ext.extract(xa), ref, seed=2020)
    assert ours["fid200_digits-classifier"] == pytest.approx(tf["frechet_inception_distance"], rel=1e-4)
    assert ours["kid200_digits-classifier"] == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7)
    assert ours["isc200_digits-classifier"] == pytest.approx(tf["inception_score_mean"], rel=1e-4)


def test_clean_fid_end_to_end_with_custom_extractor(ext, halves, tmp_path):
    """clean-fid reads PNG folders through its own pipeline with the domain model and no resize."""
    from cleanfid import fid as cfid

    (xa, _), (xb, _) = halves
    for name, x in (("a", xa[:150]), ("b", xb[:150])):
        d = tmp_path / name
        d.mkdir()
        for i, im in enumerate(x.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(im).save(d / f"{i:04d}.png")
    score = cfid.compute_fid(str(tmp_path / "a"), str(tmp_path / "b"), mode="clean", custom_feat_extractor=ext.cleanfid_model(),
                             custom_fn_resize=lambda im: im, device=torch.device("cpu"), num_workers=0, batch_size=50,
                             verbose=False, use_dataparallel=False)
    from suite.evaluation.frechet import feature_stats
    from suite.evaluation.reference import Reference

    fb = ext.extract(xb[:150])
    ref = Reference("b", *feature_stats(fb["features"].double().numpy()), features=fb["features"])
    ours = compute_for_extractor([MetricSpec("fid", 150, "auto", "clean-fid")], ext.name, ext.extract(xa[:150]), ref)
    assert ours["fid150_digits-classifier_cleanfid"] == pytest.approx(float(score), rel=1e-4)


def test_reference_statistics_cached_once_with_provenance(ext, cache):
    r1 = dataset_reference(ext, DIGITS, "test", n=200, cache_dir=cache)
    files = sorted((cache / "reference").glob("digits-test-digits-classifier-200-*.npz"))
    assert len(files) == 1 and r1.features.shape == (200, 32) and r1.labels.shape == (200,)
    prov = json.loads(files[0].with_suffix(".json").read_text())
    assert prov["source"] == "digits:test" and prov["n"] == 200 and prov["extractor"] == "digits-classifier"
    mtime = files[0].stat().st_mtime_ns
    r2 = dataset_reference(ext, DIGITS, "test", n=200, cache_dir=cache)
    assert files[0].stat().st_mtime_ns == mtime  # read, not recomputed
    assert np.allclose(r1.mu, r2.mu) and torch.equal(r1.features, r2.features)
    # a different n is a different entry; n larger than the split takes the whole split
    r3 = dataset_reference(ext, DIGITS, "test", n=10**6, cache_dir=cache)
    assert r3.n == len(load_split(DIGITS, "test")[1])


def test_metric_names_and_parsing():
    assert count_label(2000) == "2k" and count_label(50000) == "50k" and count_label(500) == "500"
    assert metric_names("fid", 2000, "digits-classifier") == ["fid2k_digits-classifier"]
    assert metric_names("fid", 50000, "inception") == ["fid50k_inception"]
    assert metric_names("fid", 10000, "dinov2") == ["fd10k_dinov2"]
    assert metric_names("fid", 2000, "digits-classifier", "clean-fid") == ["fid2k_digits-classifier_cleanfid"]
    assert metric_names("prc", 500, "inception") == ["precision500_inception", "recall500_inception"]
    assert metric_names("class_consistency", 2000, None) == ["class_consistency2k"]
    assert parse_metric("fid50k_inception", 500, "auto") == [MetricSpec("fid", 50000, "inception")]
    assert parse_metric("fid2k_digits-classifier_cleanfid", 500, "auto") == [MetricSpec("fid", 2000, "digits-classifier", "clean-fid")]
    assert parse_metric("class_consistency2k", 500, "auto") == [MetricSpec("class_consistency", 2000, None)]
    assert parse_metric("kid", 500, "auto", ["torch-fidelity", "clean-fid"]) == [
        MetricSpec("kid", 500, "auto"), MetricSpec("kid", 500, "auto", "clean-fid")]
    assert parse_metric("prc", 500, "auto", ["clean-fid"]) == [MetricSpec("prc", 500, "auto")]  # clean-fid has no P/R
    with pytest.raises(SuiteError, match="unknown metric"):
        parse_metric("fidd", 500, "auto")
    with pytest.raises(SuiteError, match="backend"):
        parse_metric("fid", 500, "auto", ["tf"])


def test_inception_standin_exercises_real_code_path(tmp_path, cache):
    """Random weights in torch-fidelity's own Inception class, loaded from a path like the real
    file: our extraction equals calculate_metrics; an ADM batch's published μ, Σ are used as is."""
    import torch_fidelity

    from suite.evaluation.standins import random_inception_weights

    path = random_inception_weights(tmp_path / "w")
    assert path.name == INCEPTION_FILE
    ext = inception_extractor(path)
    assert ext.adm_compatible
    g = torch.Generator().manual_seed(0)
    xa = (torch.rand(6, 3, 24, 24, generator=g) * 255).to(torch.uint8)
    xb = (torch.rand(6, 3, 24, 24, generator=g) * 127).to(torch.uint8)
    fa, fb = ext.extract(xa), ext.extract(xb)
    assert fa["features"].shape == (6, 2048) and fa["logits"].shape == (6, 1008)
    assert fa["features"].std() > 1e-3  # the stand-in is calibrated: features are not ~0
    # torch-fidelity building the same extractor from its registry sees the same features (KID: a
    # 2048-d FID inside calculate_metrics would spend ~20 s in eigvals on one core).
    tf = torch_fidelity.calculate_metrics(input1=_Images(xa), input2=_Images(xb), kid=True, kid_subset_size=6, cuda=False,
                                          cache=False, verbose=False, save_cpu_ram=True, **ext.fidelity_kwargs())
    # synthetic ADM reference batch: arr_0 = xb, mu/sigma = its statistics
    from suite.evaluation.frechet import feature_stats, frechet_distance_to_features
    from suite.evaluation.reference import Reference

    mu, sigma = feature_stats(fb["features"].double().numpy())
    npz = tmp_path / "VIRTUAL_tiny_labeled.npz"
    np.savez(npz, arr_0=xb.permute(0, 2, 3, 1).numpy(), mu=mu, sigma=sigma)
    ref = adm_reference(ext, npz, cache_dir=cache, need_features=False)
    assert ref.provenance["published_stats"] and ref.features is None
    ours = compute_for_extractor([MetricSpec("fid", 6, "inception")], "inception", fa, ref)
    assert ours["fid6_inception"] == pytest.approx(frechet_distance_to_features(fa["features"].double().numpy(), mu, sigma))
    assert ours["fid6_inception"] > 0
    kid = compute_for_extractor([MetricSpec("kid", 6, "inception")], "inception", fa,
                                Reference("b", mu, sigma, features=fb["features"]), seed=2020)
    assert kid["kid6_inception"] == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-4)


def test_adm_npz_layout_checked_and_domain_stats_recomputed(tmp_path, ext, cache):
    x, _ = load_split(DIGITS, "test", 40)
    npz = tmp_path / "VIRTUAL_digits.npz"
    np.savez(npz, arr_0=x.permute(0, 2, 3, 1).numpy(), mu=np.zeros(2048), sigma=np.eye(2048))
    z = load_adm_npz(npz)
    assert z["arr_0"].shape == (40, 16, 16, 3)
    ref = adm_reference(ext, npz, cache_dir=cache)
    assert not ref.provenance["published_stats"]  # not Inception: μ, Σ come from arr_0's features
    assert ref.mu.shape == (32,) and ref.features.shape == (40, 32)
    assert np.allclose(ref.mu, ext.features(x).double().mean(0).numpy(), atol=1e-5)
    bad = tmp_path / "bad.npz"
    np.savez(bad, arr_0=np.zeros((2, 8, 8, 3), np.uint8), mu=np.zeros(3))
    with pytest.raises(SuiteError, match="missing sigma"):
        load_adm_npz(bad)
    with pytest.raises(MissingFileError, match="VIRTUAL_imagenet256_labeled.npz"):
        load_adm_npz(tmp_path / "nope.npz")


def test_missing_weights_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingFileError, match=INCEPTION_FILE) as e:
        inception_extractor(None)
    assert "\n" not in str(e.value) and "github.com/toshas/torch-fidelity" in str(e.value)
    with pytest.raises(MissingFileError, match=INCEPTION_FILE):
        inception_extractor(tmp_path)  # a directory without the file
    with pytest.raises(MissingFileError, match="inception-2015-12-05.pt"):
        find_cleanfid_inception(tmp_path)
    with pytest.raises(MissingFileError, match="config.json"):
        dinov2_extractor(tmp_path)
    # through the config: eval.extractor=inception with no weights
    cfg = load_run_config({"eval": {"extractor": "inception"}})
    with pytest.raises(MissingFileError, match=INCEPTION_FILE):
        build_extractor("inception", cfg)


def test_dinov2_standin_through_transformers_and_torch_fidelity(tmp_path):
    import torch_fidelity

    from suite.evaluation.standins import tiny_dinov2

    d = tiny_dinov2(tmp_path / "dinov2")
    ext = dinov2_extractor(d)
    g = torch.Generator().manual_seed(0)
    xa = (torch.rand(8, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    xb = (torch.rand(8, 3, 16, 16, generator=g) * 100).to(torch.uint8)
    fa, fb = ext.extract(xa), ext.extract(xb)
    assert fa["features"].shape == (8, 32) and "logits" not in fa
    tf = torch_fidelity.calculate_metrics(input1=_Images(xa), input2=_Images(xb), fid=True, cuda=False, cache=False,
                                          verbose=False, save_cpu_ram=True, **ext.fidelity_kwargs())
    from suite.evaluation.frechet import feature_stats
    from suite.evaluation.reference import Reference

    ref = Reference("b", *feature_stats(fb["features"].double().numpy()), features=fb["features"])
    ours = compute_for_extractor([MetricSpec("fid", 8, "dinov2")], "dinov2", fa, ref)
    assert ours["fd8_dinov2"] == pytest.approx(tf["frechet_inception_distance"], rel=1e-3)


def test_to_uint8_quantises_and_expands_grey():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    u = to_uint8(x)
    assert u.dtype == torch.uint8 and u.shape == (1, 3, 2, 2)
    assert u[0, 0].flatten().tolist() == [0, 128, 255, 255]
    with pytest.raises(SuiteError, match="channels"):
        to_uint8(torch.zeros(1, 4, 2, 2))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # clean-fid's model is TorchScript (torch.jit is deprecated)
def test_evaluator_with_inception_standins_adm_reference_and_both_backends(tmp_path, cache):
    """The full evaluation path at 'paper scale' shape, offline: torch-fidelity Inception against an
    ADM batch's published statistics, clean-fid's own TorchScript Inception with its clean resize."""
    from cleanfid import fid as cfid
    from cleanfid.inception_torchscript import InceptionV3W

    from suite.evaluation.frechet import feature_stats
    from suite.evaluation.run_eval import Evaluator
    from suite.evaluation.standins import random_inception_weights, tiny_cleanfid_inception
    from suite.models import build_model

    wdir = tmp_path / "weights"
    random_inception_weights(wdir)
    tiny_cleanfid_inception(wdir)
    g = torch.Generator().manual_seed(1)
    arr = (torch.rand(8, 16, 16, 3, generator=g) * 255).to(torch.uint8)
    ext = inception_extractor(wdir)
    mu, sigma = feature_stats(ext.features(arr.permute(0, 3, 1, 2)).double().numpy())
    npz = tmp_path / "VIRTUAL_tiny_labeled.npz"
    np.savez(npz, arr_0=arr.numpy(), mu=mu, sigma=sigma)
    cfg = load_run_config({"data": {"name": "digits"}, "model": {"preset": "SiT-Nano/4"}, "sampling": {"steps": 2},
                           # clean-fid's Fréchet on 2048-d features is a 2048² sqrtm (~30 s on a core): its KID here.
                           "eval": {"metrics": ["fid8_inception", "kid8_inception", "kid8_inception_cleanfid"],
                                    "n_samples": 8, "extractor": "inception",
                                    "backends": ["torch-fidelity", "clean-fid"], "inception_weights": str(wdir),
                                    "reference_npz": str(npz), "batch_size": 8}})
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 16, 16), 10)
    ev = Evaluator(cfg, tmp_path / "run", "cpu", cache_dir=cache)
    out = ev(model, 0)
    assert set(out) == {"eval/fid8_inception", "eval/kid8_inception", "eval/kid8_inception_cleanfid"}
    assert all(np.isfinite(v) for v in out.values()) and out["eval/fid8_inception"] > 0
    rec = json.loads((tmp_path / "run" / "eval" / "eval-0000000000.json").read_text())
    assert rec["protocol"]["references"]["inception"]["published_stats"] is True
    assert rec["protocol"]["references"]["cleanfid-inception"]["published_stats"] is False
    # clean-fid's own pipeline (PNG folders, clean resize, its wrapper) gives the same features and KID
    gen = torch.cat([p for p, _ in ev.samples(model, 8, "cpu")])  # the same samples again (seeded)
    for name, x in (("gen", gen), ("ref", arr.permute(0, 3, 1, 2))):
        (tmp_path / name).mkdir()
        for i, im in enumerate(x.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(im).save(tmp_path / name / f"{i}.png")
    model_cf = InceptionV3W(str(wdir), download=False)
    feats = [cfid.get_folder_features(str(tmp_path / n), model_cf, num_workers=0, batch_size=8, device=torch.device("cpu"),
                                      mode="clean", verbose=False) for n in ("gen", "ref")]
    ours = ev._extractors["cleanfid-inception"].features(gen)
    assert np.allclose(ours.numpy(), feats[0], rtol=1e-4, atol=1e-4)
    np.random.seed(cfg.eval.seed)
    assert out["eval/kid8_inception_cleanfid"] == pytest.approx(cfid.kernel_distance(feats[0], feats[1]), rel=1e-3)


def test_parallel_workers_fill_a_cache_entry_once(tmp_path, monkeypatch):
    """Sweep workers starting together: one trains the classifier, the others wait and reuse it."""
    import threading
    import time

    from suite.evaluation import domain_classifier as dc

    calls = []

    def fake_train(data_cfg, recipe, seed, path):
        calls.append(1)
        time.sleep(0.3)
        path.write_bytes(b"x")

    monkeypatch.setattr(dc, "_train_and_cache", fake_train)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(dc.get_domain_classifier(DIGITS, cache_dir=tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1


def test_generated_latents_need_a_decoder():
    from suite.evaluation.images import generated_to_pixels

    assert generated_to_pixels(torch.zeros(2, 1, 4, 4)).shape == (2, 1, 4, 4)
    with pytest.raises(SuiteError, match="decoder"):
        generated_to_pixels(torch.zeros(2, 4, 4, 4))

    class Decodes:
        def to_pixels(self, x0):
            return x0[:, :3]

    assert generated_to_pixels(torch.zeros(2, 4, 4, 4), Decodes()).shape == (2, 3, 4, 4)


def test_evaluation_leaves_the_callers_rng_alone(tmp_path):
    """An in-training evaluation (classifier training, probe, sampling) must not shift the run's RNG."""
    from suite.evaluation.domain_classifier import train_classifier
    from suite.evaluation.run_eval import Evaluator
    from suite.models import build_model

    x, y = load_split(DIGITS, "train", 64)
    cfg = load_run_config({"model": {"preset": "SiT-Nano/4"},
                           "eval": {"metrics": ["probe"], "probe_blocks": [1], "probe_n_train": 40, "probe_n_test": 20}})
    model = build_model(cfg.model, (1, 16, 16), 10)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_classifier(x, y, 10, ClassifierRecipe(width=8, feature_dim=8, steps=2), seed=0)
    out = Evaluator(cfg, None, "cpu")(model, 0)
    assert set(out) == {"eval/probe_acc_block1"}
    assert torch.equal(torch.get_rng_state(), before)


def test_shapes_domain_classifier(tmp_path):
    """The second built-in dataset gets its own classifier: separates real from noise."""
    shapes = DataConfig(name="shapes", num_images=600)
    ext = domain_extractor(shapes, cache_dir=tmp_path, recipe=RECIPE)
    assert ext.name == "shapes-classifier" and read_meta(ext.weights_path)["test_accuracy"] > 0.5
    ref = dataset_reference(ext, shapes, "test", cache_dir=tmp_path)
    xr, yr = load_split(shapes, "train", 100)
    noise = torch.rand(100, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    specs = [MetricSpec("fid", 100, "auto"), MetricSpec("class_consistency", 100, None)]
    real = compute_for_extractor(specs, ext.name, ext.extract(xr), ref, yr)
    fake = compute_for_extractor(specs, ext.name, ext.extract(noise), ref, yr)
    assert real["fid100_shapes-classifier"] * 5 < fake["fid100_shapes-classifier"]
    assert real["class_consistency100"] > 0.5
