"""The attribute judge of a captioned built-in, trained once and cached on disk.

Like the domain classifier (domain_classifier.py), the judge is trained the first time a
caption-consistency metric (or the text demo) needs it and read back from the cache directory
(cache.py: `eval.cache_dir`, else `$SUITE_CACHE`, else `~/.cache/selfflow-suite`) ever after, so a
sweep trains it once. Entry: `judges/<dataset>-judge-<hash>/judge.pt` with `provenance.json`
beside it; the hash keys the data fields the judge's own training draw depends on (dataset,
sizes, frames, clip length, sample rate: `judge_data_identity`) and the recipe. The generator's
`audio_view` is not part of it: the judge reads waveforms either way.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from suite.evaluation.cache import cache_root, entry_lock, load_frozen_net, save_frozen_net, stable_hash, write_provenance
from suite.evaluation.caption_consistency import AttributeJudge, caption_consistency, judge_training_set, train_attribute_classifier

FORMAT_VERSION = 1  # bump when the judge's architecture or training changes meaning


@dataclass(frozen=True)
class JudgeRecipe:
    n_images: int = 2000  # real examples drawn over all attribute combinations
    steps: int = 400
    batch_size: int = 64
    width: int = 32  # channels of the judge's first conv
    data_seed: int = 1  # the training draw's seed (the data splits use data.seed: a separate stream)
    seed: int = 0  # initialisation and minibatch order


def judge_data_identity(data_cfg) -> dict:
    """The data config fields that `judge_training_set` reads (a one-line error for data without a scheme)."""
    from suite.data.caption_schemes import caption_scheme

    caption_scheme(data_cfg.name)
    fields = {"shapes-text": ("image_size",), "moving-shapes-text": ("frames", "image_size"),
              "tones-text": ("audio_length", "sample_rate")}[data_cfg.name]
    return {"name": data_cfg.name, **{k: getattr(data_cfg, k) for k in fields}}


def judge_key(data_cfg, recipe: JudgeRecipe) -> dict:
    """Everything that determines the judge's weights."""
    return {"data": judge_data_identity(data_cfg), "recipe": dataclasses.asdict(recipe), "format": FORMAT_VERSION}


def judge_path(data_cfg, recipe: JudgeRecipe, cache_dir=None) -> Path:
    return cache_root(cache_dir) / "judges" / f"{data_cfg.name}-judge-{stable_hash(judge_key(data_cfg, recipe))}" / "judge.pt"


def judge_file(data_cfg, cache_dir=None, recipe: JudgeRecipe | None = None) -> Path:
    """Path of the cached judge for this dataset and recipe, training (and caching) it if missing."""
    recipe = recipe or JudgeRecipe()
    path = judge_path(data_cfg, recipe, cache_dir)
    if path.is_file():
        return path
    with entry_lock(path):
        if not path.is_file():  # another process may have made it while we waited
            _train_and_cache(data_cfg, recipe, path)
    return path


def cached_judge(data_cfg, cache_dir=None, recipe: JudgeRecipe | None = None) -> AttributeJudge:
    """The frozen judge for this dataset and recipe, from the cache (trained there first if missing)."""
    return load_judge(judge_file(data_cfg, cache_dir, recipe))


def save_judge(judge: AttributeJudge, path: Path, arch: dict, meta: dict) -> None:
    save_frozen_net(judge, path, arch, meta, FORMAT_VERSION)


def _build_judge(arch: dict) -> AttributeJudge:
    return AttributeJudge({k: tuple(v) for k, v in arch["attributes"].items()}, tuple(arch["example_shape"]), arch["width"])


def load_judge(path: str | Path) -> AttributeJudge:
    return load_frozen_net(path, _build_judge, "attribute judge", "made by caption-consistency evaluation or `suite demo --text`")


def _train_and_cache(data_cfg, recipe: JudgeRecipe, path: Path) -> None:
    from suite.data.caption_schemes import caption_scheme

    start = time.time()
    scheme = caption_scheme(data_cfg.name)
    media, attributes = judge_training_set(data_cfg, recipe.n_images, seed=recipe.data_seed)  # (n, ...), (n, A)
    with torch.random.fork_rng(devices=[]):  # training reseeds torch: the caller's stream stays as it was
        judge = train_attribute_classifier(media, attributes, steps=recipe.steps, batch_size=recipe.batch_size,
                                           seed=recipe.seed, scheme=scheme, width=recipe.width)
    check_media, check_attributes = judge_training_set(data_cfg, min(256, recipe.n_images), seed=recipe.data_seed + 1)
    meta = {
        "dataset": data_cfg.name,
        "key": judge_key(data_cfg, recipe),
        "train_examples": int(media.shape[0]),
        "consistency_on_fresh_real_draw": caption_consistency(judge, check_media, check_attributes),  # the judge's own ceiling
        "train_seconds": round(time.time() - start, 2),
    }
    arch = {"attributes": {k: list(v) for k, v in scheme.attributes.items()}, "example_shape": list(media.shape[1:]),
            "width": recipe.width}
    write_provenance(path.with_name("provenance.json"), {"what": "attribute judge (suite.evaluation.caption_judge)", **meta})
    save_judge(judge, path, arch, meta)  # last: its presence means the entry is complete
