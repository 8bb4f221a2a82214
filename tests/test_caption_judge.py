"""The attribute judge of caption consistency, trained once and cached on disk (suite/evaluation/caption_judge.py)."""
import json

import pytest
import torch

from suite.config import DataConfig
from suite.errors import ConfigError


def test_judge_is_trained_once_cached_and_equal_to_the_demo_recipe(tmp_path):
    from suite.data.caption_schemes import caption_scheme
    from suite.evaluation.caption_consistency import judge_training_set, train_attribute_classifier
    from suite.evaluation.caption_judge import JudgeRecipe, cached_judge, judge_file, judge_path, load_judge

    data, recipe = DataConfig(name="shapes-text", image_size=16), JudgeRecipe(n_images=128, steps=10, batch_size=32)
    path = judge_file(data, tmp_path, recipe)
    assert path.is_file() and path.with_name("provenance.json").is_file() and path.parent.parent == tmp_path / "judges"
    stamp = path.stat().st_mtime_ns
    assert judge_file(data, tmp_path, recipe) == path and path.stat().st_mtime_ns == stamp  # read, not retrained
    loaded, again = load_judge(path), cached_judge(data, tmp_path, recipe)
    fresh = train_attribute_classifier(*judge_training_set(data, 128, seed=1), steps=10, batch_size=32, scheme=caption_scheme("shapes-text"))
    for k, v in fresh.state_dict().items():  # the cache holds exactly what the demo used to train in place
        assert torch.equal(loaded.state_dict()[k], v) and torch.equal(again.state_dict()[k], v), k
    prov = json.loads(path.with_name("provenance.json").read_text())
    assert prov["key"]["data"] == {"name": "shapes-text", "image_size": 16} and 0 <= prov["consistency_on_fresh_real_draw"]["all"] <= 1
    # keyed by what the judge's draw reads and by the recipe: data.num_images and the audio view share one judge
    assert judge_path(DataConfig(name="shapes-text", image_size=16, num_images=50), recipe, tmp_path) == path
    assert judge_path(data, JudgeRecipe(n_images=128, steps=11, batch_size=32), tmp_path) != path
    assert judge_path(DataConfig(name="shapes-text", image_size=32), recipe, tmp_path) != path
    tones = dict(name="tones-text", audio_length=1024)
    assert judge_path(DataConfig(**tones), recipe, tmp_path) == judge_path(DataConfig(**tones, audio_view="spectrogram"), recipe, tmp_path)
    with pytest.raises(ConfigError, match="no built-in caption vocabulary"):
        judge_path(DataConfig(name="digits"), recipe, tmp_path)
