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
FRAMES = "frames:"  # group key prefix: an image extractor applied to every frame of a video
MEDIA = ("image", "video", "audio")
EXTRACTOR_MEDIA: dict[str, str] = {}  # extractor → what it reads (the domain classifier: the dataset's kind)
TEXT_EXTRACTORS: set[str] = set()  # extractors that also embed text (CLAP score)


def register_extractor(name: str, media: str = "image", text: bool = False):
    """`@register_extractor("i3d", media="video")`: `media` is what the network reads (image,
    video or audio), which fixes its metric names (fid / fvd / fad); `text`: it also embeds
    captions (`text_features(texts)`, for a CLAP-style score)."""
    if media not in MEDIA:
        raise ValueError(f"register_extractor: media {media!r}; allowed: {', '.join(MEDIA)}")
    EXTRACTOR_MEDIA[name] = media
    if text:
        TEXT_EXTRACTORS.add(name)
    return EXTRACTORS.register(name)


def extractor_kind(name: str, data_name: str) -> str:
    """Normalise `auto` / `domain` / `<dataset>-classifier` to `domain`; check any other name."""
    if name in ("auto", DOMAIN, f"{data_name}-classifier"):
        return DOMAIN
    EXTRACTORS.get(name)  # one-line ConfigError naming the allowed extractors
    return name


def extractor_media(kind: str, data_cfg) -> str:
    """What an extractor kind reads; the domain classifier reads the dataset's own kind."""
    if kind != DOMAIN:
        return EXTRACTOR_MEDIA.get(kind, "image")
    from suite.data import describe_dataset

    shape = describe_dataset(data_cfg)
    return {4: "video", 2: "audio"}.get(len(shape[0]), "image") if shape else "image"


def metric_group(spec, data_cfg) -> str:
    """The extractor group a parsed metric is computed in (`frames:<kind>` for frame-wise FID),
    checking that the metric suits the extractor (one line otherwise)."""
    from suite.errors import ConfigError

    kind = extractor_kind(spec.extractor if spec.extractor is not None else "auto", data_cfg.name)
    media = extractor_media(kind, data_cfg)
    shown = spec.extractor or "auto"
    need = {"fvd": ("video", "i3d, videomae"), "fad": ("audio", "clap-a, clap-m"), "fidframes": ("image", "inception, dinov2")}
    if spec.kind in need and (media != need[spec.kind][0] or kind == DOMAIN):
        raise ConfigError(f"eval.metrics: {spec.kind} needs {'a' if spec.kind == 'fvd' else 'an'} {need[spec.kind][0]} "
                          f"extractor ({need[spec.kind][1]}), not {shown!r}")
    if spec.kind in ("clapscore", "clipscore"):
        want = "audio" if spec.kind == "clapscore" else "image"
        fits = sorted(k for k in TEXT_EXTRACTORS if EXTRACTOR_MEDIA.get(k) == want)
        if kind not in TEXT_EXTRACTORS or media != want:
            raise ConfigError(f"eval.metrics: {spec.kind} needs an {want} extractor that embeds text ({', '.join(fits)}), not {shown!r}")
    if spec.kind in ("fid", "isc", "sfid") and kind != DOMAIN and media != "image":  # kid / prc on its features are fine
        prefix = {"video": "fvd", "audio": "fad"}[media]
        raise ConfigError(f"eval.metrics: {kind} reads {media}; its Fréchet distance is {prefix}<n>_{kind} (e.g. {prefix}2k_{kind})"
                          if spec.kind == "fid" else f"eval.metrics: {spec.kind} is not defined for the {media} extractor {kind!r}")
    return FRAMES + kind if spec.kind == "fidframes" else kind


def build_extractor(name: str, cfg, device="cpu", cache_dir=None):
    """eval.extractor (or a metric's extractor part, or a `frames:<kind>` group) → the extractor, built."""
    if name.startswith(FRAMES):
        from suite.evaluation.video_features import FramewiseExtractor

        return FramewiseExtractor(build_extractor(name[len(FRAMES):], cfg, device, cache_dir))
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


@register_extractor("i3d", media="video")
def _i3d(cfg, device, cache_dir):
    from suite.evaluation.video_features import i3d_extractor

    return i3d_extractor(cfg.eval.i3d_weights, device, min(cfg.eval.batch_size, 16))


@register_extractor("videomae", media="video")
def _videomae(cfg, device, cache_dir):
    from suite.evaluation.video_features import videomae_extractor

    return videomae_extractor(cfg.eval.videomae_weights, device, min(cfg.eval.batch_size, 16))


def _clap(name: str, weights_key: str):
    def build(cfg, device, cache_dir):
        from suite.data import clip_rate
        from suite.evaluation.audio_features import ClapExtractor

        e = cfg.eval
        return ClapExtractor(name, getattr(e, weights_key), clip_rate(cfg.data), e.clap_text_model, device,
                             min(e.batch_size, 16), e.seed)

    return build


@register_extractor("clip", text=True)
def _clip(cfg, device, cache_dir):
    from suite.evaluation.clip_score import ClipExtractor

    return ClipExtractor(cfg.eval.clip_weights, device, min(cfg.eval.batch_size, 64))


register_extractor("clap-a", media="audio", text=True)(_clap("clap-a", "clap_audio_weights"))
register_extractor("clap-m", media="audio", text=True)(_clap("clap-m", "clap_music_weights"))
