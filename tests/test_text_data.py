"""Captioned shapes: captions, held-out combinations, and the caption-consistency metric."""
import pytest
import torch

from suite.config import DataConfig
from suite.data import build_dataset, collate
from suite.data.captions import ATTRIBUTES, NULL_TOKEN, UNSEEN_PAIRS, VOCAB, detokenize, tokenize
from suite.errors import SuiteError
from suite.evaluation.caption_consistency import caption_consistency, chance_levels, judge_training_set, train_attribute_classifier


def _attrs_of(caption: str) -> tuple[str, str]:
    words = caption.split()
    return words[2], words[3]  # "a <size> <colour> <shape> in the <v> <h>"


def test_captions_round_trip_and_unseen_pairs_are_held_out():
    cfg = DataConfig(name="shapes-text", image_size=16, num_images=400)
    train, unseen = build_dataset(cfg, "train"), build_dataset(cfg, "unseen")
    batch = collate([train[i] for i in range(8)])
    assert batch["y"].shape == (8, 8) and batch["y"].dtype == torch.long and train.condition == "text"
    assert train.num_classes == NULL_TOKEN == len(VOCAB)  # the null token is the "null class"
    seen_pairs = {_attrs_of(detokenize(train[i]["y"])) for i in range(len(train))}
    unseen_pairs = {_attrs_of(detokenize(unseen[i]["y"])) for i in range(len(unseen))}
    assert not seen_pairs & set(UNSEEN_PAIRS) and unseen_pairs == set(UNSEEN_PAIRS)
    # every colour and every shape is still seen in training
    assert {c for c, _ in seen_pairs} == set(ATTRIBUTES["colour"]) and {s for _, s in seen_pairs} == set(ATTRIBUTES["shape"])
    assert detokenize(tokenize("a large red ring in the top left")) == "a large red ring in the top left"
    with pytest.raises(SuiteError, match="unknown words"):
        tokenize("a purple ring")


def test_attribute_classifier_consistency_is_near_one_on_real_captions_and_chance_when_shuffled():
    cfg = DataConfig(name="shapes-text", image_size=32, num_images=2000)
    train, test, unseen = (build_dataset(cfg, s) for s in ("train", "test", "unseen"))
    full = train.dataset  # the split view's parent holds the tensors
    clf = train_attribute_classifier(*judge_training_set(cfg, 1500), steps=250, batch_size=64)
    real = caption_consistency(clf, full.images[test.indices], full.attributes[test.indices])
    real_unseen = caption_consistency(clf, unseen.images, unseen.attributes)
    g = torch.Generator().manual_seed(0)
    shuffled = full.attributes[test.indices][torch.randperm(len(test.indices), generator=g)]
    fake = caption_consistency(clf, full.images[test.indices], shuffled)
    chance = chance_levels()
    assert real["all"] > 0.9 and real_unseen["all"] > 0.9, (real, real_unseen)
    for k in (*ATTRIBUTES, "all"):
        assert fake[k] < chance[k] + 0.1, (k, fake, chance)


def test_text_demo_quick_runs_end_to_end(tmp_path, monkeypatch):
    import json

    from suite.cli import main

    monkeypatch.setenv("SUITE_CACHE", str(tmp_path / "cache"))  # the judge is cached like the evaluator's: not in ~/.cache
    assert main(["demo", "--text", "--quick", "--out", str(tmp_path)]) == 0
    assert len(list((tmp_path / "cache" / "judges").glob("shapes-text-judge-*/judge.pt"))) == 1
    res = json.loads((tmp_path / "text-quick" / "results.json").read_text())
    for key in ("vanilla/cfg1/seen", "selfflow/cfg1/unseen", "selfflow/cfg3.5/seen"):
        assert 0.0 <= res[key]["all"] <= 1.0 and set(res[key]) == {"colour", "shape", "size", "position", "all"}
    assert (tmp_path / "text-quick" / "samples-selfflow-cfg1-unseen.png").is_file()
    assert "checks the pipeline" in res["caveat"]  # a reader is told these figures are not a comparison
    assert res["caveat"] in (tmp_path / "text-quick" / "report.html").read_text()
    run = tmp_path / "text-quick" / "runs" / "selfflow"
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s"), "--set", "sampling.steps=2",
                 "--caption", "a large red ring in the top left"]) == 0
    assert (tmp_path / "s" / "000001_caption0.png").is_file()
