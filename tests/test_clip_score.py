"""CLIP score (`clipscore<n>_clip`) on captioned latent shards, with a tiny CLIPModel stand-in."""
import numpy as np
import pytest
import torch

from suite.config import load_run_config
from suite.errors import ConfigError, MissingFileError
from suite.evaluation.clip_score import ClipExtractor, clip_score
from suite.evaluation.metrics import metric_names, parse_metric
from text_standins import save_tiny_clip_text

CAPTIONS = ["a red disk", "a photo of a cat", "a small green ring in the top left", "blue"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip_text(tmp_path_factory.mktemp("clip") / "clip", with_vision=True)


def test_clip_score_equals_an_independent_transformers_computation(clip_dir):
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8))
    ext = ClipExtractor(str(clip_dir), batch_size=3)
    ours = clip_score(ext.extract(images)["features"], ext.text_features(CAPTIONS))
    # independent: the processor and tokenizer as published, the model's own forward (normalised embeds)
    model = CLIPModel.from_pretrained(str(clip_dir)).eval()
    pv = CLIPImageProcessor.from_pretrained(str(clip_dir))(list(images.permute(0, 2, 3, 1).numpy()), return_tensors="pt",
                                                           do_resize=False, do_center_crop=False)["pixel_values"]
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))(CAPTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], pixel_values=pv)
    cos = (out.image_embeds * out.text_embeds).sum(-1).double()
    assert ours == pytest.approx(float(100 * cos.clamp(min=0).mean()), abs=1e-4)
    assert 0 <= ours <= 100
    assert clip_score(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0], [-1.0, 0.0]])) == pytest.approx(50.0)


def test_clipscore_name_and_config_checks(tiny_cfg, clip_dir):
    (spec,) = parse_metric("clipscore2k_clip", 100, "auto")
    assert spec.kind == "clipscore" and spec.n == 2000 and metric_names(spec.kind, spec.n, "clip") == ["clipscore2k_clip"]
    load_run_config(tiny_cfg(**{"eval.metrics": ["clipscore2k_clip"]}))
    with pytest.raises(ConfigError, match="clipscore needs an image extractor that embeds text \\(clip\\), not 'inception'"):
        load_run_config(tiny_cfg(**{"eval.metrics": ["clipscore2k_inception"]}))
    with pytest.raises(ConfigError, match="clapscore needs an audio extractor"):
        load_run_config(tiny_cfg(**{"eval.metrics": ["clapscore2k_clip"]}))


def test_missing_clip_weights_are_one_line(tmp_path):
    with pytest.raises(MissingFileError, match=r"eval.clip_weights: .*needs .*nope/config.json") as e:
        ClipExtractor(str(tmp_path / "nope"))
    assert "\n" not in str(e.value)


def test_clipscore_on_captioned_shards_end_to_end(tmp_path, tiny_cfg, clip_dir):
    from suite.cli import main
    from suite.evaluation.images import quantise
    from suite.evaluation.run_eval import Evaluator
    from suite.models import build_model
    from test_text_conditioning import _image_folder, _tiny_vae

    vae = _tiny_vae(tmp_path / "vae")
    _image_folder(tmp_path / "imgs")
    assert main(["data", "encode", "--folder", str(tmp_path / "imgs"), "--vae", str(vae), "--image-size", "16", "--out",
                 str(tmp_path / "lat"), "--text-encoder", "clip", "--text-weights", str(clip_dir), "--text-max-length", "8"]) == 0
    cfg = load_run_config(tiny_cfg(**{
        "data": {"name": "latents", "root": str(tmp_path / "lat"), "vae": str(vae), "test_fraction": 0},
        "model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 2, "num_heads": 2, "text_dim": 32},
        "eval": {"metrics": ["clipscore4_clip"], "clip_weights": str(clip_dir), "batch_size": 3, "cache_dir": str(tmp_path / "cache")},
        "sampling.steps": 2}))
    ev = Evaluator(cfg, device="cpu")
    ds = ev.dataset()
    # given images: the score of each against the caption of the dataset index it carries
    idx = torch.tensor([5, 0, 3, 3])
    pixels = quantise(torch.stack([ds[int(i)]["pixels"] for i in idx]))
    got = ev.evaluate_images([(pixels[:2], idx[:2]), (pixels[2:], idx[2:])])["eval/clipscore4_clip"]
    ext = ClipExtractor(str(clip_dir))
    want = clip_score(ext.extract(pixels)["features"], ext.text_features([ds.captions[int(i)] for i in idx]))
    assert got == pytest.approx(want, rel=1e-6)  # float32: the two paths batch the images differently
    # a model's samples: conditioned on the sampled captions' embeddings, scored against those captions
    torch.manual_seed(0)
    model = build_model(cfg.model, ds.image_shape, ds.num_classes)
    res = ev(model, 0)
    assert 0 <= res["eval/clipscore4_clip"] <= 100


def test_clipscore_sampling_reads_only_the_caption_columns(tmp_path, tiny_cfg, clip_dir, monkeypatch):
    """A CLIP-score evaluation on captioned shards conditions on the drawn captions' embeddings and
    scores against their strings without building the dataset or decoding a stored image."""
    import suite.data.datasets as datasets
    import suite.sampling
    from suite.cli import main
    from suite.data.shard_captions import ShardCaptions
    from suite.evaluation.run_eval import Evaluator
    from suite.models import build_model
    from test_text_conditioning import _image_folder, _tiny_vae

    vae = _tiny_vae(tmp_path / "vae")
    _image_folder(tmp_path / "imgs")
    assert main(["data", "encode", "--folder", str(tmp_path / "imgs"), "--vae", str(vae), "--image-size", "16", "--out",
                 str(tmp_path / "lat"), "--shard-size", "4", "--text-encoder", "clip", "--text-weights", str(clip_dir),
                 "--text-max-length", "8"]) == 0
    cfg = load_run_config(tiny_cfg(**{
        "data": {"name": "latents", "root": str(tmp_path / "lat"), "vae": str(vae), "test_fraction": 0.34},
        "model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 2, "num_heads": 2, "text_dim": 32},
        "eval": {"metrics": ["clipscore5_clip"], "clip_weights": str(clip_dir), "batch_size": 2, "cache_dir": str(tmp_path / "cache")},
        "sampling.steps": 2}))
    from suite.data import build_dataset, split_indices

    full = datasets.LatentShardDataset(str(tmp_path / "lat"), str(vae))  # the reference: every column, across 2 shards
    table = ShardCaptions(tmp_path / "lat")
    idx = torch.tensor([5, 0, 3, 4])
    torch.testing.assert_close(table.conditions(idx), torch.stack([full[int(i)]["y"] for i in idx]))
    assert table.texts(idx) == [full.captions[int(i)] for i in idx] and len(table) == len(full) == 6
    assert torch.equal(table.masks(idx), (table.conditions(idx) != 0).any(-1))
    train = build_dataset(cfg.data, "train")  # the evaluator draws from the training split, as before
    table = table.select(split_indices(6, 0.34, cfg.data.seed, "train"))
    assert len(table) == len(train) == 4 and table.texts(range(4)) == [train[i]["caption"] for i in range(4)]
    torch.testing.assert_close(table.conditions(range(4)), torch.stack([train[i]["y"] for i in range(4)]))

    def refuse(*a, **k):
        raise AssertionError("the evaluator read the shards' latents or pixels")

    monkeypatch.setattr(datasets.LatentShardDataset, "__init__", refuse)
    monkeypatch.setattr(datasets, "load_media", refuse)
    seen, sample = [], suite.sampling.sample_images
    monkeypatch.setattr(suite.sampling, "sample_images", lambda *a, labels=None, **k: (seen.append(labels), sample(*a, labels=labels, **k))[1])
    scored = []
    monkeypatch.setattr(ClipExtractor, "text_features", lambda self, texts: (scored.extend(texts), torch.ones(len(texts), 16))[1])
    torch.manual_seed(0)
    ev = Evaluator(cfg, device="cpu")
    res = ev(build_model(cfg.model, (4, 8, 8), 1), 0)
    assert 0 <= res["eval/clipscore5_clip"] <= 100
    drawn = torch.randint(0, 4, (5,), generator=torch.Generator().manual_seed(cfg.eval.seed))  # the evaluator's draw
    torch.testing.assert_close(torch.cat(seen), table.conditions(drawn))  # conditioned on the drawn captions' embeddings…
    assert scored == table.texts(drawn)  # …and scored against the same captions
