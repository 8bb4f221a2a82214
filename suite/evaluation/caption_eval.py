"""Caption consistency of a model (`eval.metrics: [caption_consistency]`, `caption_consistency2k`).

On a captioned built-in (shapes-text, moving-shapes-text, tones-text) the evaluator draws n
captions of the test split (seen attribute combinations) and n of the `unseen` split (held-out
ones), seeded by `eval.seed` (each caption once before any repeats), samples the model for them
with `sampling` as every other metric does (CFG only if `sampling.cfg_scale` asks for it; the
default 1.0 is none, the paper's metric setting), decodes the samples to media the way every metric
sees them (the spectrogram view through Griffin-Lim; images and video quantised to uint8), and lets
the cached attribute judge (caption_judge.py) read them. Only the judge's predictions are kept.
Chunk i of split s (0 seen, 1 unseen) is noised with seed (eval.seed · 1,000,003 + i) · 2 + s.
"""
from __future__ import annotations

from typing import Callable

import torch

from suite.errors import ConfigError

SPLITS = {"seen": "test", "unseen": "unseen"}  # metric split → dataset split


def check_captioned(data_cfg) -> None:
    """One line unless the data is a captioned built-in (the only data with an attribute judge)."""
    from suite.data.caption_schemes import CAPTIONED_BUILTINS

    if data_cfg.name not in CAPTIONED_BUILTINS:
        raise ConfigError(f"eval.metrics: caption_consistency needs a captioned built-in dataset ({', '.join(CAPTIONED_BUILTINS)}), "
                          f"not data.name={data_cfg.name!r}")


def draw_captions(data_cfg, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n (caption ids (n, L) long, attributes (n, A) long) of a split ('seen': the test split,
    'unseen': the held-out combinations), in a seeded order; captions repeat only when n exceeds the split."""
    from suite.data import build_dataset

    ds = build_dataset(data_cfg, SPLITS[split])
    base = getattr(ds, "dataset", ds)  # a split view's parent holds the captions; its indices say which
    indices = torch.as_tensor(getattr(ds, "indices", range(len(ds))), dtype=torch.long)  # (N,)
    if len(indices) == 0:
        from suite.errors import SuiteError

        raise SuiteError(f"caption_consistency: dataset {data_cfg.name!r} has no {SPLITS[split]!r} examples (data.test_fraction, data.num_images)")
    g = torch.Generator().manual_seed(seed)
    order = indices[torch.randperm(len(indices), generator=g)]  # (N,)
    pick = order[torch.arange(n) % len(order)]  # (n,)
    return base.captions[pick], base.attributes[pick]


@torch.no_grad()
def judged_samples(model, judge, captions: torch.Tensor, sampling_cfg, device, seeds: Callable[[int], int], batch_size: int,
                   to_media: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """captions (n, L) → the judge's predicted attributes (n, A) of one sample per caption.
    `to_media`: generated (b, ...) → evaluation form (suite.evaluation.images.quantise); `seeds(i)`: chunk i's noise seed."""
    from suite.evaluation.caption_consistency import judge_predictions
    from suite.evaluation.images import to_float
    from suite.sampling import sample_images

    preds = []
    for i, start in enumerate(range(0, captions.shape[0], batch_size)):
        y = captions[start:start + batch_size]  # (b, L)
        x0, _ = sample_images(model, y.shape[0], sampling_cfg, device, seed=seeds(i), labels=y, batch_size=batch_size)
        media = to_float(to_media(x0))  # (b, *example shape) in [-1, 1]: uint8-rounded images / video, float audio
        preds.append(judge_predictions(judge, media))  # (b, A)
    return torch.cat(preds)  # (n, A)


def caption_consistency_metrics(model, judge, cfg, ns: list[int], device, to_media) -> dict[str, float]:
    """{`caption_consistency<n>_<attr|all>`, `caption_consistency<n>_unseen_<attr|all>`: value} for every n in
    `ns`; max(ns) samples per split are drawn once, smaller counts read their first n."""
    from suite.evaluation.caption_consistency import consistency_of
    from suite.evaluation.metrics import metric_names

    e, names = cfg.eval, list(judge.heads)
    n_max = max(ns)
    per_split = {}
    for s, split in enumerate(SPLITS):
        captions, attributes = draw_captions(cfg.data, split, n_max, e.seed)  # (n, L), (n, A)
        preds = judged_samples(model, judge, captions, cfg.sampling, device, lambda i, s=s: (e.seed * 1_000_003 + i) * 2 + s,
                               e.batch_size, to_media)  # (n, A)
        per_split[split] = (preds, attributes)
    out = {}
    for n in ns:
        logged = iter(metric_names("caption_consistency", n, None, attributes=tuple(names)))
        for split in SPLITS:  # names come seen first, then unseen, each in attribute order then `all`
            preds, attributes = per_split[split]
            vals = consistency_of(preds[:n], attributes[:n], names)
            out.update({next(logged): vals[a] for a in (*names, "all")})
    return out
