"""Caption consistency on captioned built-in data: do generated samples show what their caption says?

An attribute judge — a small CNN with one head per captioned attribute — is trained on real data of
the dataset drawn over ALL attribute combinations (its own draw, `judge_training_set`): a judge
trained on the seen combinations only would read one attribute as a hint for another and misjudge
the unseen ones. The generator still never sees the unseen combinations. The judge reads media
(what `pixels` holds), by kind (suite/evaluation/judge_frontends.py):
images (shapes-text) directly, video (moving-shapes-text) as its frames stacked on the channels,
audio (tones-text) as the waveform's log-magnitude STFT — so generated spectrograms are judged
after the Griffin-Lim decode every audio metric sees.
Caption consistency of a set of samples = the fraction whose predicted attribute equals the
caption's, per attribute and all at once ("all"). Measured separately on captions of seen
combinations (the test split) and of unseen ones (`unseen` split). Metric names:
`eval/caption_consistency<n>_<attr|all>` and `eval/caption_consistency<n>_unseen_<attr|all>`,
logged by the evaluator for `eval.metrics: [caption_consistency]` (caption_eval.py samples and
judges; caption_judge.py trains the judge once per dataset and recipe and caches it on disk).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.data.caption_schemes import caption_scheme
from suite.data.vocabulary import CaptionScheme
from suite.evaluation.judge_frontends import judge_frontend


class AttributeJudge(nn.Module):
    """media (B, *example_shape) in [-1, 1] → one logit vector per attribute: {name: (B, K_name)}."""

    def __init__(self, attributes: dict[str, tuple[str, ...]], example_shape: tuple[int, ...], width: int = 32):
        super().__init__()
        self.features, dim = judge_frontend(tuple(example_shape), width)  # (B, ...) → (B, dim)
        self.heads = nn.ModuleDict({k: nn.Linear(dim, len(v)) for k, v in attributes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {k: head(h) for k, head in self.heads.items()}


AttributeCNN = AttributeJudge  # the image judge's earlier name


def judge_training_set(data_cfg, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(media (n, ...), attributes (n, A)) of `data_cfg`'s captioned built-in over all combinations,
    a draw separate from the data splits. Media as `pixels` holds them (tones-text: waveforms)."""
    c = data_cfg
    if c.name == "shapes-text":
        from suite.data.captions import make_captioned_shapes

        media, _, attributes = make_captioned_shapes(n, c.image_size, seed, unseen=None)
    elif c.name == "moving-shapes-text":
        from suite.data.video_text import make_captioned_moving_shapes

        media, _, attributes = make_captioned_moving_shapes(n, c.frames, c.image_size, seed, unseen=None)
    else:
        caption_scheme(c.name)  # a one-line error for data without a built-in caption vocabulary
        from suite.data.audio_text import make_captioned_tones

        media, _, attributes = make_captioned_tones(n, c.audio_length, c.sample_rate, seed, unseen=None)
    return media, attributes


def train_attribute_classifier(media: torch.Tensor, attributes: torch.Tensor, steps: int = 400, batch_size: int = 128,
                               seed: int = 0, scheme: CaptionScheme | None = None, width: int = 32) -> AttributeJudge:
    """media (n, ...) in [-1, 1], attributes (n, A) long (the scheme's attribute order; default
    shapes-text's) → a frozen AttributeJudge for that kind of media."""
    scheme = scheme or caption_scheme("shapes-text")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = AttributeJudge(scheme.attributes, tuple(media.shape[1:]), width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, media.shape[0], (batch_size,), generator=g)
        logits = model(media[idx])
        loss = sum(F.cross_entropy(logits[k], attributes[idx, j]) for j, k in enumerate(scheme.attributes))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def judge_predictions(judge: AttributeJudge, media: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """media (n, ...) in [-1, 1] → (n, A) long: the judge's value index per attribute (its head order)."""
    names = list(judge.heads)
    preds = []
    for i in range(0, media.shape[0], batch_size):
        logits = judge(media[i:i + batch_size].float())  # {name: (b, K_name)}
        preds.append(torch.stack([logits[k].argmax(-1) for k in names], dim=1))  # (b, A)
    return torch.cat(preds)  # (n, A)


def consistency_of(predicted: torch.Tensor, attributes: torch.Tensor, names: list[str]) -> dict[str, float]:
    """predicted, attributes (n, A) long → fraction matching per attribute (`names`, in column order) and 'all'."""
    correct = predicted == attributes.to(predicted.device)  # (n, A)
    out = {k: correct[:, j].float().mean().item() for j, k in enumerate(names)}
    out["all"] = correct.all(dim=1).float().mean().item()
    return out


def caption_consistency(judge: AttributeJudge, media: torch.Tensor, attributes: torch.Tensor,
                        batch_size: int = 256) -> dict[str, float]:
    """Fraction of examples whose predicted attributes match `attributes` (n, A): per attribute and 'all'."""
    return consistency_of(judge_predictions(judge, media, batch_size), attributes, list(judge.heads))


def chance_levels(scheme: CaptionScheme | None = None) -> dict[str, float]:
    """Consistency of a sample that ignores its caption (uniform attributes); default shapes-text's."""
    return (scheme or caption_scheme("shapes-text")).chance_levels()
