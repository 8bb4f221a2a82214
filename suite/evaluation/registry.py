"""Feature extractors by name (`eval.extractor`, or the `_<extractor>` part of a full metric name
such as `fid2k_inception`). A builder is `fn(cfg, device, cache_dir) -> Extractor`; heavy
libraries are imported inside the builders so naming and validating stays cheap. Plugins register
their own (e.g. a video or audio feature network) with `register_extractor`.

`auto`, `domain` and `<dataset>-classifier` all name the dataset's own domain classifier.
"""
from __future__ import annotations

from suite.registry import Registry

EXTRACTORS = Registry("feature extractor", "eval.extractor")
DOMAIN = "domain"


def register_extractor(name: str):
    return EXTRACTORS.register(name)


def extractor_kind(name: str, data_name: str) -> str:
    """Normalise `auto` / `domain` / `<dataset>-classifier` to `domain`; check any other name."""
    if name in ("auto", DOMAIN, f"{data_name}-classifier"):
        return DOMAIN
    EXTRACTORS.get(name)  # one-line ConfigError naming the allowed extractors
    return name


def build_extractor(name: str, cfg, device="cpu", cache_dir=None):
    """eval.extractor (or a metric's extractor part) → the registered extractor, built."""
    return EXTRACTORS.get(extractor_kind(name, cfg.data.name))(cfg, device, cache_dir)


@register_extractor(DOMAIN)
def _domain(cfg, device, cache_dir):
    from suite.evaluation.domain_classifier import ClassifierRecipe
    from suite.evaluation.extractors import domain_extractor

    e = cfg.eval
    recipe = ClassifierRecipe(steps=e.classifier_steps) if e.classifier_steps else None
    return domain_extractor(cfg.data, cache_dir=cache_dir, device=device, batch_size=e.batch_size, recipe=recipe, seed=e.seed)


@register_extractor("inception")
def _inception(cfg, device, cache_dir):
    from suite.evaluation.extractors import inception_extractor

    return inception_extractor(cfg.eval.inception_weights, device, cfg.eval.batch_size)


@register_extractor("dinov2")
def _dinov2(cfg, device, cache_dir):
    from suite.evaluation.extractors import dinov2_extractor

    return dinov2_extractor(cfg.eval.dinov2_weights, device, cfg.eval.batch_size)
